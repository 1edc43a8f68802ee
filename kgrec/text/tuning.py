"""The text encoder adapted to the task: its top layers, or LoRA adapters, trained for cold start.

``[text] tune = "top-N"`` unfreezes the top N transformer layers, ``"lora"`` adds LoRA adapters
to the attention's query and value projections (PEFT, the optional ``lora`` extra); the
default ``"frozen"`` trains nothing. What is trained, and on what: the run's content model
(:mod:`kgrec.train.content`) is distilled from the trained recommender with the item texts
encoded by this module *with gradients*, so the encoder learns what makes a description
predict how users will score the item -- the recommendation objective, as the trained model
scores it. The graph's node features (the GNN's input) stay the frozen encoder's: tuning
changes how new items are embedded, not the trained model.

What is saved (``RUN/text_tuned/``): the trainable parameters only (the top layers, or the
adapters), by name, and which encoder they belong to; loading rebuilds the encoder the same way
and puts them back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.io import atomic_folder

FOLDER = "text_tuned"
_TOP = re.compile(r"^top-([1-9][0-9]*)$")
TUNE_HELP = 'text.tune must be "frozen", "top-N" (N >= 1 transformer layers) or "lora"'


def check_tune(tune: str) -> None:
    """Refuse what cannot run, before anything is written (PEFT missing for ``lora`` included)."""
    if tune in ("frozen", "lora") or _TOP.match(tune):
        if tune == "lora":
            try:
                import peft  # noqa: F401
            except ImportError:
                raise KgrecError('text.tune = "lora" needs the peft package: pip install "kgrec[lora]"') from None
        return
    raise KgrecError(f"{TUNE_HELP}, got {tune!r}")


def check_tune_model(model: str, tune: str) -> None:
    """``top-N``: the text model has N layers or more (read from its config, before training)."""
    match = _TOP.match(tune)
    if not match:
        return
    from transformers import AutoConfig

    from kgrec.text.encoder import _offline, _resolve_model

    source, _, _ = _resolve_model(model)
    try:
        layers = int(getattr(AutoConfig.from_pretrained(source, local_files_only=_offline()), "num_hidden_layers"))
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return  # the encoder's own loading reports an unloadable model, by name
    if int(match.group(1)) > layers:
        raise KgrecError(f"text.tune = {tune!r}: the text model {model!r} has only {layers} layers")


class TunedText(nn.Module):
    """A transformer whose top layers (or LoRA adapters) train; masked mean pooling, L2 norm.

    Args:
        model: what :class:`~kgrec.text.encoder.TextEncoder` accepts (``default``, a folder...).
        tune: ``top-N`` or ``lora``.
        max_length: tokens per text.
    """

    def __init__(self, model: str, tune: str, max_length: int = 128):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        from kgrec.text.encoder import _offline, _resolve_model

        check_tune(tune)
        if tune == "frozen":
            raise KgrecError('text.tune = "frozen" trains no text parameter')
        source, _, _ = _resolve_model(model)
        offline = _offline()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
            encoder = AutoModel.from_pretrained(source, local_files_only=offline)
        except (OSError, ValueError, KeyError, ImportError) as e:
            raise KgrecError(f"cannot load text model {model!r} to tune it: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
        self.model_name, self.tune, self.max_length = model, tune, max_length
        for p in encoder.parameters():
            p.requires_grad_(False)
        if tune == "lora":
            from peft import LoraConfig, get_peft_model

            encoder = get_peft_model(encoder, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"]))
        else:
            n = int(_TOP.match(tune).group(1))
            layers = _layers(encoder)
            if n > len(layers):
                raise KgrecError(f"text.tune = {tune!r}: the text model has only {len(layers)} layers")
            for layer in layers[-n:]:
                for p in layer.parameters():
                    p.requires_grad_(True)
        self.encoder = encoder
        self.dim = int(encoder.config.hidden_size)

    def trainable(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def forward(self, texts: list[str]) -> Tensor:
        device = next(self.encoder.parameters()).device
        batch = self.tokenizer([t or "" for t in texts], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(device)
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(mean, dim=-1)

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 64) -> Tensor:
        """``[n, dim]`` unit vectors, no gradients, in evaluation mode."""
        was = self.training
        self.eval()
        out = [self(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)] if texts else [torch.zeros(0, self.dim)]
        self.train(was)
        return torch.cat(out).float()

    def save(self, run_dir: Path, report: dict) -> None:
        with atomic_folder(Path(run_dir) / FOLDER) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.trainable().items()}, str(tmp / "trainable.safetensors"))
            meta = {"model": self.model_name, "tune": self.tune, "max_length": self.max_length, "report": report}
            (tmp / "tuned.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _layers(encoder) -> list[nn.Module]:
    """The transformer blocks of a BERT-like encoder, bottom to top."""
    for path in ("encoder.layer", "transformer.layer", "layers"):
        obj = encoder
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return list(obj)
    raise KgrecError("text.tune = top-N: cannot find the transformer layers of this text model")


def load_tuned_text(run_dir: Path, device: torch.device) -> TunedText | None:
    """The run's tuned text encoder, or None when it was trained with ``tune = "frozen"``."""
    folder = Path(run_dir) / FOLDER
    if not (folder / "tuned.json").is_file():
        return None
    try:
        meta = json.loads((folder / "tuned.json").read_text(encoding="utf-8"))
        module = TunedText(meta["model"], meta["tune"], int(meta["max_length"]))
        missing = module.load_state_dict(load_file(str(folder / "trainable.safetensors")), strict=False)
        if missing.unexpected_keys:
            raise ValueError(f"unexpected parameters {missing.unexpected_keys[:3]}")
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise KgrecError(f"damaged tuned text encoder ({e}); train the run again", path=folder) from None
    return module.to(device).eval()


__all__ = ["FOLDER", "TunedText", "check_tune", "check_tune_model", "load_tuned_text"]
