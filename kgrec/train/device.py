"""Device and seeding: explicit, no global state beyond what torch itself keeps."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from kgrec.device import resolve_device  # noqa: F401 - re-exported for the training code


def seed_everything(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Seed Python, NumPy and torch; return a dedicated generator (on ``device``) for sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
