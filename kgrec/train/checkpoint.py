"""Training checkpoints (everything needed to continue a killed run bit for bit) and the
selected weights (``model.safetensors``).

After every epoch the loop writes ``checkpoint/`` (atomically: a temporary folder moved into
place) holding the model and optimiser tensors and the random-number-generator states in
safetensors, and the loop's own progress in JSON. Nothing is pickled: a checkpoint from
someone else cannot run code when loaded. ``kgrec train --resume`` restores all of it, so a
CPU run resumed after SIGKILL ends with the same metrics as one that was never interrupted.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from kgrec.errors import KgrecError
from kgrec.io import atomic_folder, atomic_path
from kgrec.version import __version__

CHECKPOINT_FORMAT_VERSION = 1


@dataclass
class LoopState:
    """The training loop's progress, as plain numbers."""

    epoch: int = 0
    best_epoch: int = -1
    best_value: float = -math.inf
    best_valid: dict = field(default_factory=dict)
    waited: int = 0
    epoch_times: list[float] = field(default_factory=list)
    train_seconds: float = 0.0


def save_checkpoint(folder: Path, model, optimizer, generator: torch.Generator, state: LoopState) -> None:
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, entry in opt["state"].items():
        for key, value in entry.items():
            tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
    tensors["rng.generator"] = generator.get_state().cpu()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "param_groups": opt["param_groups"],
        "state": asdict(state),
    }
    with atomic_folder(folder) as tmp:
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta, default=_json_number), encoding="utf-8")


def _json_number(value):
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


def load_checkpoint(folder: Path, model, optimizer, generator: torch.Generator) -> LoopState:
    folder = Path(folder)
    if not (folder / "state.json").is_file() or not (folder / "tensors.safetensors").is_file():
        raise KgrecError("no checkpoint to resume from (the run stopped before its first epoch ended?)", path=folder)
    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    if meta.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise KgrecError(
            f"checkpoint format version {meta.get('format_version')} is not supported (expects {CHECKPOINT_FORMAT_VERSION})",
            path=folder,
        )
    tensors = load_file(str(folder / "tensors.safetensors"))
    device = next(model.parameters()).device
    model.load_state_dict({k[len("model."):]: v.to(device) for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            # Adam keeps 'step' on the CPU unless fused/capturable; match the parameter's device otherwise
            opt_state.setdefault(int(idx), {})[name] = value.to(device) if name != "step" or value.dim() else value
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    state = meta["state"]
    state["best_value"] = float(state["best_value"])
    return LoopState(**state)


def save_weights(model, path: Path) -> None:
    """The model's state (parameters and buffers, e.g. the item-item blend) as safetensors, atomically."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(Path(path), ".safetensors") as tmp:
        save_file(state, str(tmp), metadata={"kgrec_version": __version__})


def load_weights(model, path: Path, device) -> None:
    """Load ``model.safetensors`` into ``model``; weights of another model are a clear error."""
    path = Path(path)
    if not path.is_file():
        raise KgrecError("no model.safetensors: did the training finish?", path=path.parent)
    try:
        model.load_state_dict(load_file(str(path), device=str(device)))
    except RuntimeError as e:
        raise KgrecError(f"the weights do not match the model that config.toml describes ({e})", path=path) from None
