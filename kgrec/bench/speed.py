"""``kgrec bench speed``: how fast each stage runs on one device, and how much memory it takes.

Four steps, each skippable (``--skip build,encode,train,eval``):

* **build**: ``kgrec build`` in a child process, from a graph spec (``--spec``) or a generated
  data set (``--synth``). Wall time of the child, the build's own time (what it prints), and its
  peak resident set size, read with :func:`os.wait4` (the ``getrusage`` record of exactly that
  child). Two traps avoided: ``getrusage(RUSAGE_CHILDREN)`` gives the largest of *all*
  children ever waited for (in a test session, say, another test's child); and Linux carries
  a process's peak RSS across ``exec``, so a child forked from this process (torch loaded)
  would report at least this process's size. The build is therefore forked from a bare
  Python launcher (see :func:`run_measured`).
* **encode**: description encoding throughput, texts per second with the default encoder (or
  ``--text-model``), fp16 autocast on CUDA. The encoder runs without the feature cache, on
  ``--texts`` distinct node texts of the graph, after a warm-up batch of different texts, so
  that every text measured is a forward pass (checked by counting them).
* **train**: kgrec's own training loop (:func:`kgrec.train.loop.fit`, the same code as
  ``kgrec train``) for ``--epochs`` epochs without early stopping. Seconds per epoch is the
  median over the epochs after ``--warmup-epochs`` (the first epoch pays for allocator growth,
  kernel selection and lazy initialisation). The loop's per-epoch time ends with reading the
  epoch loss back to the host, which waits for every queued kernel, so GPU epochs are timed
  to completion. Also: time to reach ``--target-ndcg`` validation NDCG@20 (or to the best
  epoch), counted as the sum of the epoch times up to it (validation excluded), and the peak
  GPU memory of training (``torch.cuda.max_memory_allocated``; none on the CPU).
* **eval**: full-ranking evaluation of all users through the trained-run object
  (:class:`kgrec.runs.Run`, what ``kgrec evaluate`` uses): propagation, scores of every item for
  every user -- with the item-item view blended in when the configuration has one -- with the
  training (and validation) items masked, top-K and metrics; the median of ``--eval-repeats``
  after a warm-up, with ``torch.cuda.synchronize`` around each on GPU. Also the time of top-``k``
  lists for all users (what ``kgrec recommend --users all`` computes, the same way). Without the
  train step the model is a fresh, untrained one: the time does not depend on the weights.

The results are printed as a table and written as JSON (``--out``, atomically) with the
device, versions, CPU count, graph sizes and every figure.
"""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from kgrec.errors import KgrecError
from kgrec.version import __version__

STEPS = ("build", "encode", "train", "eval")
FORMAT_VERSION = 1
#: Where the build prints its own duration: "graph written to OUT in 1.2s".
_BUILD_SECONDS_RE = re.compile(r"graph written to .* in ([0-9.]+)s\s*$", re.MULTILINE)


@dataclass
class SpeedOptions:
    """What ``kgrec bench speed`` measures and how; see :func:`check_options` for the rules."""

    spec: str | None = None
    synth: str | None = None
    graph: str | None = None
    config: str | None = None
    device: str = "auto"
    skip: list[str] = field(default_factory=list)
    epochs: int = 20
    warmup_epochs: int = 1
    target_ndcg: float | None = None
    texts: int = 10_000
    text_batch_size: int = 256
    text_model: str | None = None
    eval_repeats: int = 3
    seed: int | None = None
    workdir: str | None = None
    keep: bool = False
    out: str | None = None
    force: bool = False


def parse_skip(value: str | None) -> list[str]:
    """``"build,encode"`` -> ``["build", "encode"]``, refusing names that are not steps."""
    if not value:
        return []
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in names if s not in STEPS]
    if unknown:
        raise KgrecError(f"--skip: unknown step {unknown[0]!r} (steps: {', '.join(STEPS)})")
    return names


