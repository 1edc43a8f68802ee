"""Runs: train one, or load a finished one to evaluate and recommend.

A run folder holds everything needed to reproduce and reuse a training run::

    run.json            graph folder, versions, device, seed
    config.toml         the resolved experiment configuration
    split/              train.csv, valid.csv, test.csv (original ids) -- feed them to any library
    metrics.jsonl       one line per evaluated epoch
    model.safetensors   the weights selected on validation
    results.json        validation metrics at the selected epoch, test metrics, timings

:func:`load_run` rebuilds the model from these files (BERT features come back from the
content-addressed cache) and returns a :class:`TrainedRun` for evaluation and recommendation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from kgrec import __version__
from kgrec.config import ExperimentConfig, load_experiment
from kgrec.errors import KgrecError
from kgrec.eval.metrics import topk_items
from kgrec.eval.splits import Split, make_split, read_split, write_split
from kgrec.graph.container import KnowledgeGraph
from kgrec.graph.store import load_graph
from kgrec.graph.useritem import UserItemSets
from kgrec.io import write_json
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.item_item import build_item_item
from kgrec.models.recommender import Recommender, build_model, validate_model_config
from kgrec.text.features import build_node_features
from kgrec.train import distributed
from kgrec.train.device import resolve_device, seed_everything
from kgrec.train.loop import SplitSets, embeddings, evaluate_sets, fit, write_config
from kgrec.train.view import target_pairs, training_tensors

RUN_FORMAT_VERSION = 1


def prepare_model(
    kg: KnowledgeGraph, config: ExperimentConfig, split: Split, device: torch.device
) -> tuple[Recommender, GraphTensors]:
    """Features, the training graph (held-out pairs removed) and a fresh model, on ``device``."""
    features = has_text = None
    if config.model.use_text and config.text.enabled:
        features, has_text = build_node_features(kg, config.text, device=str(device))
    held_out = pd.concat([split.valid, split.test], ignore_index=True)[["user", "item"]]
    g = training_tensors(
        kg, held_out, use_kg=config.model.use_kg, kg_min_degree=config.model.kg_min_degree, features=features, has_text=has_text
    )
    g = g.to(device)
    model = build_model(config.model, g).to(device)
    if config.model.item_item.lower() != "none":  # from the training positives only, like the graph
        history = UserItemSets.from_pairs(split.train["user"].to_numpy(), split.train["item"].to_numpy(), kg.num_users, kg.num_items)
        model.item_item = build_item_item(config.model.item_item, history.to(device), config.model.item_item_l2)
    return model, g


def split_for(kg: KnowledgeGraph, config: ExperimentConfig, split_dir: Path | None = None, log=print) -> Split:
    """The run's split: read from ``split_dir``, or made by ``config.eval`` (same seed, same split)."""
    if split_dir is not None:
        log(f"split: read from {split_dir}")
        return read_split(Path(split_dir), kg.user_index, kg.item_index)
    pairs = target_pairs(kg, config.train.target_events)
    log(f"split: {config.eval.split} {config.eval.ratios} (seed {config.eval.split_seed})")
    return make_split(pairs, config.eval.split, config.eval.ratios, config.eval.split_seed)


def train_run(
    graph_dir: Path,
    config: ExperimentConfig,
    run_dir: Path,
    *,
    split_dir: Path | None = None,
    progress: bool = True,
    log=print,
) -> dict:
    """Train on a built graph and leave a complete run folder; returns ``results.json``'s content.

    Launched by ``torchrun`` with several processes, each one runs this and trains a DDP replica
    (:mod:`kgrec.train.distributed`); rank 0 alone logs and writes the run folder.
    """
    with distributed.launch(config.train.device) as world:
        return _train_run(world, Path(graph_dir), config, Path(run_dir), split_dir, progress, world.main_only(log))


def _train_run(world, graph_dir: Path, config: ExperimentConfig, run_dir: Path, split_dir, progress, log) -> dict:
    kg = load_graph(graph_dir)
    device = world.device
    generator = seed_everything(config.train.seed, device)

    validate_model_config(config.model, kg.num_items)  # before anything is written
    split = split_for(kg, config, split_dir, log=log)
    log(f"  train {len(split.train):,}  valid {len(split.valid):,}  test {len(split.test):,} user-item pairs")
    if world.is_main:  # one writer: every process made (or read) the same split
        _start_run_folder(run_dir, graph_dir, kg, config, split, device, world.size)

    t0 = time.perf_counter()
    model, g = prepare_model(kg, config, split, device)
    log(
        f"model: {config.model.encoder}, {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{g.num_nodes:,} nodes, {g.edge_index.size(1):,} directed edges, {g.num_relations} relations "
        f"(features ready in {time.perf_counter() - t0:.1f}s) on {device}"
        + (f", one of {world.size} DDP processes (train.batch_size per process)" if world.parallel else "")
    )
    if config.train.sampler == "neighbor":
        log(f"training on sampled neighbourhoods, fanouts {config.train.fanouts} (evaluation over the full graph)")
    return fit(model, g, split, config, run_dir, device=device, generator=generator, progress=progress, world=world)


