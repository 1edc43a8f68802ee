"""Device and seeding: explicit, no global state beyond what torch itself keeps."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from kgrec.errors import KgrecError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise KgrecError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise KgrecError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def seed_everything(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Seed Python, NumPy and torch; return a dedicated generator (on ``device``) for sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
