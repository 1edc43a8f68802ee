"""A light text encoder distilled from the transformer: static token embeddings, mean-pooled.

Why: encoding a whole catalogue's descriptions (or a new user's typed profile, at request
time) with a transformer is the slowest step kgrec has on a CPU. A *static* student -- one
learnt vector per token of the teacher's own vocabulary, averaged over a text, then one linear
map -- needs no attention and no layers, and encodes tens of times faster (the idea of
Model2Vec and of static sentence-transformers embeddings). It is trained to reproduce the
teacher's unit vectors on the graph's own texts, so its vectors live in the teacher's space and
a run trained on teacher features can use it for added items and new users' text unchanged.

The student starts from what the teacher outputs for each token of its vocabulary alone
(``start="outputs"``, Model2Vec's start: :meth:`~kgrec.text.encoder.TextEncoder.token_outputs`), or
from its input token embeddings (``start="inputs"``; MiniLM's are as wide as its output), and is
trained with Adam on one minus the cosine to the teacher's vector; a seeded
tenth of the texts is held out whole, with no span of them trained on, to choose the number of
epochs and to report how a new description fares (its mean cosine to the teacher); the student
that is written is then trained again on every text for that many epochs.

A student folder holds ``kgrec_student.json`` (what it is, its teacher, its held-out cosine),
``student.safetensors`` and the teacher's tokenizer files. :class:`kgrec.text.encoder.TextEncoder`
loads such a folder like any model folder (``[text] model = "FOLDER"``, ``--text-model FOLDER``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.io import atomic_folder

MARKER = "kgrec_student.json"
WEIGHTS = "student.safetensors"
STARTS = ("outputs", "inputs")  # where the student's token vectors begin (see distill_student)


class StaticStudent(nn.Module):
    r"""A text as the mean of its tokens' learnt vectors, mapped linearly and normalised.

    .. math::
        \mathbf{s}(t) = \mathrm{normalize}\Big(\mathbf{W}\,\frac{1}{|t|}\sum_{w \in t} \mathbf{e}_w\Big)
    """

    def __init__(self, vocab_size: int, token_dim: int, dim: int):
        super().__init__()
        self.vocab_size, self.token_dim, self.dim = vocab_size, token_dim, dim
        self.tokens = nn.EmbeddingBag(vocab_size, token_dim, mode="mean")
        self.out = nn.Linear(token_dim, dim, bias=False)

    def forward(self, ids: Tensor, offsets: Tensor) -> Tensor:
        return nn.functional.normalize(self.out(self.tokens(ids, offsets)), dim=-1)


def is_student(folder: str | Path) -> bool:
    """Whether ``folder`` is a student written by ``kgrec text distill``."""
    return (Path(folder) / MARKER).is_file()


def bags(tokenizer, texts: list[str], max_length: int) -> tuple[Tensor, Tensor]:
    """``(ids, offsets)`` for :class:`StaticStudent`: each text's token ids, special tokens left out."""
    encoded = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
    encoded = [ids if ids else [unk] for ids in encoded]  # an empty text still gets a vector
    lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.long)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    return torch.tensor([i for ids in encoded for i in ids], dtype=torch.long), offsets


def load_student(folder: str | Path, device: torch.device) -> tuple[object, StaticStudent, dict]:
    """``(tokenizer, student, meta)`` of a student folder."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    try:
        meta = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        student = StaticStudent(int(meta["vocab_size"]), int(meta["token_dim"]), int(meta["dim"]))
        student.load_state_dict(load_file(str(folder / WEIGHTS)))
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise KgrecError(f"damaged text student ({str(e).splitlines()[0] if str(e) else type(e).__name__}); distil it again", path=folder) from None
    return tokenizer, student.to(device).eval(), meta


def crops(texts: list[str], per_text: int, seed: int) -> list[str]:
    """``per_text`` random spans of each text (half of its words or more): more targets to learn
    from, and the short, partial texts a typed profile or a terse description look like."""
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        words = text.split()
        if len(words) < 4:
            continue
        for _ in range(per_text):
            n = int(rng.integers(max(2, len(words) // 2), len(words)))
            start = int(rng.integers(0, len(words) - n + 1))
            out.append(" ".join(words[start : start + n]))
    return out


def held_out_split(texts: list[str], augment: int, seed: int) -> tuple[list[str], list[str]]:
    """``(training texts, held-out texts)``: a seeded tenth of the distinct texts is held out
    whole, and only the other texts are cropped (:func:`crops`) into more training texts.

    Why by source text: a held-out crop whose full text, or a sibling crop, was trained on
    shares most of its words with it. Drawing the held-out tenth from texts and crops alike
    (kgrec before 2026-12-07) reported a held-out cosine of 0.946 for the student of draw 2024's
    warm ml-100k graph; held out whole, the same recipe scores 0.857 and 0.865 (two random
    tenths). A new item's description is the second case.
    """
    texts = sorted(set(texts))
    order = np.random.default_rng(seed).permutation(len(texts))
    n_valid = max(1, len(texts) // 10)
    valid = [texts[i] for i in order[:n_valid]]
    train = [texts[i] for i in order[n_valid:]]
    return train + crops(train, augment, seed), valid


def encode_all(teacher, texts: list[str]) -> dict[str, Tensor]:
    """The teacher's unit vector of each distinct text, encoded once."""
    distinct = sorted(set(texts))
    rows = torch.from_numpy(np.asarray(teacher.encode(distinct, progress=False), dtype=np.float32))
    return dict(zip(distinct, rows))


