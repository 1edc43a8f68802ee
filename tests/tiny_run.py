"""A tiny trained run made in memory, shared by the explain, cold-start and API tests.

No BERT: :class:`HashingEncoder` stands in for the text encoder (bag of words with a fixed
random vector per word), so tests run in seconds and never load a model. Loaded by the
conftests with :func:`load_helper` (the tests run with ``--import-mode=importlib``).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import torch

from kgrec.models.content import load_content_model
from kgrec.config import ColdStartConfig, ExperimentConfig, ModelConfig, TrainConfig
from kgrec.eval.splits import make_split
from kgrec.graph.build import build_graph
from kgrec.ingest.sources import BuildReport, SourceTables
from kgrec.models.registry import build_model
from kgrec.runs import Run
from kgrec.text.features import node_texts
from kgrec.train.device import seed_everything
from kgrec.train.loop import fit
from kgrec.train.view import target_pairs, training_tensors

EX = "http://example.org/"
GENRES = ["comedy", "drama"]


class HashingEncoder:
    """Bag of words with a fixed random vector per word: similar texts get similar vectors."""

    dim = 32

    def __init__(self):
        self.calls = 0

    def encode(self, texts, progress=True):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in str(text).lower().replace(".", " ").split():
                out[row] += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(self.dim)
            out[row] /= max(np.linalg.norm(out[row]), 1e-9)
        return out


def tiny_tables() -> SourceTables:
    """24 users who like comedies or dramas, 16 films with a genre and one of 4 directors."""
    rows = []
    for u in range(24):
        liked = [i for i in range(16) if i % 2 == u % 2]
        for j, i in enumerate(liked[: 5 + u % 3]):
            rows.append((f"u{u}", f"m{i}", "click", math.nan, float(j)))
    triples, texts = [], []
    for i in range(16):
        g = GENRES[i % 2]
        triples.append((f"{EX}item/m{i}", "http://schema.org/genre", f"{EX}genre/{g}"))
        triples.append((f"{EX}item/m{i}", "http://schema.org/director", f"{EX}person/p{i % 4}"))
        texts.append((f"{EX}item/m{i}", f"Movie {i}", f"A {g} film."))
    texts += [(f"{EX}genre/{g}", g.title(), None) for g in GENRES]
    return SourceTables(
        pd.DataFrame(rows, columns=["user", "item", "event", "rating", "timestamp"]),
        {f"m{i}": f"{EX}item/m{i}" for i in range(16)},
        pd.DataFrame(triples, columns=["head", "relation", "tail"]),
        pd.DataFrame(texts, columns=["node", "label", "description"]),
        BuildReport(),
        node_types={f"{EX}genre/{g}": "Genre" for g in GENRES},
    )


def train_tiny(run_dir, use_text: bool = True, epochs: int = 12, content_inputs: str = "text+kg", refit: bool = False) -> Run:
    kg = build_graph(tiny_tables(), name="tiny")
    config = ExperimentConfig(
        model=ModelConfig(dim=16, layers=2, use_text=use_text, kg_min_degree=2),
        train=TrainConfig(epochs=epochs, batch_size=64, lr=0.02, patience=epochs, seed=3, device="cpu"),
        coldstart=ColdStartConfig(inputs=content_inputs, refit=refit),
    )
    features = has_text = None
    if use_text:
        texts = node_texts(kg)
        has_text = torch.tensor([t is not None for t in texts])
        features = torch.from_numpy(HashingEncoder().encode([t or "" for t in texts])) * has_text.unsqueeze(1)
    split = make_split(target_pairs(kg), "random", [0.8, 0.1, 0.1], seed=1)
    held = pd.concat([split.valid, split.test])[["user", "item"]]
    g = training_tensors(kg, held, kg_min_degree=2, features=features, has_text=has_text)
    device = torch.device("cpu")
    model = build_model(config, g)
    fit(model, g, split, config, run_dir, device=device, generator=seed_everything(3), progress=False)
    model.eval()
    return Run(config, kg, split, model, g, device, run_dir, content=load_content_model(run_dir, device))


