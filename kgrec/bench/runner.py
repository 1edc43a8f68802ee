"""Run a suite: every dataset x model x seed, skipping runs that already finished."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from kgrec.bench.baselines import ease_run, popularity_run
from kgrec.bench.report import write_report
from kgrec.bench.suite import BenchDataset, Suite, run_folder
from kgrec.config import read_experiment
from kgrec.errors import KgrecError
from kgrec.runs import train_run

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


def _run_one(kind: str, graph: Path, config, run_dir: Path, threads: int | None) -> dict:
    """One run, in this process or in a worker process (``threads`` caps torch's threads there)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    quiet = lambda *a, **k: None  # noqa: E731 - the suite prints one line per run instead
    if kind == "popularity":
        return popularity_run(graph, config, run_dir, log=quiet)
    if kind == "ease":
        return ease_run(graph, config, run_dir, log=quiet)
    return train_run(graph, config, run_dir, progress=False, log=quiet, force=True)  # the suite decided: stale or unfinished


def finished_with(run_dir: Path, config, log) -> bool:
    """Did this run finish *with this configuration*? A run whose stored ``config.toml`` differs
    (the suite or its base changed since) is stale: it is run again rather than reported."""
    if not (run_dir / "results.json").is_file():
        return False
    try:
        stored = read_experiment(run_dir / "config.toml", written_by_kgrec=True)
    except KgrecError:
        stored = None
    if stored == config:
        return True
    log(f"{run_dir}: its configuration changed since it ran; running it again")
    return False


def run_suite(
    suite: Suite,
    results_root: Path,
    *,
    force: bool = False,
    only: list[str] | None = None,
    jobs: int = 1,
    log=print,
) -> Path:
    """Run (or resume) ``suite``; returns the results folder ``results_root/<suite name>``.

    With ``jobs > 1`` that many runs train at once, each in its own process with
    ``cpu_count // jobs`` torch threads: on a few CPU cores two single-threaded runs get more
    done than one run on two threads, because a sparse product does not scale to both cores.
    Each run is still seeded and reproducible on its own; only its seconds per epoch change.
    """
    if jobs < 1:
        raise KgrecError(f"--jobs must be at least 1, got {jobs}")
    out = Path(results_root) / suite.name
    models = [m for m in suite.models if not only or m.name in only]
    if only and len(models) != len(only):
        missing = sorted(set(only) - {m.name for m in suite.models})
        raise KgrecError(f"--only names unknown models: {', '.join(missing)}")
    todo = [(d, m, s) for d in suite.datasets for m in models for s in suite.seeds_for(m)]
    start = time.perf_counter()
    for dataset in suite.datasets:
        ensure_graph(dataset, log=log)
    pending = []
    for dataset, model, seed in todo:
        run_dir = run_folder(out, dataset.name, model.name, seed)
        config = suite.config_for(model, seed)
        if not force and finished_with(run_dir, config, log):
            continue
        pending.append((dataset, model, seed, config, run_dir))
    bar = tqdm(total=len(todo), initial=len(todo) - len(pending), desc=f"bench {suite.name}", unit="run", dynamic_ncols=True, disable=None)  # no bar in a log: the per-run lines say it

    def report(dataset, model, seed, res, seconds):
        t = res["test"]
        bar.write(
            f"{dataset.name:<10} {model.name:<22} seed {seed}: test recall@20 {t['recall@20']:.4f} "
            f"ndcg@20 {t['ndcg@20']:.4f} (best epoch {res['best_epoch']}, trained {res['train_seconds']:.0f}s, "
            f"{seconds:.0f}s since {'start' if jobs == 1 else 'queued'})"
        )
        bar.update(1)

    if jobs == 1:
        for dataset, model, seed, config, run_dir in pending:
            bar.set_postfix_str(f"{dataset.name} / {model.name} / seed {seed}")
            t0 = time.perf_counter()
            res = _run_one(model.kind, dataset.graph, config, run_dir, None)
            report(dataset, model, seed, res, time.perf_counter() - t0)
    else:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, (os.cpu_count() or 1) // jobs)
        # spawn, not fork: a forked child would inherit torch's thread pools mid-flight
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {
                pool.submit(_run_one, model.kind, dataset.graph, config, run_dir, threads): (dataset, model, seed, time.perf_counter())
                for dataset, model, seed, config, run_dir in pending
            }
            for future in as_completed(futures):
                dataset, model, seed, t0 = futures[future]
                report(dataset, model, seed, future.result(), time.perf_counter() - t0)
    bar.close()
    write_report(suite, out, jobs=jobs, wall_seconds=time.perf_counter() - start)  # every row that has finished runs, not only those run now
    log(f"suite {suite.name}: {len(todo)} runs in {out} ({time.perf_counter() - start:.0f}s this time)")
    return out
