"""Text-student variants compared on held-out whole descriptions of one warm graph (issue 15).

    .venv/bin/python experiments/student_variants.py GRAPH [VARIANT,...]

GRAPH is a draw's *warm* graph (``runs/cold-start-ml-100k-items-sS/items/graph``), so no cold
item's text is read. A seeded tenth of its distinct texts is held out whole; each variant is
trained on the rest (and crops of them) and reports its best held-out cosine to the teacher
and the epoch it came at. Variants: ``inputs`` (start from the teacher's input embeddings),
``outputs`` (from its per-token outputs, Model2Vec's start; today's default), ``outputs-lr2``
(lr 2e-3), ``outputs-crops6`` (6 crops a text). Chose ``outputs`` on 2026-12-07 (on draw 2024's
warm graph 0.9252 against 0.8653; README, experiments/results/cold-start.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from kgrec.graph.store import load_graph
from kgrec.text.encoder import TextEncoder
from kgrec.text.features import node_texts
from kgrec.text.student import encode_all, fit_student, held_out_split


def main() -> None:
    torch.set_num_threads(1)
    graph = Path(sys.argv[1])
    chosen = sys.argv[2].split(",") if len(sys.argv) > 2 else ["inputs", "outputs"]
    teacher = TextEncoder("default")
    texts = sorted({t for t in node_texts(load_graph(graph)) if t and t.strip()})
    starts = {"inputs": teacher.token_embeddings, "outputs": teacher.token_outputs}
    variants = {
        "inputs": dict(start="inputs"),
        "outputs": dict(start="outputs"),
        "outputs-lr2": dict(start="outputs", lr=2e-3),
        "outputs-crops6": dict(start="outputs", augment=6),
    }
    cache: dict[str, torch.Tensor] = {}
    print(f"{len(texts)} texts in {graph}", flush=True)
    for name in chosen:
        v = variants[name]
        t0 = time.perf_counter()
        train, valid = held_out_split(texts, v.get("augment", 2), 2024)
        vectors = encode_all(teacher, train + valid)
        if v["start"] not in cache:
            cache[v["start"]] = starts[v["start"]]()
        gen = torch.Generator().manual_seed(2024)
        _, curve = fit_student(cache[v["start"]], train, vectors, teacher.tokenizer, teacher.max_length, 30,
                               v.get("lr", 5e-3), 256, gen, held_out=valid)
        best = max(range(len(curve)), key=lambda e: (curve[e], -e))
        print(f"{name}: held-out cosine {curve[best]:.4f} (epoch {best}; {curve[0]:.4f} at the start), "
              f"{len(train)} training texts, {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
