"""Training-free baselines: popularity, and EASE's closed-form item-item model.

They are scored by the same full-ranking code, on the same split, with the same masking as the
GNNs, and leave the same ``results.json`` so the table treats them like any other row.

* **Popularity**: every user gets the items most interacted with in training.
* **EASE** (Steck, WWW 2019): the ridge regression of each item on all the others, zero
  diagonal (:func:`kgrec.models.item_item.ease_weights`). Its one hyper-parameter, the L2
  penalty, is chosen on validation from :data:`EASE_L2_GRID`. On dense data sets it is among
  the strongest collaborative filters there are, which is why a KG recommender's table should
  hold it: kgrec blends it in as its item-item view (``model.item_item = "ease"``).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from kgrec.config import ExperimentConfig
from kgrec.eval.beyond import evaluation_details, item_entity_sets
from kgrec.eval.metrics import full_ranking_metrics
from kgrec.eval.paired import write_per_user
from kgrec.eval.sets import SplitSets
from kgrec.graph.store import load_graph
from kgrec.io import write_json
from kgrec.models.item_item import ItemItemView
from kgrec.runs import split_for
from kgrec.runs.folder import write_config

#: EASE's L2 penalties tried on validation.
EASE_L2_GRID = (50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0)


def _setup(graph_dir: Path, config: ExperimentConfig, log):
    kg = load_graph(graph_dir)
    split = split_for(kg, config, log=log)
    return kg, split, SplitSets.from_split(split, kg.num_users, kg.num_items, "cpu")


def _evaluate(scores, sets: SplitSets, config: ExperimentConfig, which: str) -> dict:
    truth, masked = sets.truth_and_mask(which)
    return full_ranking_metrics(scores, truth, masked, ks=config.eval.ks, batch_size=config.eval.batch_size)


def _test(scores, kg, sets: SplitSets, config: ExperimentConfig, run_dir: Path) -> tuple[dict, dict]:
    """Test metrics, and the test set beyond accuracy and by group as for a trained run
    (:mod:`kgrec.eval.beyond`), from one ranking of the test users; the per-user metrics are
    kept in the run folder (:mod:`kgrec.eval.paired`)."""
    truth, masked = sets.truth_and_mask("test")
    ks, batch = config.eval.ks, config.eval.batch_size
    test, per_user = full_ranking_metrics(scores, truth, masked, ks=ks, batch_size=batch, return_per_user=True)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_per_user(per_user, run_dir)
    return test, evaluation_details(scores, truth, masked, sets.train, ks, batch, entities=item_entity_sets(kg), per_user=per_user)


def _write_results(config: ExperimentConfig, run_dir: Path, valid: dict, test: dict, selection: str, start: float, **extra) -> dict:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(config, run_dir)
    results = {
        "best_epoch": 0,
        "epochs_run": 0,
        "selection_metric": selection,
        "valid": valid,
        "test": test,
        "seconds_per_epoch": 0.0,
        "train_seconds": time.perf_counter() - start,
        "device": "cpu",
        "device_name": "cpu",
        "seed": config.train.seed,
        **extra,
    }
    (run_dir / "metrics.jsonl").write_text("")
    write_json(run_dir / "results.json", results)
    return results


def popularity_run(graph_dir: Path, config: ExperimentConfig, run_dir: Path, log=print) -> dict:
    start = time.perf_counter()
    kg, split, sets = _setup(graph_dir, config, log)
    counts = torch.bincount(torch.as_tensor(split.train["item"].to_numpy().copy()), minlength=kg.num_items).float()
    counts = counts + torch.linspace(0, 1e-3, kg.num_items)  # deterministic tie-break by item index

    def scores(users):
        return counts.expand(len(users), -1)

    valid = _evaluate(scores, sets, config, "valid")
    test, details = _test(scores, kg, sets, config, run_dir)
    return _write_results(config, run_dir, valid, test, "none (no parameters)", start, test_details=details)


def ease_run(graph_dir: Path, config: ExperimentConfig, run_dir: Path, log=print) -> dict:
    """EASE with its L2 penalty chosen on validation ``eval.metric``; the test set is scored once."""
    start = time.perf_counter()
    kg, _, sets = _setup(graph_dir, config, log)
    metric = config.eval.metric
    tried, best = {}, None
    for l2 in EASE_L2_GRID:
        view = ItemItemView.fit(sets.train, l2)
        valid = _evaluate(view, sets, config, "valid")
        tried[l2] = valid[metric]
        log(f"EASE l2 {l2:g}: valid {metric} {valid[metric]:.4f}")
        if best is None or valid[metric] > best[1][metric]:
            best = (view, valid, l2)
    view, valid, l2 = best
    test, details = _test(view, kg, sets, config, run_dir)
    return _write_results(config, run_dir, valid, test, f"valid {metric} over l2", start, ease={"l2": l2, "tried": tried}, test_details=details)


__all__ = ["EASE_L2_GRID", "ease_run", "popularity_run"]
