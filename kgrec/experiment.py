"""An experiment configuration, read and checked once, before anything is written.

:func:`load_experiment` is how kgrec reads ``experiments/NAME.toml`` (``kgrec train``, ``kgrec
bench``, ``kgrec cold-start``, a run folder's ``config.toml``). It checks, in this order, and
stops at the first problem with one message naming the file, the key, the bad value and what
is allowed:

1. the TOML's shape: unknown keys and wrong types (:func:`kgrec.config.read_experiment`);
2. every enumerated value: the model (:data:`kgrec.models.registry.MODELS`), the loss, the
   sampler, the device, the split protocol, the selection metric and the item-item view;
3. every range: positive sizes, rates and temperatures, ratios that sum to one, a selection
   metric at one of ``eval.ks``...;
4. what the chosen model and training path can honour: a switch they would ignore (NCL's
   contrast on an encoder without per-layer embeddings, neighbour sampling with an encoder
   that cannot propagate over blocks, a dropout on weightless layers) is refused, never
   dropped. Parameters of a feature that is off (``temperature`` under BPR, ``fanouts`` with
   full-graph training) are inert and accepted, so a benchmark suite can switch a feature off
   in one row without restating every parameter.

:func:`check_experiment` runs 2-4 on a configuration built in Python; :func:`check_for_graph`
adds what depends on the graph (target behaviours that exist, a catalogue that fits the
item-item view). Training calls both before it creates a run folder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from kgrec.models.content import CONTENT_CHOICES
from kgrec.text.tuning import check_tune
from kgrec.config import ExperimentConfig, read_experiment
from kgrec.errors import KgrecError
from kgrec.eval.metrics import METRIC_NAMES
from kgrec.eval.splits import PROTOCOLS
from kgrec.models.item_item import check_settings as check_item_item
from kgrec.models.losses import LOSSES
from kgrec.models.registry import MODELS, check_model_config
from kgrec.models.scenes import FREEZE_CHOICES, SCENE_MODES
from kgrec.train.progress import tensorboard_available
from kgrec.train.step import STEPS

if TYPE_CHECKING:
    from kgrec.graph.container import KnowledgeGraph

#: What ``train.device`` may name (whether that device exists is checked when training starts).
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def load_experiment(path: str | Path | None, *, written_by_kgrec: bool = False) -> ExperimentConfig:
    """Read and check an experiment config file (None: kgrec's defaults).

    ``written_by_kgrec``: a run folder's ``config.toml`` (see :func:`kgrec.config.read_experiment`).
    """
    config = read_experiment(None if path is None else Path(path), written_by_kgrec=written_by_kgrec)
    try:
        check_experiment(config)
    except KgrecError as e:
        if path is None:
            raise
        raise KgrecError(str(e), path=path) from None
    return config


def check_experiment(config: ExperimentConfig) -> None:
    """Raise a :class:`KgrecError` for the first value of ``config`` that kgrec cannot run."""
    _check_text(config)
    _check_train(config)
    _check_eval(config)
    _check_coldstart(config)
    _check_update(config)
    _choice("model.encoder", config.model.encoder, MODELS)
    check_model_config(config)
    _check_scenes(config)


def check_for_graph(config: ExperimentConfig, kg: KnowledgeGraph) -> None:
    """What depends on the graph: target behaviours it has, a catalogue the item-item view fits."""
    for key in ("target_events", "auxiliary_events"):
        events = getattr(config.train, key) or []
        unknown = [e for e in events if e not in kg.behaviours]
        if unknown:
            raise KgrecError(
                f"train.{key} = {events}: the graph has no {unknown[0]!r} interactions "
                f"(its behaviours: {', '.join(kg.behaviours)})"
            )
    check_item_item(config.model.item_item, config.model.item_item_l2, kg.num_items)
    if getattr(MODELS[config.model.encoder], "sequential", False):
        _check_timestamps(config, kg)
    if config.scenes.mode != "off":
        _check_scene_graph(config, kg)
    if MODELS[config.model.encoder].needs_knowledge and not kg.knowledge_edge_types():
        raise KgrecError(
            f"model.encoder = {config.model.encoder!r} learns from the knowledge graph, and this graph has no "
            "knowledge edges (build it with --rdf, or choose another model.encoder)"
        )


def _check_timestamps(config: ExperimentConfig, kg: KnowledgeGraph) -> None:
    """A sequential model reads histories in time order: every target interaction needs a time."""
    inter = kg.interactions
    if config.train.target_events is not None:
        inter = inter[inter["event"].isin(config.train.target_events)]
    missing = int(inter["timestamp"].isna().sum()) if "timestamp" in inter else len(inter)
    if missing:
        logs = ", ".join(str(p) for p in kg.manifest.get("inputs", {}).get("interactions", [])) or "the graph's interaction log"
        raise KgrecError(
            f"model.encoder = {config.model.encoder!r} reads each history in time order, but {missing:,} of "
            f"{len(inter):,} interactions have no timestamp (column 'timestamp' of {logs}); map a time column "
            "in the graph spec, or choose a non-sequential model"
        )


def _check_scene_graph(config: ExperimentConfig, kg: KnowledgeGraph) -> None:
    """A scenes mode needs a log with a scene column of two values or more."""
    logs = ", ".join(str(p) for p in kg.manifest.get("inputs", {}).get("interactions", [])) or "the graph's interaction log"
    if not kg.scenes:
        raise KgrecError(
            f"scenes.mode = {config.scenes.mode!r} needs a scene per interaction, and {logs} had no scene column "
            "(map one with --column scene=NAME when building the graph, or set scenes.mode = \"off\")"
        )
    if len(kg.scenes) < 2:
        raise KgrecError(f"the scene column of {logs} holds one value ({kg.scenes[0]!r}): scenes need at least two")


# --------------------------------------------------------------------------- sections
def _check_scenes(config: ExperimentConfig) -> None:
    s = config.scenes
    _choice("scenes.mode", s.mode, SCENE_MODES)
    _choice("scenes.freeze", s.freeze, FREEZE_CHOICES)
    _at_least("scenes.finetune_epochs", s.finetune_epochs, 0)
    _positive("scenes.finetune_lr", s.finetune_lr)
    _at_least("scenes.parts_epochs", s.parts_epochs, 0)
    if not s.parts_lr or not s.parts_l2:
        raise KgrecError("scenes.parts_lr and scenes.parts_l2 need at least one value each (the values tried on validation)")
    for k, lr in enumerate(s.parts_lr):
        _positive(f"scenes.parts_lr[{k}]", lr)
    for k, l2 in enumerate(s.parts_l2):
        _not_negative(f"scenes.parts_l2[{k}]", l2)
    if s.mode == "off":
        return
    m, t = config.model, config.train
    if getattr(MODELS[m.encoder], "sequential", False):
        raise KgrecError(f"scenes.mode = {s.mode!r} trains a graph model; model.encoder = {m.encoder!r} is sequential")
    if m.item_item.lower() != "none":
        raise KgrecError(f"scenes.mode = {s.mode!r} does not blend an item-item view (it is not per scene); set model.item_item = \"none\"")
    if t.sampler != "full" or t.loss != "bpr":
        raise KgrecError(f"scenes.mode = {s.mode!r} trains full-graph with BPR: set train.sampler = \"full\" and train.loss = \"bpr\"")
    for key in ("kg_loss_weight", "contrast_weight", "independence_weight"):
        if getattr(t, key) > 0:
            raise KgrecError(f"train.{key} = {getattr(t, key)}: the scenes loop trains BPR and L2 only; set it to 0 with scenes.mode = {s.mode!r}")
    if s.finetune_epochs > 0 and s.mode != "adapted":
        raise KgrecError(f"scenes.finetune_epochs = {s.finetune_epochs} fine-tunes the adapted model's scenes; scenes.mode = {s.mode!r} has none")


def _check_text(config: ExperimentConfig) -> None:
    t = config.text
    if not t.model.strip():
        raise KgrecError("text.model is empty: name a transformers encoder, a local folder, or \"default\"")
    _at_least("text.batch_size", t.batch_size, 1)
    _at_least("text.max_length", t.max_length, 1)
    check_tune(t.tune)
    _positive("text.tune_lr", t.tune_lr)


def _check_coldstart(config: ExperimentConfig) -> None:
    c = config.coldstart
    _choice("coldstart.content", c.content, CONTENT_CHOICES)
    _choice("coldstart.neighbours", c.neighbours, ("cold", "trained"))
    _choice("coldstart.inputs", c.inputs, ("text+kg", "text"))
    for key in ("hidden", "epochs", "patience"):
        _at_least(f"coldstart.{key}", getattr(c, key), 1)
    _positive("coldstart.lr", c.lr)
    if c.ranking_weight < 0:
        raise KgrecError(f"coldstart.ranking_weight must be >= 0, got {c.ranking_weight}")


#: How ``kgrec update`` starts a new user's ID embedding (``update.user_init``).
USER_INITS = ("items", "zero")


def _check_update(config: ExperimentConfig) -> None:
    u = config.update
    _at_least("update.epochs", u.epochs, 0)
    _at_least("update.batch_size", u.batch_size, 2)
    _positive("update.lr", u.lr)
    _at_least("update.fold_in_steps", u.fold_in_steps, 0)
    _positive("update.fold_in_lr", u.fold_in_lr)
    for key in ("replay_ratio", "distill_weight", "structure_weight"):
        _not_negative(f"update.{key}", getattr(u, key))
    _choice("update.user_init", u.user_init, USER_INITS)


def _check_train(config: ExperimentConfig) -> None:
    t = config.train
    _choice("train.loss", t.loss, LOSSES)
    _choice("train.sampler", t.sampler, STEPS)
    if not _DEVICE.match(t.device):
        raise KgrecError(f"train.device = {t.device!r} is not a device (auto, cpu, cuda, cuda:N or mps)")
    for key in ("epochs", "batch_size", "num_negatives", "kg_batch_size", "patience", "eval_every", "lr_patience", "contrast_layer"):
        _at_least(f"train.{key}", getattr(t, key), 1)
    for key in ("lr", "temperature", "contrast_temperature"):
        _positive(f"train.{key}", getattr(t, key))
    for key in ("reg_weight", "weight_decay", "kg_loss_weight", "contrast_weight"):
        _not_negative(f"train.{key}", getattr(t, key))
    if not 0.0 < t.lr_decay <= 1.0:
        raise KgrecError(f"train.lr_decay = {t.lr_decay} must lie in (0, 1] (1 keeps the rate constant)")
    if not t.fanouts or any(f == 0 or f < -1 for f in t.fanouts):
        raise KgrecError(
            f"train.fanouts = {t.fanouts} must be positive numbers (or -1 for every neighbour), one per model layer"
        )
    if t.tensorboard and not tensorboard_available():
        raise KgrecError("train.tensorboard = true needs the tensorboard package: pip install 'kgrec[tensorboard]'")
    if t.target_events is not None and (not t.target_events or not all(e.strip() for e in t.target_events)):
        raise KgrecError(f"train.target_events = {t.target_events} must name at least one behaviour (or be left out: all)")
    if t.auxiliary_events is not None:
        if t.target_events is None:
            raise KgrecError(
                f"train.auxiliary_events = {t.auxiliary_events} needs train.target_events: with every behaviour "
                "a target there is no auxiliary one"
            )
        both = sorted(set(t.auxiliary_events) & set(t.target_events))
        if both:
            raise KgrecError(f"train.auxiliary_events and train.target_events both name {both[0]!r}: a behaviour is one or the other")


def _check_eval(config: ExperimentConfig) -> None:
    e = config.eval
    _choice("eval.split", e.split, PROTOCOLS)
    ratios = e.ratios
    if len(ratios) != 3 or any(not math.isfinite(r) or r < 0 for r in ratios):
        raise KgrecError(f"eval.ratios = {ratios} must be three non-negative numbers: train, valid, test")
    if ratios[0] <= 0 or ratios[1] <= 0:
        raise KgrecError(f"eval.ratios = {ratios}: train and valid need a positive share (selection is on validation)")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise KgrecError(f"eval.ratios = {ratios} sum to {sum(ratios):g}; they must sum to 1")
    if not e.ks or any(k < 1 for k in e.ks) or len(set(e.ks)) != len(e.ks):
        raise KgrecError(f"eval.ks = {e.ks} must be distinct positive cut-offs")
    name, _, k = e.metric.partition("@")
    allowed = [f"{m}@{cut}" for m in METRIC_NAMES for cut in e.ks]
    if name not in METRIC_NAMES or not k.isdigit() or int(k) not in e.ks:
        raise KgrecError(f"eval.metric = {e.metric!r} is not one of {', '.join(allowed)} (a metric at one of eval.ks)")
    _at_least("eval.batch_size", e.batch_size, 1)
    if not (math.isfinite(e.train_fraction) and 0.0 < e.train_fraction <= 1.0):
        raise KgrecError(f"eval.train_fraction = {e.train_fraction} must lie in (0, 1] (the share of each user's training interactions kept)")


# --------------------------------------------------------------------------- helpers
def _choice(key: str, value: str, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise KgrecError(f"{key} = {value!r} is not one of: {', '.join(allowed)}")


def _at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise KgrecError(f"{key} = {value} must be {low} or more")


def _positive(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise KgrecError(f"{key} = {value} must be a positive number")


def _not_negative(key: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise KgrecError(f"{key} = {value} must be 0 or more")


__all__ = ["check_experiment", "check_for_graph", "load_experiment"]
