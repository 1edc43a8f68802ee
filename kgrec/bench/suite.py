"""Benchmark suites: an experiment config with a ``[bench]`` table.

A suite file is an ordinary experiment config (so ``kgrec train --config SUITE.toml`` trains
its base configuration) plus::

    [bench]
    name = "ml-100k"                      # results go to experiments/results/<name>/
    base = "ml-100k-best.toml"            # the configuration every model starts from
    seeds = [2024, 2025, 2026]            # training seeds; the split is the same for all
    reference = "kgrec"                   # optional: the row the others are compared with per
                                          #   user (default: the row named "kgrec", if any)
    split = "fixed"                       # or "per-seed": each seed also draws its own split
                                          #   (eval.split_seed = the seed), so the sd over seeds
                                          #   holds the split's noise as well as training's
    datasets = [{ name = "ml-100k", graph = "../graphs/ml-100k",
                  spec = "../graphs/ml-100k.toml", fetch = "ml-100k" }]

    [[bench.models]]
    name = "LightGCN"                     # a row of the table
    kind = "kgrec"                        # or "popularity", "ease" (training-free baselines)
    seeds = [2024]                        # optional: fewer seeds for a slow row (a subset)
    [bench.models.model]                  # overrides laid over the base configuration
    use_kg = false

Paths are relative to the suite file. Every model of a suite shares the base's ``[eval]``
table, so all rows are scored on the same split with the same protocol.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from kgrec.config import ExperimentConfig, deep_merge, experiment_dict, from_dict, read_toml
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment

MODEL_KINDS = ("kgrec", "popularity", "ease")


@dataclass
class BenchDataset:
    name: str
    graph: Path
    spec: Path | None = None
    fetch: str | None = None


@dataclass
class BenchModel:
    name: str
    kind: str
    config: ExperimentConfig
    #: The training seeds of this row when it runs fewer than the suite (a slow baseline);
    #: None: the suite's. Always a subset of the suite's, so rows share the seeds they have.
    seeds: list[int] | None = None


@dataclass
class Suite:
    name: str
    path: Path
    seeds: list[int]
    datasets: list[BenchDataset]
    models: list[BenchModel] = field(default_factory=list)
    #: The row every other row is compared with, user by user (:mod:`kgrec.eval.paired`); None: no comparison.
    reference: str | None = None
    #: ``"fixed"``: one split for every seed (the base's ``eval.split_seed``); ``"per-seed"``: each
    #: seed draws its own split too, so the spread over seeds includes the test set's own noise.
    split: str = "fixed"

    def config_for(self, model: "BenchModel", seed: int) -> ExperimentConfig:
        """The configuration of one run: the row's, with the seed (and, per seed, the split seed)."""
        config = copy.deepcopy(model.config)
        config.train.seed = seed
        if self.split == "per-seed":
            config.eval.split_seed = seed
        return config

    def seeds_for(self, model: BenchModel) -> list[int]:
        """The seeds ``model`` runs with: its own, or the suite's."""
        return model.seeds if model.seeds is not None else self.seeds


#: What a suite's rows get unless the suite or the row says otherwise: the content model for
#: cold items (:mod:`kgrec.train.content`) changes no ranking of the trained catalogue and adds
#: about a quarter to an ml-100k run's time, so benchmark rows skip it.
SUITE_DEFAULTS = {"coldstart": {"content": "none"}}


#: What ``bench.split`` accepts.
SPLIT_MODES = ("fixed", "per-seed")

#: The row other rows are compared with when ``bench.reference`` is not given (if the suite has it).
DEFAULT_REFERENCE = "kgrec"


def slug(name: str) -> str:
    """A model name as a folder name: ``"kgrec - KG edges"`` -> ``kgrec-kg-edges``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-").lower() or "model"


def run_folder(results: Path, dataset: str, model: str, seed: int) -> Path:
    """Where a suite keeps one run: ``RESULTS/runs/<dataset>/<model slug>/seed-<seed>``."""
    return Path(results) / "runs" / dataset / slug(model) / f"seed-{seed}"


def load_suite(path: Path) -> Suite:
    path = Path(path)
    bench = read_toml(path).get("bench")
    if not isinstance(bench, dict):
        raise KgrecError("not a benchmark suite: it has no [bench] table", path=path)
    known = {"name", "base", "seeds", "datasets", "models", "reference", "split"}
    unknown = sorted(set(bench) - known)
    if unknown:
        raise KgrecError(f"unknown key bench.{unknown[0]} (known: {', '.join(sorted(known))})", path=path)
    base = experiment_dict(path)
    here = path.resolve().parent

    datasets = []
    for i, d in enumerate(bench.get("datasets", [])):
        if not isinstance(d, dict) or "name" not in d or "graph" not in d:
            raise KgrecError(f"bench.datasets[{i}] needs a name and a graph folder", path=path)
        extra = sorted(set(d) - {"name", "graph", "spec", "fetch"})
        if extra:
            raise KgrecError(f"unknown key bench.datasets[{i}].{extra[0]}", path=path)
        datasets.append(
            BenchDataset(d["name"], here / d["graph"], here / d["spec"] if d.get("spec") else None, d.get("fetch"))
        )
    if not datasets:
        raise KgrecError("bench.datasets is empty", path=path)

    seeds = bench.get("seeds", [2024])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise KgrecError("bench.seeds must be a non-empty list of integers", path=path)

    models, names = [], set()
    for i, m in enumerate(bench.get("models", [])):
        m = dict(m)
        name, kind, own_seeds = m.pop("name", None), m.pop("kind", "kgrec"), m.pop("seeds", None)
        if own_seeds is not None and (
            not isinstance(own_seeds, list) or not own_seeds or not all(isinstance(s, int) and s in seeds for s in own_seeds)
        ):
            raise KgrecError(f"bench.models[{i}].seeds must be a non-empty subset of bench.seeds {seeds}, got {own_seeds!r}", path=path)
        if not name:
            raise KgrecError(f"bench.models[{i}] needs a name", path=path)
        if name in names:
            raise KgrecError(f"bench.models: the name {name!r} is used twice", path=path)
        if "," in name:
            raise KgrecError(f"bench.models[{i}].name = {name!r} has a comma, so --only (comma-separated names) could not pick it", path=path)
        if kind not in MODEL_KINDS:
            raise KgrecError(f"bench.models[{i}].kind must be one of {', '.join(MODEL_KINDS)}, got {kind!r}", path=path)
        try:
            # a suite measures the trained ranking: no content model for new items unless asked
            config = from_dict(ExperimentConfig, deep_merge(SUITE_DEFAULTS, deep_merge(base, m)), where="")
            check_experiment(config)
        except KgrecError as e:
            raise KgrecError(f"bench.models[{i}] ({name}): {e}", path=path) from None
        names.add(name)
        models.append(BenchModel(name, kind, config, own_seeds))
    if not models:
        raise KgrecError("bench.models is empty", path=path)
    reference = bench.get("reference", DEFAULT_REFERENCE if DEFAULT_REFERENCE in names else None)
    if reference is not None and reference not in names:
        raise KgrecError(f"bench.reference = {reference!r} is not a row of the suite (rows: {', '.join(sorted(names))})", path=path)
    split = bench.get("split", "fixed")
    if split not in SPLIT_MODES:
        raise KgrecError(f"bench.split = {split!r} is not one of: {', '.join(SPLIT_MODES)}", path=path)
    return Suite(bench.get("name", path.stem), path, seeds, datasets, models, reference, split)
