"""``kgrec bench``: benchmark suites (datasets x models x seeds) and speed on a device."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_bench(args) -> int:
    from kgrec.bench import load_suite
    from kgrec.bench.runner import run_suite

    suite = load_suite(Path(args.suite))
    out = run_suite(
        suite, Path(args.results), force=args.force, only=args.only.split(",") if args.only else None, jobs=args.jobs
    )
    print((out / "results.md").read_text() if (out / "results.md").is_file() else "no finished runs")
    return 0


def cmd_bench_speed(args) -> int:
    from kgrec.bench.speed import SpeedOptions, format_table, parse_skip, run_speed

    options = SpeedOptions(
        spec=args.spec, synth=args.synth, graph=args.graph, config=args.config, device=args.device,
        skip=parse_skip(args.skip), epochs=args.epochs, warmup_epochs=args.warmup_epochs,
        target_ndcg=args.target_ndcg, texts=args.texts, text_batch_size=args.text_batch_size,
        text_model=args.text_model, eval_repeats=args.eval_repeats, seed=args.seed,
        workdir=args.workdir, keep=args.keep, out=args.out, force=args.force,
    )
    result = run_speed(options)
    print(format_table(result))
    if args.out:
        print(f"results written to {args.out}")
    return 0


def cmd_bench_incremental(args) -> int:
    from kgrec.bench.incremental import markdown, run_incremental
    from kgrec.experiment import load_experiment

    config = load_experiment(Path(args.config) if args.config else None)
    if args.seed is not None:
        config.train.seed = args.seed
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    results = run_incremental(
        Path(args.graph), config, Path(args.out), base=args.base, chunk=args.chunk, chunks=args.chunks, arms=arms,
        force=args.force, resume=args.resume,
    )  # fmt: skip
    print(markdown(results))
    print(f"results written to {args.out}/results.json, results.md and incremental.png")
    return 0


def _add_incremental_parser(bsub) -> None:
    p = bsub.add_parser(
        "incremental",
        help="the streaming protocol: stale, incremental (kgrec update) and retrained models on later chunks of the log",
        description="Sort the log by time, train on the first --base share, then for each of --chunks chunks: evaluate "
        "every arm on the chunk (full ranking, known history masked), then add it (stale: never; incremental: kgrec "
        "update; retrain: from scratch with the same config). Writes OUT/results.json, results.md and incremental.png.",
    )
    p.add_argument("--graph", required=True, help="a graph folder written by `kgrec build` (its log needs timestamps)")
    p.add_argument("--config", help="experiment config (with its [update] settings) for every arm")
    p.add_argument("--out", required=True, help="the work folder: graphs, runs, chunk files and the results")
    p.add_argument("--base", type=float, default=0.7, help="share of the log (in time order) the base run trains on")
    p.add_argument("--chunk", type=float, default=0.1, help="share of the log in each later chunk")
    p.add_argument("--chunks", type=int, default=3, help="how many chunks")
    p.add_argument("--arms", default="stale,incremental,retrain", help="which arms to run")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--resume", action="store_true", help="reuse the finished runs of an earlier attempt in --out")
    p.add_argument("--force", action="store_true", help="run everything again and replace --out")
    p.set_defaults(func=cmd_bench_incremental)


def _add_speed_parser(bsub) -> None:
    p = bsub.add_parser(
        "speed",
        help="time the build, text encoding, training epochs and full-ranking evaluation on a device",
        description="Graph build time and peak memory, description encoding throughput, seconds per "
        "training epoch, time to a validation NDCG@20, peak GPU memory and full-ranking evaluation time.",
    )
    p.add_argument("--spec", help="build the graph from this spec (graphs/NAME.toml), timed in a child process")
    p.add_argument("--synth", metavar="PRESET|DIR", help="build a generated data set (a kgrec data synth preset or folder)")
    p.add_argument("--graph", help="an already built graph for the encode, train and eval steps")
    p.add_argument("--config", help="experiment config (default: kgrec's defaults, LightGCN-style encoder)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--skip", help="comma-separated steps to leave out: build, encode, train, eval")
    p.add_argument("--epochs", type=int, default=20, help="training epochs, no early stopping (default 20)")
    p.add_argument("--warmup-epochs", type=int, default=1, help="epochs left out of the median (default 1)")
    p.add_argument("--target-ndcg", type=float, help="report the time to reach this validation NDCG@20")
    p.add_argument("--texts", type=int, default=10_000, help="descriptions to encode (default 10000, or all there are)")
    p.add_argument("--text-batch-size", type=int, default=256, help="texts per encoder forward pass (default 256)")
    p.add_argument("--text-model", help="text encoder (default: the config's, all-MiniLM-L6-v2)")
    p.add_argument("--eval-repeats", type=int, default=3, help="timed full-ranking evaluations (default 3)")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--workdir", help="where the built graph and the training run go (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=cmd_bench_speed)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` (``suite``, ``speed``) to the ``kgrec`` subcommand parsers."""
    p = sub.add_parser(
        "bench",
        help="benchmark suites (datasets x models x seeds), and speed on a device",
        description="`kgrec bench SUITE.toml` is short for `kgrec bench suite SUITE.toml`.",
    )
    bsub = p.add_subparsers(dest="bench_command", required=True)
    b = bsub.add_parser("suite", help="run a benchmark suite (datasets x models x seeds) and write its table")
    b.add_argument("suite", help="a suite file, e.g. experiments/ml-100k.toml")
    b.add_argument("--results", default="experiments/results", help="where experiments/results/<suite>/ goes")
    b.add_argument("--force", action="store_true", help="re-run finished runs (without it, finished runs with the same configuration are reused)")
    b.add_argument("--only", help="comma-separated model names to run")
    b.add_argument(
        "--jobs", type=int, default=1,
        help="runs at a time, each in its own process with cores/jobs torch threads (default 1)",
    )
    b.set_defaults(func=cmd_bench)
    _add_speed_parser(bsub)
    _add_incremental_parser(bsub)