def _start_run_folder(run_dir: Path, graph_dir: Path, kg, config: ExperimentConfig, split: Split, device, processes: int) -> None:
    """Split, resolved config and ``run.json``: what a run folder holds before training starts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_split(split, run_dir / "split", kg.nodes["user"]["id"].tolist(), kg.nodes["item"]["id"].tolist())
    write_config(config, run_dir)
    write_json(
        run_dir / "run.json",
        {
            "format": "kgrec-run",
            "format_version": RUN_FORMAT_VERSION,
            "graph": str(graph_dir.resolve()),
            "graph_name": kg.manifest.get("name"),
            "kgrec_version": __version__,
            "torch_version": torch.__version__,
            "device": str(device),
            "processes": processes,
            "seed": config.train.seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def resume_run(run_dir: Path, *, progress: bool = True, log=print) -> dict:
    """Continue a killed ``kgrec train`` from its last checkpoint (same config, split and graph).

    On the CPU with the same seed the result equals that of an uninterrupted run: weights,
    optimiser moments and random-number-generator states all come back from the checkpoint.
    """
    run_dir = Path(run_dir)
    meta = _read_run_meta(run_dir)
    if (run_dir / "results.json").is_file() and not (run_dir / "checkpoint").exists():
        raise KgrecError("this run already finished (results.json is there); nothing to resume", path=run_dir)
    config = load_experiment(run_dir / "config.toml")
    kg = load_graph(Path(meta["graph"]))
    with distributed.launch(config.train.device) as world:  # several processes under torchrun
        device = world.device
        generator = seed_everything(config.train.seed, device)
        split = read_split(run_dir / "split", kg.user_index, kg.item_index)
        model, g = prepare_model(kg, config, split, device)
        world.main_only(log)(f"resuming {run_dir} on {device}")
        return fit(model, g, split, config, run_dir, device=device, generator=generator, progress=progress, resume=True, world=world)


def _read_run_meta(run_dir: Path) -> dict:
    meta_path = run_dir / "run.json"
    if not meta_path.is_file():
        raise KgrecError("not a kgrec run folder (no run.json); train one with `kgrec train`", path=run_dir)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KgrecError(f"unreadable run.json ({e})", path=meta_path) from None
    if meta.get("format") != "kgrec-run" or meta.get("format_version") != RUN_FORMAT_VERSION:
        raise KgrecError(
            f"run format version {meta.get('format_version')} is not supported (expects {RUN_FORMAT_VERSION})",
            path=meta_path,
        )
    return meta


@dataclass
class TrainedRun:
    """A finished run, loaded for evaluation, recommendation and analysis."""

    run_dir: Path
    config: ExperimentConfig
    kg: KnowledgeGraph
    split: Split
    model: Recommender
    graph: GraphTensors
    device: torch.device

    def sets(self) -> SplitSets:
        return SplitSets.from_split(self.split, self.kg.num_users, self.kg.num_items, self.device)

    def evaluate(self, which: str = "test") -> dict[str, float]:
        """Full-ranking metrics on ``test`` (train+valid masked) or ``valid`` (train masked)."""
        s = self.sets()
        if which == "test":
            return evaluate_sets(self.model, self.graph, s.test, s.train.union(s.valid).to(self.device), self.config.eval.ks, self.config.eval.batch_size)
        if which == "valid":
            return evaluate_sets(self.model, self.graph, s.valid, s.train, self.config.eval.ks, self.config.eval.batch_size)
        raise KgrecError(f"unknown evaluation set {which!r} (test or valid)")

    def recommend(self, users: list[str] | None = None, k: int = 20) -> pd.DataFrame:
        """Top-``k`` items per user (original ids), excluding items seen in train and validation.

        Returns a DataFrame with columns ``user``, ``item``, ``rank`` (1-based), ``score``.
        """
        if k < 1:
            raise KgrecError(f"k must be at least 1, got {k}")
        index = self.kg.user_index
        if users is None:
            user_idx = list(range(self.kg.num_users))
        else:
            unknown = [u for u in users if u not in index]
            if unknown:
                raise KgrecError(f"unknown user id(s): {', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else ""))
            user_idx = [index[u] for u in users]
        s = self.sets()
        seen = s.train.union(s.valid).to(self.device)
        user_emb, item_emb = embeddings(self.model, self.graph)
        u = torch.as_tensor(user_idx, dtype=torch.long, device=self.device)
        items, scores = topk_items(lambda b: self.model.rank_scores(user_emb, item_emb, b), u, seen, k, batch_size=self.config.eval.batch_size)
        items, scores = items.cpu(), scores.cpu()
        user_ids = self.kg.nodes["user"]["id"].to_numpy()
        item_ids = self.kg.nodes["item"]["id"].to_numpy()
        valid = items >= 0
        rows = valid.nonzero(as_tuple=False)
        return pd.DataFrame(
            {
                "user": user_ids[u.cpu()[rows[:, 0]].numpy()],
                "item": item_ids[items[valid].numpy()],
                "rank": (rows[:, 1] + 1).numpy(),
                "score": scores[valid].numpy(),
            }
        )


def load_run(run_dir: Path, device: str = "auto") -> TrainedRun:
    """Load a finished run (weights selected on validation) for evaluation or recommendation."""
    run_dir = Path(run_dir)
    meta = _read_run_meta(run_dir)
    if not (run_dir / "model.safetensors").is_file():
        raise KgrecError("the run has no model.safetensors: did its training finish?", path=run_dir)
    config = load_experiment(run_dir / "config.toml")
    kg = load_graph(Path(meta["graph"]))
    dev = resolve_device(device)
    split = read_split(run_dir / "split", kg.user_index, kg.item_index)
    model, g = prepare_model(kg, config, split, dev)
    state = load_file(str(run_dir / "model.safetensors"), device=str(dev))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise KgrecError(f"weights do not match the model of config.toml ({e})", path=run_dir / "model.safetensors") from None
    model.eval()
    return TrainedRun(run_dir, config, kg, split, model, g, dev)