def check_options(o: SpeedOptions) -> None:
    """Refuse contradictory or out-of-range options before any long work starts."""
    for name in o.skip:
        if name not in STEPS:
            raise KgrecError(f"--skip: unknown step {name!r} (steps: {', '.join(STEPS)})")
    if set(o.skip) >= set(STEPS):
        raise KgrecError("--skip leaves nothing to measure (steps: build, encode, train, eval)")
    if o.spec and o.synth:
        raise KgrecError("give either --spec or --synth, not both")
    if o.out and Path(o.out).exists() and not o.force:
        raise KgrecError("results are already there; add --force to replace them, or choose another --out", path=o.out)
    if o.synth and not Path(o.synth).is_dir():
        from kgrec.datasets.synth import PRESETS

        if o.synth not in PRESETS:
            raise KgrecError(f"--synth {o.synth!r} is neither a folder nor a preset (presets: {', '.join(PRESETS)})")
    if not (o.spec or o.synth or o.graph):
        raise KgrecError("nothing to measure on: give --spec SPEC.toml, --synth PRESET|DIR or --graph DIR")
    needs_graph = any(s not in o.skip for s in ("encode", "train", "eval"))
    if needs_graph and not o.graph and "build" in o.skip:
        raise KgrecError("the encode, train and eval steps need a graph: give --graph DIR, or let the build step run")
    if o.spec and not Path(o.spec).is_file():
        raise KgrecError("graph spec not found", path=o.spec)
    if o.config and not Path(o.config).is_file():
        raise KgrecError("experiment config not found", path=o.config)
    if o.epochs < 1:
        raise KgrecError(f"--epochs must be at least 1, got {o.epochs}")
    if o.warmup_epochs < 0:
        raise KgrecError(f"--warmup-epochs must be 0 or more, got {o.warmup_epochs}")
    if "train" not in o.skip and o.epochs <= o.warmup_epochs:
        raise KgrecError(
            f"--epochs {o.epochs} leaves no epoch to time after {o.warmup_epochs} warm-up epoch(s): "
            f"give --epochs {o.warmup_epochs + 1} or more, or fewer --warmup-epochs"
        )
    if o.target_ndcg is not None and not 0.0 < o.target_ndcg <= 1.0:
        raise KgrecError(f"--target-ndcg must lie in (0, 1], got {o.target_ndcg}")
    if o.texts < 1:
        raise KgrecError(f"--texts must be at least 1, got {o.texts}")
    if o.text_batch_size < 1:
        raise KgrecError(f"--text-batch-size must be at least 1, got {o.text_batch_size}")
    if o.eval_repeats < 1:
        raise KgrecError(f"--eval-repeats must be at least 1, got {o.eval_repeats}")


# --------------------------------------------------------------------------- environment
def _cpu_name() -> str:
    """The CPU model, as the suite report names it (``/proc/cpuinfo`` on Linux)."""
    from kgrec.bench.report import cpu_name

    return cpu_name() or "cpu"


def environment(device: torch.device) -> dict:
    """Versions and hardware: what a reader needs to compare two result files."""
    cuda = device.type == "cuda"
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
        "cpu_name": _cpu_name(),
        "gpu_memory_bytes": torch.cuda.get_device_properties(device).total_memory if cuda else None,
        "cuda_version": torch.version.cuda,
        "torch_version": torch.__version__,
        "kgrec_version": __version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def graph_sizes(kg) -> dict:
    """Users, items, entities, interactions, knowledge triples and edges of a built graph.

    ``edges`` counts every directed edge of the stored graph: each interaction and each triple
    once in each direction, as message passing sees them before held-out pairs are removed.
    """
    triples = sum(int(kg.data[et].edge_index.size(1)) for et in kg.knowledge_edge_types())
    edges = sum(int(kg.data[et].edge_index.size(1)) for et in kg.data.edge_types)
    return {
        "name": kg.manifest.get("name"),
        "users": kg.num_users,
        "items": kg.num_items,
        "entities": kg.num_nodes - kg.num_users - kg.num_items,
        "nodes": kg.num_nodes,
        "interactions": int(len(kg.interactions)),
        "triples": triples,
        "edges": edges,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- build
def _kgrec_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kgrec", *args]


def _child_env() -> dict:
    """The child must import this very kgrec, also when it is run from a source tree."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root + (os.pathsep + path if path else ""))


#: Runs argv[2:] and writes "exit-status wall-seconds maxrss" to argv[1]. A small process of its own,
#: so that the measured child starts from a small parent (see :func:`run_measured`).
_LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
proc.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{proc.returncode} {wall!r} {usage.ru_maxrss}")
"""


def run_measured(command: list[str], log_path: Path) -> tuple[int, float, int]:
    """Run ``command``; return its exit status, wall seconds and peak RSS in bytes.

    Why a launcher in between: Linux carries a process's peak RSS across ``exec``, and a
    child is made by forking its parent, so a child forked straight from this process (which
    holds torch, often more than a GiB) would report at least this process's size, whatever
    it does itself. The launcher is a bare Python (about 10 MiB); the child it forks and
    waits for with :func:`os.wait4` reports its own peak. Output goes to ``log_path`` (a
    file, so a chatty child never blocks on a full pipe).
    """
    result_path = log_path.with_name(log_path.name + ".rusage")
    with log_path.open("wb") as out:
        proc = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(result_path), *command],
            stdout=out, stderr=subprocess.STDOUT, env=_child_env(),
        )
    if proc.returncode != 0 or not result_path.is_file():
        raise KgrecError(f"could not run {command[0]} (launcher exit status {proc.returncode})", path=log_path)
    code, wall, maxrss = result_path.read_text().split()
    result_path.unlink()
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    peak = int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024
    return int(code), float(wall), peak


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


