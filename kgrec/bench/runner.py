"""Run a suite: every dataset x model x seed, skipping runs that already finished."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

from tqdm.auto import tqdm

from kgrec.bench.popularity import popularity_run
from kgrec.bench.report import write_report
from kgrec.bench.suite import BenchDataset, Suite
from kgrec.errors import KgrecError
from kgrec.runs import train_run


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-").lower() or "model"


def ensure_graph(dataset: BenchDataset, log=print) -> None:
    """Fetch and build the dataset's graph when it is not there yet."""
    if (dataset.graph / "manifest.json").is_file():
        return
    if dataset.spec is None:
        raise KgrecError(f"dataset {dataset.name}: no graph at {dataset.graph} and no spec to build it from")
    from kgrec.config import load_graph_spec
    from kgrec.graph.build import build_graph
    from kgrec.graph.store import save_graph
    from kgrec.ingest import ingest

    if dataset.fetch:
        from kgrec.datasets import fetch

        fetch(dataset.fetch, cache_root=Path("data/cache"), force=False)
    log(f"building {dataset.graph} from {dataset.spec}")
    spec = load_graph_spec(dataset.spec)
    save_graph(build_graph(ingest(spec), name=spec.name), dataset.graph)


def run_suite(suite: Suite, results_root: Path, *, force: bool = False, only: list[str] | None = None, log=print) -> Path:
    """Run (or resume) ``suite``; returns the results folder ``results_root/<suite name>``."""
    out = Path(results_root) / suite.name
    models = [m for m in suite.models if not only or m.name in only]
    if only and len(models) != len(only):
        missing = sorted(set(only) - {m.name for m in suite.models})
        raise KgrecError(f"--only names unknown models: {', '.join(missing)}")
    jobs = [(d, m, s) for d in suite.datasets for m in models for s in suite.seeds]
    start = time.perf_counter()
    for dataset in suite.datasets:
        ensure_graph(dataset, log=log)
    bar = tqdm(jobs, desc=f"bench {suite.name}", unit="run", dynamic_ncols=True)
    for dataset, model, seed in bar:
        run_dir = out / "runs" / dataset.name / slug(model.name) / f"seed-{seed}"
        bar.set_postfix_str(f"{dataset.name} / {model.name} / seed {seed}")
        if (run_dir / "results.json").is_file() and not force:
            continue
        config = copy.deepcopy(model.config)
        config.train.seed = seed
        t0 = time.perf_counter()
        quiet = lambda *a, **k: None  # noqa: E731 - the suite prints one line per run instead
        if model.kind == "popularity":
            res = popularity_run(dataset.graph, config, run_dir, log=quiet)
        else:
            res = train_run(dataset.graph, config, run_dir, progress=False, log=quiet)
        t = res["test"]
        bar.write(
            f"{dataset.name:<10} {model.name:<22} seed {seed}: test recall@20 {t['recall@20']:.4f} "
            f"ndcg@20 {t['ndcg@20']:.4f} (best epoch {res['best_epoch']}, {time.perf_counter() - t0:.0f}s)"
        )
    write_report(suite, out, models=models)
    log(f"suite {suite.name}: {len(jobs)} runs in {out} ({time.perf_counter() - start:.0f}s this time)")
    return out
