"""The popularity baseline: every user gets the items most interacted with in training.

It is scored by the same full-ranking code, on the same split, with the same masking as the
GNNs, and leaves the same ``results.json`` so the table treats it like any other row.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from kgrec.config import ExperimentConfig
from kgrec.eval.metrics import full_ranking_metrics
from kgrec.graph.store import load_graph
from kgrec.io import write_json
from kgrec.runs import split_for
from kgrec.train.loop import SplitSets, write_config


def popularity_run(graph_dir: Path, config: ExperimentConfig, run_dir: Path, log=print) -> dict:
    start = time.perf_counter()
    kg = load_graph(graph_dir)
    split = split_for(kg, config, log=log)
    sets = SplitSets.from_split(split, kg.num_users, kg.num_items, "cpu")
    counts = torch.bincount(torch.as_tensor(split.train["item"].to_numpy().copy()), minlength=kg.num_items).float()
    counts = counts + torch.linspace(0, 1e-3, kg.num_items)  # deterministic tie-break by item index

    def scores(users):
        return counts.expand(len(users), -1)

    ec = config.eval
    valid = full_ranking_metrics(scores, sets.valid, sets.train, ks=ec.ks, batch_size=ec.batch_size)
    test = full_ranking_metrics(scores, sets.test, sets.train.union(sets.valid), ks=ec.ks, batch_size=ec.batch_size)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_config(config, Path(run_dir))
    results = {
        "best_epoch": 0,
        "epochs_run": 0,
        "selection_metric": "none (no parameters)",
        "valid": valid,
        "test": test,
        "seconds_per_epoch": 0.0,
        "train_seconds": time.perf_counter() - start,
        "device": "cpu",
        "device_name": "cpu",
        "seed": config.train.seed,
    }
    (Path(run_dir) / "metrics.jsonl").write_text("")
    write_json(Path(run_dir) / "results.json", results)
    return results