def synth_spec(synth: str, workdir: Path, log=print) -> tuple[Path, dict]:
    """The graph spec of a generated data set: ``synth`` is a preset name or a folder.

    A folder is one that ``kgrec data synth`` wrote (its ``graph.toml`` is the spec; generate
    a large preset once and pass its folder to time the build again without generating it
    again). A preset is generated into ``workdir`` first, in a child process; its time is
    reported apart from the build's.
    """
    folder = Path(synth)
    info: dict = {"synth": synth}
    if not folder.is_dir():
        from kgrec.datasets.synth import PRESETS

        if synth not in PRESETS:
            raise KgrecError(f"--synth {synth!r} is neither a folder nor a preset (presets: {', '.join(PRESETS)})")
        folder = workdir / "synth"
        log(f"generating {synth} into {folder} (kgrec data synth)")
        code, wall, peak = run_measured(
            _kgrec_command("data", "synth", "--preset", synth, "--out", str(folder)), workdir / "synth.log"
        )
        if code != 0:
            raise KgrecError(f"kgrec data synth --preset {synth} failed (exit status {code}):\n{_tail(workdir / 'synth.log')}")
        info.update(generate_seconds=wall, generate_peak_rss_bytes=peak)
    spec = folder / "graph.toml"
    if not spec.is_file():
        raise KgrecError("no graph.toml: not a folder written by kgrec data synth", path=folder)
    return spec, info


def measure_build(spec: Path, out: Path, log_path: Path) -> dict:
    """``kgrec build --spec SPEC --out OUT`` in a child process: wall time and peak RSS."""
    code, wall, peak = run_measured(_kgrec_command("build", "--spec", str(spec), "--out", str(out)), log_path)
    if code != 0:
        raise KgrecError(f"kgrec build --spec {spec} failed (exit status {code}):\n{_tail(log_path)}")
    match = _BUILD_SECONDS_RE.search(log_path.read_text(encoding="utf-8", errors="replace"))
    return {
        "status": "measured",
        "spec": str(spec),
        "seconds": wall,
        "build_seconds_reported": float(match.group(1)) if match else None,
        "peak_rss_bytes": peak,
    }