def fit_student(
    init: Tensor, texts: list[str], vectors: dict[str, Tensor], tokenizer, max_length: int, epochs: int, lr: float,
    batch_size: int, gen: torch.Generator, held_out: list[str] | None = None,
) -> tuple[StaticStudent, list[float]]:
    """A :class:`StaticStudent` from the teacher's token embeddings ``init``, trained ``epochs``
    passes on one minus the cosine to ``vectors``; with ``held_out`` texts, also their mean cosine
    before training and after each epoch (``curve[e]``: after ``e`` epochs)."""
    dim = next(iter(vectors.values())).numel()
    student = StaticStudent(init.size(0), init.size(1), dim)
    with torch.no_grad():
        student.tokens.weight.copy_(init)
        if init.size(1) == dim:
            student.out.weight.copy_(torch.eye(dim))
    target = torch.stack([vectors[t] for t in texts])
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    curve: list[float] = []
    if held_out:
        ids_valid, off_valid = bags(tokenizer, held_out, max_length)
        target_valid = torch.stack([vectors[t] for t in held_out])

    def held_out_cosine() -> None:
        if held_out:
            student.eval()
            with torch.no_grad():
                curve.append(float((student(ids_valid, off_valid) * target_valid).sum(1).mean()))
            student.train()

    held_out_cosine()
    for _ in range(epochs):
        for chunk in torch.randperm(len(texts), generator=gen).split(batch_size):
            ids, offsets = bags(tokenizer, [texts[i] for i in chunk], max_length)
            loss = 1.0 - (student(ids, offsets) * target[chunk]).sum(1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        held_out_cosine()
    return student.eval(), curve


def distill_student(
    texts: list[str],
    teacher,
    out: Path,
    *,
    epochs: int = 30,
    augment: int = 2,
    lr: float = 5e-3,
    batch_size: int = 256,
    seed: int = 2024,
    start: str = "outputs",
    force: bool = False,
    log=print,
) -> dict:
    """Train a :class:`StaticStudent` on ``texts`` to reproduce ``teacher`` (a
    :class:`~kgrec.text.encoder.TextEncoder`); write the student folder ``out`` whole; return
    its metadata (held-out cosine, seconds). ``augment`` random spans of each training text are
    added to the training texts (:func:`crops`); the held-out tenth is whole texts none of whose
    spans was trained on (:func:`held_out_split`). ``start`` is where the token vectors begin:
    ``"outputs"`` (the teacher's output for each token alone; on ml-100k's warm descriptions a
    held-out cosine of 0.92 where ``"inputs"``, its input embeddings, reach 0.86) or ``"inputs"``.

    Raises:
        KgrecError: fewer than 10 distinct texts, an unknown ``start``, or ``out`` exists (unless
            ``force``) or is not a student folder.
    """
    if start not in STARTS:
        raise KgrecError(f"unknown student start {start!r}: choose one of {', '.join(STARTS)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not is_student(out):
            raise KgrecError("exists and is not a kgrec text student; choose another --out", path=out)
        if not force:
            raise KgrecError("a text student is already there; add --force to replace it", path=out)
    texts = sorted({t for t in texts if t and t.strip()})
    if len(texts) < 10:
        raise KgrecError(f"distilling a text student needs at least 10 distinct texts, got {len(texts)}")
    t0 = time.perf_counter()
    train_texts, valid_texts = held_out_split(texts, augment, seed)
    all_texts = texts + crops(texts, augment, seed)  # the refit reads every text and its spans
    vectors = encode_all(teacher, train_texts + valid_texts + all_texts)
    tokenizer = teacher.tokenizer
    init = teacher.token_outputs() if start == "outputs" else teacher.token_embeddings()
    gen = torch.Generator().manual_seed(seed)
    # 1. choose the number of epochs on whole texts the student never saw
    _, curve = fit_student(init, train_texts, vectors, tokenizer, teacher.max_length, epochs, lr, batch_size, gen,
                           held_out=valid_texts)
    best_epoch = max(range(len(curve)), key=lambda e: (curve[e], -e))
    # 2. the student that is written: every text, for that many epochs
    student, _ = fit_student(init, all_texts, vectors, tokenizer, teacher.max_length, best_epoch, lr, batch_size, gen)
    start_cosine, best = curve[0], curve[best_epoch]
    n_valid = len(valid_texts)
    meta = {
        "kind": "static token embeddings, mean-pooled, linear map (kgrec text distill)",
        "teacher": teacher.model_name,
        "start": start,
        "vocab_size": student.vocab_size,
        "token_dim": student.token_dim,
        "dim": student.dim,
        "max_length": teacher.max_length,
        "texts": len(all_texts),
        "held_out_texts": n_valid,
        "held_out": "whole texts, no span of them trained on; the written student is then refit on all texts",
        "held_out_cosine_before": start_cosine,
        "held_out_cosine": best,
        "best_epoch": best_epoch,
        "epochs": epochs,
        "seconds": time.perf_counter() - t0,
    }
    with atomic_folder(out) as tmp:
        tokenizer.save_pretrained(str(tmp))
        save_file({k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()}, str(tmp / WEIGHTS))
        (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log(
        f"text student: held-out cosine to the teacher {best:.4f} (from {start_cosine:.4f} at the start, epoch {best_epoch}), "
        f"refit on all {len(all_texts):,} texts, {meta['seconds']:.0f}s; written to {out}"
    )
    return meta


__all__ = ["MARKER", "STARTS", "StaticStudent", "bags", "crops", "distill_student", "encode_all", "fit_student", "held_out_split", "is_student", "load_student"]
