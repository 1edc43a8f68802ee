"""Device choice, shared by every stage that runs torch code (text encoding, training)."""

from __future__ import annotations

import torch

from kgrec.errors import KgrecError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise KgrecError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise KgrecError(f"device {name!r} requested but CUDA is not available on this machine")
    return device
