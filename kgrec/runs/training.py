"""Train a run, or continue a killed one: a built graph and a configuration in, a run folder out."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch

from kgrec.config import ExperimentConfig
from kgrec.eval.beyond import item_entity_sets
from kgrec.eval.splits import Split, make_split, read_split, thin_training
from kgrec.experiment import check_experiment, check_for_graph, load_experiment
from kgrec.graph.container import KnowledgeGraph
from kgrec.graph.store import load_graph
from kgrec.graph.useritem import UserItemSets
from kgrec.errors import KgrecError
from kgrec.models.base import Recommender, count_parameters
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.item_item import build_item_item
from kgrec.models.registry import build_model
from kgrec.io import is_empty_or_missing, replacing_folder, staging_folder
from kgrec.runs.folder import read_run_meta, run_graph, start_run_folder
from kgrec.text.features import build_node_features, node_text
from kgrec.text.tuning import check_tune_model
from kgrec.train import distributed
from kgrec.train.device import seed_everything
from kgrec.train.loop import fit
from kgrec.train.scenes import fit_scenes
from kgrec.train.sequences import fit_sequences
from kgrec.models.sequential import is_sequential
from kgrec.train.view import graph_events, target_pairs, training_tensors


def prepare_model(
    kg: KnowledgeGraph,
    config: ExperimentConfig,
    split: Split,
    device: torch.device,
    extra_held_out: pd.DataFrame | None = None,
    *,
    features: tuple | None = None,
) -> tuple[Recommender, GraphTensors]:
    """Features, the training graph (held-out pairs removed) and a fresh model, on ``device``.

    The item-item view, when the configuration asks for one, is fitted on the training
    positives only (like the graph) and given to the model as it is built. ``extra_held_out``:
    more (user, item) pairs to leave out of the graph (another scene's, for one model per scene).
    ``features``: ``(features, has_text)`` already at hand (``kgrec update`` encodes only its new
    nodes); None encodes every node's text (from the encoding cache where it can).
    """
    features, has_text = features if features is not None else (None, None)
    if config.model.use_text and features is None:
        features, has_text = build_node_features(kg, config.text, device=str(device))
    held_out = pd.concat(
        [split.valid, split.test, *([split.withheld] if split.withheld is not None else []), *([extra_held_out] if extra_held_out is not None else [])],
        ignore_index=True,
    )[["user", "item"]]
    g = training_tensors(
        kg, held_out, use_kg=config.model.use_kg, kg_min_degree=config.model.kg_min_degree, features=features, has_text=has_text,
        events=graph_events(kg, config.train.target_events, config.train.auxiliary_events),
    )
    g = g.to(device)
    view = None
    if config.model.item_item.lower() != "none":
        history = UserItemSets.from_pairs(split.train["user"].to_numpy(), split.train["item"].to_numpy(), kg.num_users, kg.num_items)
        view = build_item_item(config.model.item_item, history.to(device), config.model.item_item_l2)
    return build_model(config, g, item_item=view).to(device), g


def item_texts(kg: KnowledgeGraph) -> list[str | None]:
    """Each item's text (label and description), in item order: what ``[text] tune`` trains on."""
    from kgrec.graph.container import ITEM

    frame = kg.nodes[ITEM]
    labels = frame["label"] if "label" in frame else [None] * len(frame)
    descriptions = frame["text"] if "text" in frame else [None] * len(frame)
    return [node_text(a, b) for a, b in zip(labels, descriptions)]


def split_for(kg: KnowledgeGraph, config: ExperimentConfig, split_dir: Path | None = None, log=print) -> Split:
    """The run's split: read from ``split_dir``, or made by ``config.eval`` (same seed, same split)."""
    if split_dir is not None:
        log(f"split: read from {split_dir}")
        split = read_split(Path(split_dir), kg.user_index, kg.item_index)
    else:
        pairs = target_pairs(kg, config.train.target_events)
        log(f"split: {config.eval.split} {config.eval.ratios} (seed {config.eval.split_seed})")
        split = make_split(pairs, config.eval.split, config.eval.ratios, config.eval.split_seed)
    fraction = config.eval.train_fraction
    if fraction < 1.0 and split.withheld is None:  # a split read back already carries its thinning
        split = thin_training(split, fraction, config.eval.split_seed)
        log(f"sparse protocol: {fraction:g} of each user's training interactions kept ({len(split.train):,}; "
            f"{len(split.withheld):,} left out of training and of the graph)")
    return split


def train_run(
    graph_dir: Path,
    config: ExperimentConfig,
    run_dir: Path,
    *,
    split_dir: Path | None = None,
    progress: bool = True,
    log=print,
    force: bool = False,
) -> dict:
    """Train on a built graph and leave a complete run folder; returns ``results.json``'s content.

    The configuration is checked (:mod:`kgrec.experiment`), also against the graph, before the
    run folder is started. A run folder that exists is refused unless ``force``; then the new
    run trains in a staging folder beside it and replaces it whole when it is complete, so the
    old run stays intact until then (:func:`kgrec.io.replacing_folder`). Launched by
    ``torchrun`` with several processes, each one runs this and trains a DDP replica
    (:mod:`kgrec.train.distributed`); rank 0 alone logs and writes the run folder.
    """
    check_experiment(config)
    run_dir = Path(run_dir)
    check_run_target(run_dir, force)
    with distributed.launch(config.train.device) as world:
        log = world.main_only(log)
        if is_empty_or_missing(run_dir):  # a new run trains in place (and can be resumed there)
            return _train_run(world, Path(graph_dir), config, run_dir, split_dir, progress, log)
        if not world.is_main:  # only rank 0 writes: the others just need the same name
            return _train_run(world, Path(graph_dir), config, staging_folder(run_dir), split_dir, progress, log)
        with replacing_folder(run_dir) as staging:
            results = _train_run(world, Path(graph_dir), config, staging, split_dir, progress, log)
        log(f"replaced the earlier run in {run_dir} (--force)")
        return results


def check_run_target(run_dir: Path, force: bool) -> None:
    """Refuse a folder that is not a run, and an existing run unless ``force``; before any work."""
    run_dir = Path(run_dir)
    if is_empty_or_missing(run_dir):
        return
    if not (run_dir / "run.json").is_file():
        raise KgrecError("exists and is not a kgrec run folder; kgrec replaces only runs it wrote: choose another --run", path=run_dir)
    if not force:
        state = "an unfinished run (continue it with --resume)" if not (run_dir / "results.json").is_file() else "a finished run"
        raise KgrecError(f"{state} is already there; add --force to replace it, or choose another --run", path=run_dir)


def _train_run(world, graph_dir: Path, config: ExperimentConfig, run_dir: Path, split_dir, progress, log) -> dict:
    kg = load_graph(graph_dir)
    check_for_graph(config, kg)  # before anything is written
    if config.model.use_text and config.coldstart.content != "none":
        check_tune_model(config.text.model, config.text.tune)
    device = world.device
    generator = seed_everything(config.train.seed, device)

    split = split_for(kg, config, split_dir, log=log)
    log(f"  train {len(split.train):,}  valid {len(split.valid):,}  test {len(split.test):,} user-item pairs")
    if len(split.train) == 0:
        raise KgrecError("the training split is empty: nothing to learn from")
    if world.is_main:  # one writer: every process made (or read) the same split
        start_run_folder(run_dir, graph_dir, kg, config, split, device, world.size)

    if config.scenes.mode != "off":
        return _fit_scenes(world, kg, split, config, run_dir, generator, log)
    t0 = time.perf_counter()
    model, g = prepare_model(kg, config, split, device)
    log(
        f"model: {config.model.encoder}, {count_parameters(model):,} parameters, "
        f"{g.num_nodes:,} nodes, {g.edge_index.size(1):,} directed edges, {g.num_relations} relations "
        f"(features ready in {time.perf_counter() - t0:.1f}s) on {device}"
        + (f", one of {world.size} DDP processes (train.batch_size per process)" if world.parallel else "")
    )
    if config.train.sampler == "neighbor":
        log(f"training on sampled neighbourhoods, fanouts {config.train.fanouts} (evaluation over the full graph)")
    if is_sequential(model):
        return _fit_sequences(world, model, g, kg, split, config, run_dir, generator, progress, log)
    return fit(
        model, g, split, config, run_dir, device=device, generator=generator, progress=progress, world=world, log=log,
        item_entities=item_entity_sets(kg), item_texts=item_texts(kg),
    )  # fmt: skip


def resume_run(run_dir: Path, *, progress: bool = True, log=print) -> dict:
    """Continue a killed ``kgrec train`` from its last checkpoint (same config, split and graph).

    On the CPU with the same seed the result equals that of an uninterrupted run: weights,
    optimiser moments and random-number-generator states all come back from the checkpoint.
    """
    run_dir = Path(run_dir)
    meta = read_run_meta(run_dir)
    if (run_dir / "results.json").is_file() and not (run_dir / "checkpoint").exists():
        raise KgrecError("this run already finished (results.json is there); nothing to resume", path=run_dir)
    config = load_experiment(run_dir / "config.toml", written_by_kgrec=True)
    if config.scenes.mode != "off":
        raise KgrecError("a scenes run does not resume (it keeps no checkpoint); train it again with --force", path=run_dir)
    kg, _ = run_graph(run_dir, meta)
    with distributed.launch(config.train.device) as world:  # several processes under torchrun
        device = world.device
        generator = seed_everything(config.train.seed, device)
        split = read_split(run_dir / "split", kg.user_index, kg.item_index)
        model, g = prepare_model(kg, config, split, device)
        log = world.main_only(log)
        log(f"resuming {run_dir} on {device}")
        if is_sequential(model):
            return _fit_sequences(world, model, g, kg, split, config, run_dir, generator, progress, log, resume=True)
        return fit(
            model, g, split, config, run_dir, device=device, generator=generator, progress=progress, resume=True,
            world=world, log=log, item_entities=item_entity_sets(kg), item_texts=item_texts(kg),
        )  # fmt: skip


def _fit_scenes(world, kg, split, config, run_dir, generator, log) -> dict:
    """The ``[scenes]`` loop (:mod:`kgrec.train.scenes`), in one process."""
    if world.parallel:
        raise KgrecError(f"scenes.mode = {config.scenes.mode!r} trains in one process; run it without torchrun")

    def build(extra_held_out):
        model, g = prepare_model(kg, config, split, world.device, extra_held_out)
        log(f"model: {config.model.encoder}, {count_parameters(model):,} shared parameters, {g.edge_index.size(1):,} directed edges")
        return model, g

    return fit_scenes(kg, split, config, run_dir, build, device=world.device, generator=generator, log=log)


def _fit_sequences(world, model, g, kg, split, config, run_dir, generator, progress, log, resume: bool = False) -> dict:
    """A sequential model's loop (:mod:`kgrec.train.sequences`), in one process."""
    if world.parallel:
        raise KgrecError(f"model.encoder = {config.model.encoder!r} trains in one process; run it without torchrun")
    return fit_sequences(
        model, g, split, config, run_dir, timestamps=target_pairs(kg, config.train.target_events), device=world.device,
        generator=generator, progress=progress, resume=resume, log=log, item_entities=item_entity_sets(kg),
    )  # fmt: skip


__all__ = ["check_run_target", "prepare_model", "resume_run", "split_for", "train_run"]
