"""The ``kgrec`` command line: a thin layer over the library.

Each subcommand parses its options, calls one library function and prints what it did. Errors
in the user's input arrive as :class:`~kgrec.errors.KgrecError` and are printed as one line,
without a traceback, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kgrec.errors import KgrecError


# --------------------------------------------------------------------------- build
def _spec_from_args(args) -> "GraphSpec":
    from kgrec.config import GraphSpec, load_graph_spec

    spec = load_graph_spec(Path(args.spec)) if args.spec else GraphSpec(name=Path(args.out).name, base_dir=str(Path.cwd()))
    cwd = Path.cwd()

    def here(p: str) -> str:  # command-line paths are relative to the working directory
        return str((cwd / p).resolve())

    if args.interactions:
        spec.interactions.path = here(args.interactions)
    if args.rdf:
        spec.rdf.paths = [here(p) for p in args.rdf]
    if args.rdf_format:
        spec.rdf.format = args.rdf_format
    if args.item_iri and args.link:
        raise KgrecError("give either --item-iri or --link, not both")
    if args.item_iri:
        spec.rdf.item_iri, spec.rdf.link = args.item_iri, None
    if args.link:
        spec.rdf.link, spec.rdf.item_iri = here(args.link), None
    if args.user_iri:
        spec.rdf.user_iri = args.user_iri
    if args.rating_threshold is not None:
        spec.interactions.rating_threshold = args.rating_threshold
    if args.format:
        spec.interactions.format = args.format
    if args.delimiter:
        spec.interactions.delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    for mapping in args.column or []:
        field, _, column = mapping.partition("=")
        attr = f"{field}_column"
        if not column or not hasattr(spec.interactions, attr):
            raise KgrecError(f"--column expects FIELD=NAME with FIELD one of user, item, rating, timestamp, event; got {mapping!r}")
        setattr(spec.interactions, attr, column)
    if args.lenient:
        spec.lenient = True
    if not spec.interactions.path:
        raise KgrecError("no interaction log: give --interactions FILE or a --spec that names one")
    return spec


def cmd_build(args) -> int:
    from kgrec.graph.build import build_graph
    from kgrec.graph.store import check_replaceable, save_graph
    from kgrec.ingest import ingest

    t0 = time.perf_counter()
    check_replaceable(Path(args.out))  # before any work: never overwrite a user's folder
    if args.recbole or args.kgat:
        from kgrec.ingest import read_kgat, read_recbole

        if args.interactions or args.rdf or args.spec:
            raise KgrecError("--recbole/--kgat read a whole dataset folder: leave out --interactions, --rdf and --spec")
        tables = read_recbole(Path(args.recbole)) if args.recbole else read_kgat(Path(args.kgat))[0]
        name = Path(args.out).name
    else:
        spec = _spec_from_args(args)
        tables = ingest(spec)
        name = spec.name
    kg = build_graph(tables, name=name)
    print(tables.report.format())
    save_graph(kg, Path(args.out))
    print(kg.summary())
    print(f"graph written to {args.out} in {time.perf_counter() - t0:.1f}s")
    return 0


# --------------------------------------------------------------------------- train / evaluate / recommend
def _format_metrics(metrics: dict, title: str) -> str:
    ks = sorted({int(k.split("@")[1]) for k in metrics if "@" in k})
    names = ["recall", "ndcg", "hit", "precision", "mrr"]
    lines = [title, f"  {'':<10}" + "".join(f"{'@' + str(k):>10}" for k in ks)]
    for n in names:
        lines.append(f"  {n:<10}" + "".join(f"{metrics.get(f'{n}@{k}', float('nan')):>10.4f}" for k in ks))
    if "num_users" in metrics:
        lines.append(f"  users evaluated: {int(metrics['num_users']):,}")
    return "\n".join(lines)


def cmd_train(args) -> int:
    from kgrec.config import load_experiment
    from kgrec.runs import resume_run, train_run

    t0 = time.perf_counter()
    if args.resume:
        if args.config or args.graph or args.split_dir or args.epochs or args.seed is not None or args.device:
            raise KgrecError("--resume continues a run exactly as it was configured: give only --run")
        results = resume_run(Path(args.run))
        return _print_results(results, args.run, t0)
    if not args.graph:
        raise KgrecError("--graph is required (or --resume to continue a killed run)")
    config = load_experiment(Path(args.config) if args.config else None)
    if args.epochs is not None:
        config.train.epochs = args.epochs
    if args.seed is not None:
        config.train.seed = args.seed
    if args.device:
        config.train.device = args.device
    results = train_run(Path(args.graph), config, Path(args.run), split_dir=Path(args.split_dir) if args.split_dir else None)
    return _print_results(results, args.run, t0)


def _print_results(results: dict, run: str, t0: float) -> int:
    from kgrec.train.distributed import env_rank

    if env_rank() != 0:  # under torchrun every process returns the results; rank 0 prints them
        return 0
    title = f"validation (selected epoch {results['best_epoch']} of {results['epochs_run']})"
    blend = results.get("item_item")
    if blend:  # say what the view added on validation, where it was chosen
        title += (
            f", with the {blend['kind']} item-item view at share {blend['share']:.1f} "
            f"(the dot product alone: ndcg@20 {blend['valid_dot_only'].get('ndcg@20', float('nan')):.4f})"
        )
    print(_format_metrics(results["valid"], title))
    print(_format_metrics(results["test"], "test (train and validation items masked)"))
    print(
        f"{results['seconds_per_epoch']:.2f}s per epoch on {results['device_name']}; "
        f"run folder {run} ({time.perf_counter() - t0:.1f}s in all)"
    )
    return 0


def cmd_evaluate(args) -> int:
    from kgrec.runs import load_run

    run = load_run(Path(args.run), device=args.device)
    metrics = run.evaluate(args.set)
    print(_format_metrics(metrics, f"{args.set} metrics of {args.run}"))
    if args.json:
        print(json.dumps(metrics, indent=2))
    return 0


def cmd_recommend(args) -> int:
    from kgrec.io import atomic_path
    from kgrec.runs import load_run

    run = load_run(Path(args.run), device=args.device)
    users = None if args.users == "all" else [u.strip() for u in args.users.split(",") if u.strip()]
    recs = run.recommend(users, k=args.k)
    if args.out:
        with atomic_path(Path(args.out), ".csv") as tmp:
            recs.to_csv(tmp, index=False)
        print(f"{len(recs):,} recommendations for {recs['user'].nunique():,} users written to {args.out}")
    show = recs if args.out is None else recs[recs["user"].isin(recs["user"].unique()[: args.show])]
    labels = run.kg.nodes["item"].set_index("id")["label"]
    for user, rows in show.groupby("user", sort=False):
        print(f"user {user}:")
        for r in rows.itertuples():
            label = labels.get(r.item)
            print(f"  {r.rank:>3}. {r.item}  {label or ''}  ({r.score:.3f})")
    return 0


# --------------------------------------------------------------------------- data
def cmd_data_fetch(args) -> int:
    from kgrec.datasets import fetch

    path = fetch(args.name, cache_root=Path(args.cache), force=args.force)
    print(f"{args.name} ready in {path}")
    return 0


def cmd_data_synth(args) -> int:
    from kgrec.datasets.synth import resolve_counts, write_synth

    counts = resolve_counts(
        args.preset, users=args.users, items=args.items, interactions=args.interactions,
        entities=args.entities, triples=args.triples,
    )  # fmt: skip
    about = write_synth(Path(args.out), seed=args.seed, preset=args.preset, **counts)
    c = about["counts"]
    print(
        f"{c['users']:,} users, {c['items']:,} items, {c['interactions']:,} interactions, {c['entities']:,} entities, "
        f"{c['triples']:,} triples written to {args.out} in {about['seconds']:.1f}s\n"
        f"build it with: kgrec build --spec {Path(args.out) / 'graph.toml'} --out graphs/{Path(args.out).name}"
    )
    return 0


# --------------------------------------------------------------------------- bench
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
        workdir=args.workdir, keep=args.keep, out=args.out,
    )
    result = run_speed(options)
    print(format_table(result))
    if args.out:
        print(f"results written to {args.out}")
    return 0


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
    p.set_defaults(func=cmd_bench_speed)


# --------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """The top-level parser: ``kgrec bench SUITE.toml`` stays short for ``kgrec bench suite SUITE.toml``.

    ``bench`` has subcommands (``suite``, ``speed``); argparse cannot mix those with a file
    argument, so a ``bench`` not followed by one of them gets ``suite`` inserted.
    """

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if args[:1] == ["bench"] and (len(args) == 1 or args[1] not in ("suite", "speed", "-h", "--help")):
            args.insert(1, "suite")
        return super().parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kgrec", description="Knowledge-graph-centred recommendation with GNNs.")
    parser.add_argument("--version", action="version", version=f"kgrec {__import__('kgrec').__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from kgrec.cli_export import register as register_export

    register_export(sub)

    p = sub.add_parser("build", help="build a graph from interaction logs and RDF")
    p.add_argument("--spec", help="graph spec (graphs/NAME.toml); command-line options override it")
    p.add_argument("--interactions", help="interaction log: CSV, TSV, Parquet or JSONL")
    p.add_argument("--format", help="format of the log when its extension does not say (csv, tsv, parquet, jsonl)")
    p.add_argument("--delimiter", help="field delimiter of a text log (e.g. ';', or 'tab')")
    p.add_argument("--column", action="append", metavar="FIELD=NAME", help="map a log column, e.g. user=customer_id (repeatable)")
    p.add_argument("--rating-threshold", type=float, help="implicit feedback: keep rows with rating >= this (default: every row)")
    p.add_argument("--rdf", action="append", metavar="FILE", help="RDF about items (repeatable)")
    p.add_argument("--rdf-format", help="rdflib format for the RDF files (default: from the extension)")
    p.add_argument("--item-iri", metavar="TEMPLATE", help="item IRI template, e.g. 'http://example.org/item/{id}'")
    p.add_argument("--link", metavar="FILE", help="CSV/TSV mapping item id -> IRI")
    p.add_argument("--user-iri", metavar="TEMPLATE", help="user IRI template for users that have RDF")
    p.add_argument("--recbole", metavar="DIR", help="import a RecBole atomic-file dataset folder (.inter/.item/.kg/.link)")
    p.add_argument("--kgat", metavar="DIR", help="import a KGAT-layout folder (train.txt, test.txt, kg_final.txt)")
    p.add_argument("--lenient", action="store_true", help="drop bad records (reported) instead of stopping")
    p.add_argument("--out", required=True, help="output folder, e.g. graphs/NAME")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("train", help="train and evaluate a model on a built graph")
    p.add_argument("--graph", help="a graph folder written by `kgrec build`")
    p.add_argument("--config", help="experiment config (experiments/NAME.toml); defaults otherwise")
    # --run-dir: torchrun's own parser rejects `--run` anywhere on its command line (ambiguous
    # with its --run-path), so `torchrun ... -m kgrec train` needs the longer spelling
    p.add_argument("--run", "--run-dir", dest="run", required=True, help="run folder to write, e.g. runs/NAME")
    p.add_argument("--split-dir", help="train on a fixed split (a folder with train.csv, valid.csv, test.csv)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--device", help="override train.device (auto, cpu, cuda)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="full-ranking metrics of a finished run")
    p.add_argument("--run", required=True)
    p.add_argument("--set", choices=["test", "valid"], default="test")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top-K recommendations from a finished run")
    p.add_argument("--run", required=True)
    p.add_argument("--users", default="all", help="'all' or a comma-separated list of user ids")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--out", help="write user,item,rank,score CSV here")
    p.add_argument("--show", type=int, default=3, help="with --out, how many users to print")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser(
        "bench",
        help="benchmark suites (datasets x models x seeds), and speed on a device",
        description="`kgrec bench SUITE.toml` is short for `kgrec bench suite SUITE.toml`.",
    )
    bsub = p.add_subparsers(dest="bench_command", required=True)
    b = bsub.add_parser("suite", help="run a benchmark suite (datasets x models x seeds) and write its table")
    b.add_argument("suite", help="a suite file, e.g. experiments/ml-100k.toml")
    b.add_argument("--results", default="experiments/results", help="where experiments/results/<suite>/ goes")
    b.add_argument("--force", action="store_true", help="re-run finished runs")
    b.add_argument("--only", help="comma-separated model names to run")
    b.add_argument(
        "--jobs", type=int, default=1,
        help="runs at a time, each in its own process with cores/jobs torch threads (default 1)",
    )
    b.set_defaults(func=cmd_bench)
    _add_speed_parser(bsub)

    p = sub.add_parser("data", help="public data sets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="fetch a data set into the local cache (e.g. ml-100k)")
    f.add_argument("name")
    f.add_argument("--cache", default="data/cache")
    f.add_argument("--force", action="store_true")
    f.set_defaults(func=cmd_data_fetch)
    f = dsub.add_parser("synth", help="generate a synthetic data set of any size (logs + N-Triples + graph spec)")
    for count in ("users", "items", "interactions", "entities", "triples"):
        f.add_argument(f"--{count}", type=int, help=f"number of {count} (overrides the preset's)")
    f.add_argument("--preset", help="amazon-book (KGAT's Amazon-Book counts) or amazon-book-10x")
    f.add_argument("--seed", type=int, default=7)
    f.add_argument("--out", required=True, help="output folder, e.g. data/cache/synth-amazon-book")
    f.set_defaults(func=cmd_data_synth)

    from kgrec.cli_analysis import register

    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KgrecError as e:
        from kgrec.train.distributed import leave, rank_label  # under torchrun: which process failed

        print(f"kgrec: error{rank_label()}: {e}", file=sys.stderr)
        return leave(2)
    except KeyboardInterrupt:
        print("kgrec: interrupted", file=sys.stderr)
        return 130
    except Exception:
        from kgrec.train.distributed import abandoned, leave

        if abandoned():  # a bug in one of several training processes: its traceback, then leave
            import traceback

            traceback.print_exc()
            leave(1)
        raise


if __name__ == "__main__":
    sys.exit(main())
