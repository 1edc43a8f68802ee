"""The run folder: what ``kgrec train`` leaves behind, and reading it back.

::

    run.json            graph (content hash, path relative to the run, absolute path), versions,
                        device, seed, processes
    config.toml         the resolved experiment configuration
    split/              train.csv, valid.csv, test.csv (original ids) -- feed them to any library
    metrics.jsonl       one line per evaluated epoch (loss and its terms, validation metrics)
    model.safetensors   the weights selected on validation (with the item-item blend weight)
    curves.png          training loss and the validation metric per evaluated epoch
    tensorboard/        with train.tensorboard = true: the same figures for TensorBoard
    results.json        validation metrics at the selected epoch, test metrics, timings
    checkpoint/         while training: everything needed to resume (removed at the end)
    added_items/        items added after training (``kgrec add-items``), see :mod:`kgrec.runs.added`
    update.json, graph/ a run made by ``kgrec update``: its parent, what was added, the steps taken,
                        and the grown graph it was trained on (:mod:`kgrec.runs.update`)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from kgrec.config import ExperimentConfig, dump_toml
from kgrec.errors import KgrecError
from kgrec.eval.splits import Split, write_split
from kgrec.graph.container import KnowledgeGraph
from kgrec.io import atomic_path, write_json
from kgrec.version import __version__

RUN_FORMAT_VERSION = 1


def write_config(config: ExperimentConfig, run_dir: Path) -> None:
    """``config.toml``: the resolved configuration, every default spelled out."""
    with atomic_path(Path(run_dir) / "config.toml") as tmp:
        dump_toml(config, tmp)


def start_run_folder(
    run_dir: Path, graph_dir: Path, kg: KnowledgeGraph, config: ExperimentConfig, split: Split, device, processes: int
) -> None:
    """Split, resolved config and ``run.json``: what a run folder holds before training starts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_split(split, run_dir / "split", kg.nodes["user"]["id"].tolist(), kg.nodes["item"]["id"].tolist())
    write_config(config, run_dir)
    write_json(
        run_dir / "run.json",
        {
            "format": "kgrec-run",
            "format_version": RUN_FORMAT_VERSION,
            "graph": str(Path(graph_dir).resolve()),
            "graph_relative": _relative(Path(graph_dir), Path(run_dir)),
            "graph_hash": kg.manifest.get("content_hash"),
            "graph_name": kg.manifest.get("name"),
            "kgrec_version": __version__,
            "torch_version": torch.__version__,
            "device": str(device),
            "processes": processes,
            "seed": config.train.seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def read_run_meta(run_dir: Path) -> dict:
    """``run.json``, or a clear error for a folder that is not a run (of this format)."""
    meta_path = Path(run_dir) / "run.json"
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


def _relative(graph_dir: Path, run_dir: Path) -> str | None:
    """The graph's path relative to the run folder (None across drives)."""
    try:
        return os.path.relpath(Path(graph_dir).resolve(), Path(run_dir).resolve())
    except ValueError:
        return None


def run_graph(run_dir: Path, meta: dict, graph: str | Path | None = None) -> tuple[KnowledgeGraph, Path]:
    """Load the graph a run was trained on, checked by its content hash; returns it and its folder.

    Where to look: ``graph`` when given (``--graph``), else the path relative to the run
    folder (a project moved or cloned elsewhere as a whole), else the absolute path recorded
    at training. A graph whose content hash differs from the recorded one (rebuilt from other
    data, or another graph) is refused: the weights would not fit it.
    """
    from kgrec.graph.store import load_graph

    run_dir = Path(run_dir)
    if graph is not None:
        folder = Path(graph)
    else:
        candidates = [run_dir / meta["graph_relative"]] if meta.get("graph_relative") else []
        candidates.append(Path(meta["graph"]))
        folder = next((c for c in candidates if (c / "manifest.json").is_file()), None)
        if folder is None:
            raise KgrecError(
                f"the run's graph is not where it was ({meta['graph']}); give its folder with --graph",
                path=run_dir,
            )
    kg = load_graph(folder)
    expected, found = meta.get("graph_hash"), kg.manifest.get("content_hash")
    if expected is not None and found != expected:
        raise KgrecError(
            f"the graph in {folder} is not the one this run was trained on (content hash {found[:19]}..., "
            f"the run's {expected[:19]}...): it was rebuilt from other data or is another graph; "
            "give the original with --graph, or train again",
            path=run_dir,
        )
    return kg, folder


__all__ = ["RUN_FORMAT_VERSION", "read_run_meta", "run_graph", "start_run_folder", "write_config"]