# --------------------------------------------------------------------------- encode
def measure_encode(kg, device: torch.device, *, texts: int, batch_size: int, model: str, max_length: int) -> dict:
    """Texts per second of the description encoder, without the cache, after a warm-up batch."""
    from kgrec.text.encoder import TextEncoder
    from kgrec.text.features import node_texts

    distinct = list(dict.fromkeys(t for t in node_texts(kg) if t is not None))
    if not distinct:
        raise KgrecError("the graph has no node with a label or description: nothing to encode (add --skip encode)")
    chosen = distinct[:texts]
    t0 = time.perf_counter()
    encoder = TextEncoder(model, device=device, batch_size=batch_size, max_length=max_length, cache_dir=None)
    load_seconds = time.perf_counter() - t0
    # Warm-up on texts that differ from the measured ones: the encoder keeps what it encoded
    # in memory even without a cache folder, and a measured text must never be a hit.
    warmup = [f"warm-up {i}: {t}" for i, t in enumerate(chosen[:batch_size])]
    encoder.encode(warmup, progress=False)
    _sync(device)
    calls = encoder.forward_calls
    start = time.perf_counter()
    encoder.encode(chosen, progress=False)
    _sync(device)
    seconds = time.perf_counter() - start
    expected = math.ceil(len(chosen) / batch_size)
    if encoder.forward_calls - calls != expected:  # a bug in this benchmark, not user input
        raise RuntimeError(f"encoded {encoder.forward_calls - calls} batches, expected {expected}")
    return {
        "status": "measured",
        "model": model,
        "texts": len(chosen),
        "texts_available": len(distinct),
        "mean_characters": sum(len(t) for t in chosen) / len(chosen),
        "batch_size": batch_size,
        "max_length": max_length,
        "precision": "fp16 autocast" if device.type == "cuda" else "fp32",
        "warmup_texts": len(warmup),
        "model_load_seconds": load_seconds,
        "seconds": seconds,
        "texts_per_second": len(chosen) / seconds,
    }


# --------------------------------------------------------------------------- train
def _experiment(o: SpeedOptions, device: torch.device):
    from kgrec.experiment import check_experiment, load_experiment

    config = load_experiment(Path(o.config) if o.config else None)
    config.train.device = str(device)
    config.train.epochs = o.epochs
    config.train.patience = o.epochs + 1  # a benchmark runs every epoch it was asked for
    config.train.eval_every = 1  # NDCG@20 after every epoch: time to target
    if o.seed is not None:
        config.train.seed = o.seed
    if 20 not in config.eval.ks:
        config.eval.ks = sorted({*config.eval.ks, 20})
    check_experiment(config)
    return config


def prepare(kg, config, device: torch.device):
    """Split, features and a fresh model, as ``kgrec train`` makes them."""
    from kgrec.runs import prepare_model, split_for
    from kgrec.train.device import seed_everything

    generator = seed_everything(config.train.seed, device)
    split = split_for(kg, config, log=lambda *a, **k: None)
    t0 = time.perf_counter()
    model, g = prepare_model(kg, config, split, device)
    return split, model, g, generator, time.perf_counter() - t0


def _read_metrics(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def measure_train(model, g, split, config, device: torch.device, generator, run_dir: Path, o: SpeedOptions) -> dict:
    """Train with :func:`kgrec.train.loop.fit`; per-epoch times come from its ``metrics.jsonl``."""
    from kgrec.train.loop import fit

    run_dir.mkdir(parents=True, exist_ok=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    results = fit(model, g, split, config, run_dir, device=device, generator=generator, progress=False)
    _sync(device)
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    records = _read_metrics(run_dir / "metrics.jsonl")
    seconds = [float(r["seconds"]) for r in records]
    ndcg = [float(r["valid_ndcg@20"]) for r in records]
    timed = seconds[o.warmup_epochs :]
    best = max(range(len(ndcg)), key=lambda i: (ndcg[i], -i))
    out = {
        "status": "measured",
        "encoder": config.model.encoder,
        "loss": config.train.loss,
        "sampler": getattr(config.train, "sampler", "full"),
        "dim": config.model.dim,
        "layers": config.model.layers,
        "batch_size": config.train.batch_size,
        "num_negatives": config.train.num_negatives,
        "amp": bool(config.train.amp and device.type == "cuda"),
        "message_passing_edges": int(g.edge_index.size(1)),
        "train_pairs": int(len(split.train)),
        "epochs": len(records),
        "warmup_epochs": o.warmup_epochs,
        "epoch_seconds": seconds,
        "seconds_per_epoch": statistics.median(timed),
        "valid_ndcg@20": ndcg,
        "best_ndcg@20": ndcg[best],
        "best_epoch": records[best]["epoch"],
        "seconds_to_best": sum(seconds[: best + 1]),
        "target_ndcg@20": o.target_ndcg,
        "target_reached": None,
        "epochs_to_target": None,
        "seconds_to_target": None,
        "wall_seconds": wall,
        "test_ndcg@20": results["test"].get("ndcg@20"),
        "peak_gpu_memory_bytes": peak,
    }
    if o.target_ndcg is not None:
        hit = next((i for i, v in enumerate(ndcg) if v >= o.target_ndcg), None)
        out["target_reached"] = hit is not None
        if hit is not None:
            out["epochs_to_target"] = records[hit]["epoch"]
            out["seconds_to_target"] = sum(seconds[: hit + 1])
    return out


# --------------------------------------------------------------------------- eval
def measure_eval(kg, model, g, split, config, device: torch.device, repeats: int, trained: bool) -> dict:
    """Median time of full-ranking test evaluation of all users, and of top-K for all users.

    Both go through the trained-run object (:class:`kgrec.runs.Run`), so they rank exactly as
    ``kgrec evaluate`` and ``kgrec recommend`` do: with the item-item view blended in when the
    configuration has one. Each timing includes the propagation over the graph.
    """
    from kgrec.runs import Run

    ks = config.eval.ks
    all_users = torch.arange(g.num_users)

    def evaluate():
        return Run(config, kg, split, model, g, device, added_items=False).evaluate("test")

    def recommend():
        return Run(config, kg, split, model, g, device, added_items=False).topk(all_users, max(ks), progress=False)

    def timed(fn):
        fn()  # warm-up
        times = []
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            result = fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        return result, times

    metrics, eval_times = timed(evaluate)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    _, rec_times = timed(recommend)
    return {
        "status": "measured",
        "weights": "trained" if trained else "untrained (the time does not depend on them)",
        "item_item_view": config.model.item_item,
        "users_evaluated": int(metrics["num_users"]),
        "users": g.num_users,
        "items": g.num_items,
        "batch_size": config.eval.batch_size,
        "repeats": repeats,
        "seconds_all": eval_times,
        "seconds": statistics.median(eval_times),
        "users_per_second": metrics["num_users"] / statistics.median(eval_times),
        "topk": max(ks),
        "recommend_all_seconds": statistics.median(rec_times),
        "peak_gpu_memory_bytes": peak,
    }


# --------------------------------------------------------------------------- the benchmark
def run_speed(o: SpeedOptions, log=print) -> dict:
    """Run the steps ``o`` asks for; returns (and with ``o.out`` writes) the results."""
    from kgrec.device import resolve_device
    from kgrec.graph.store import load_graph
    from kgrec.io import write_json

    check_options(o)
    device = resolve_device(o.device)
    own_workdir = o.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="kgrec-speed-")) if own_workdir else Path(o.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    skipped = {"status": "skipped"}
    result: dict = {
        "format": "kgrec-speed",
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": environment(device),
        "options": asdict(o),
        "graph": {},
        "build": dict(skipped),
        "encode": dict(skipped),
        "train": dict(skipped),
        "eval": dict(skipped),
    }
    try:
        graph_dir = Path(o.graph) if o.graph else None
        if "build" not in o.skip and (o.spec or o.synth):
            extra: dict = {}
            spec = Path(o.spec) if o.spec else None
            if o.synth:
                spec, extra = synth_spec(o.synth, workdir, log=log)
            built = workdir / "graph"
            if built.exists():
                shutil.rmtree(built)
            log(f"build: kgrec build --spec {spec} (child process)")
            result["build"] = {**measure_build(spec, built, workdir / "build.log"), **extra}
            graph_dir = graph_dir or built
        elif "build" not in o.skip:
            result["build"] = {"status": "skipped", "reason": "no --spec or --synth to build from"}
        graph_dir = graph_dir or workdir / "graph"  # check_options made sure there is one
        kg = load_graph(graph_dir)
        result["graph"] = {"path": str(graph_dir), **graph_sizes(kg)}
        sizes = result["graph"]
        log(f"graph: {sizes['users']:,} users, {sizes['items']:,} items, {sizes['entities']:,} entities, "
            f"{sizes['interactions']:,} interactions, {sizes['triples']:,} triples on {device}")

        config = _experiment(o, device)
        if "encode" not in o.skip:
            log(f"encode: up to {o.texts:,} texts, batch {o.text_batch_size}")
            result["encode"] = measure_encode(
                kg, device, texts=o.texts, batch_size=o.text_batch_size,
                model=o.text_model or config.text.model, max_length=config.text.max_length,
            )
        if "train" not in o.skip or "eval" not in o.skip:
            split, model, g, generator, prep = prepare(kg, config, device)
            if "train" not in o.skip:
                log(f"train: {o.epochs} epochs ({config.model.encoder}, {config.train.loss}) on {device}")
                result["train"] = measure_train(model, g, split, config, device, generator, workdir / "run", o)
                result["train"]["prepare_seconds"] = prep
            if "eval" not in o.skip:
                log(f"eval: full ranking of all users, median of {o.eval_repeats}")
                result["eval"] = measure_eval(kg, model, g, split, config, device, o.eval_repeats, trained="train" not in o.skip)
    finally:
        if own_workdir and not o.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif own_workdir:
            log(f"work folder kept: {workdir}")
    if o.out:
        write_json(Path(o.out), result)
    return result


# --------------------------------------------------------------------------- table
def _fmt_bytes(n) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.0f} MiB"


def _fmt_s(x) -> str:
    if x is None:
        return "n/a"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:,.2f} s"


def format_table(r: dict) -> str:
    """The results as a two-column text table (every figure, skipped steps marked)."""
    env, gr = r["environment"], r["graph"]
    rows: list[tuple[str, str]] = [
        ("device", f"{env['device_name']} ({env['device']})"),
        ("versions", f"torch {env['torch_version']}, kgrec {env['kgrec_version']}, python {env['python_version']}"),
        ("CPUs", f"{env['cpu_count']} ({env['cpus_usable']} usable, {env['torch_threads']} torch threads)"),
        ("graph", f"{gr.get('name')}: {gr['users']:,} users, {gr['items']:,} items, {gr['entities']:,} entities"),
        ("", f"{gr['interactions']:,} interactions, {gr['triples']:,} triples, {gr['edges']:,} directed edges"),
    ]
    b, e, t, v = r["build"], r["encode"], r["train"], r["eval"]
    if b["status"] == "measured":
        rows.append(("build", f"{_fmt_s(b['seconds'])} wall ({_fmt_s(b['build_seconds_reported'])} reported by the build)"))
        rows.append(("build peak RSS", _fmt_bytes(b["peak_rss_bytes"])))
    else:
        rows.append(("build", "skipped" + (f" ({b['reason']})" if "reason" in b else "")))
    if e["status"] == "measured":
        rows.append(("encode", f"{e['texts_per_second']:,.1f} texts/s ({e['texts']:,} texts, batch {e['batch_size']}, {e['precision']})"))
    else:
        rows.append(("encode", "skipped"))
    if t["status"] == "measured":
        rows.append(("train", f"{_fmt_s(t['seconds_per_epoch'])} per epoch (median of {t['epochs'] - t['warmup_epochs']} after {t['warmup_epochs']} warm-up)"))
        rows.append(("best valid NDCG@20", f"{t['best_ndcg@20']:.4f} at epoch {t['best_epoch']} of {t['epochs']}, after {_fmt_s(t['seconds_to_best'])} of training"))
        if t["target_ndcg@20"] is not None:
            reached = (f"epoch {t['epochs_to_target']}, after {_fmt_s(t['seconds_to_target'])} of training"
                       if t["target_reached"] else f"not reached in {t['epochs']} epochs")
            rows.append((f"NDCG@20 >= {t['target_ndcg@20']}", reached))
        rows.append(("train peak GPU memory", _fmt_bytes(t["peak_gpu_memory_bytes"])))
    else:
        rows.append(("train", "skipped"))
    if v["status"] == "measured":
        rows.append(("eval (full ranking)", f"{_fmt_s(v['seconds'])} for {v['users_evaluated']:,} users x {v['items']:,} items ({v['users_per_second']:,.0f} users/s)"))
        rows.append((f"top-{v['topk']} for all users", _fmt_s(v["recommend_all_seconds"])))
        rows.append(("eval peak GPU memory", _fmt_bytes(v["peak_gpu_memory_bytes"])))
    else:
        rows.append(("eval", "skipped"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {val}" for k, val in rows)
