"""``kgrec train``, ``kgrec evaluate`` and ``kgrec recommend``: make a run, then use it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kgrec.cli.options import add_device, add_force, add_k, add_output_format, add_run_options, load_run_from_args
from kgrec.errors import KgrecError


def format_metrics(metrics: dict, title: str) -> str:
    """A metrics dict (``recall@20``...) as a small table, one row per metric, one column per K."""
    ks = sorted({int(k.split("@")[1]) for k in metrics if "@" in k})
    names = ["recall", "ndcg", "hit", "precision", "mrr"]
    lines = [title, f"  {'':<10}" + "".join(f"{'@' + str(k):>10}" for k in ks)]
    for n in names:
        lines.append(f"  {n:<10}" + "".join(f"{metrics.get(f'{n}@{k}', float('nan')):>10.4f}" for k in ks))
    if "num_users" in metrics:
        lines.append(f"  users evaluated: {int(metrics['num_users']):,}")
    return "\n".join(lines)


def format_details(details: dict, k: int = 20) -> str:
    """The test set beyond accuracy and by group (``results.json``'s ``test_details``), at ``k``."""
    b = details["beyond"]
    at = lambda name: b.get(f"{name}@{k}", float("nan"))  # noqa: E731
    lines = [
        f"test beyond accuracy: AUC {b['auc']:.4f}, coverage@{k} {at('coverage'):.4f}, "
        f"long-tail share@{k} {at('long_tail_share'):.4f}, novelty@{k} {at('novelty'):.2f}"
        + (f", ILD@{k} (KG entities) {at('ild'):.4f}" if f"ild@{k}" in b else ""),
        f"  {'by group':<24}{'users':>8}{'recall@' + str(k):>12}{'ndcg@' + str(k):>12}",
    ]
    groups = [(f"history {name} items", row) for name, row in details["by_history"].items()]
    groups += [(f"{name} items (held out)", row) for name, row in details["by_popularity"].items()]
    for name, row in groups:
        lines.append(f"  {name:<24}{row['num_users']:>8,}{row.get(f'recall@{k}', float('nan')):>12.4f}{row.get(f'ndcg@{k}', float('nan')):>12.4f}")
    return "\n".join(lines)


def print_recommendations(run, recs, marked: set[str], mark: str) -> None:
    """Each user's list, one item a line (rank, id, label, score), items in ``marked`` flagged."""
    for user, rows in recs.groupby("user", sort=False):
        print(f"user {user}:")
        for r in rows.itertuples():
            flag = f"  <- {mark}" if r.item in marked else ""
            print(f"  {r.rank:>3}. {r.item}  {run.item_label(r.item) or ''}  ({r.score:.3f}){flag}")


def print_notes(run) -> None:
    """What a run's ranking cannot do for its added items, said where they are ranked."""
    for note in run.view_notes():
        print(f"note: {note}")


# --------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from kgrec.experiment import check_experiment, load_experiment
    from kgrec.runs import resume_run, train_run

    t0 = time.perf_counter()
    if args.resume:
        if args.config or args.graph or args.split_dir or args.epochs is not None or args.seed is not None or args.device or args.force:
            raise KgrecError("--resume continues a run exactly as it was configured: give only --run")
        results = resume_run(Path(args.run))
        return _print_results(results, args.run, t0)
    if not args.graph:
        raise KgrecError("--graph is required (or --resume to continue a killed run)")
    config = load_experiment(Path(args.config) if args.config else None)
    overrides = {"epochs": args.epochs, "seed": args.seed, "device": args.device}
    for key, value in overrides.items():
        if value is not None:
            setattr(config.train, key, value)
    try:
        check_experiment(config)
    except KgrecError as e:  # an override the configuration cannot take: name the option
        given = ", ".join(f"--{k} {v}" for k, v in overrides.items() if v is not None)
        raise KgrecError(f"{e} (with {given})" if given else str(e)) from None
    results = train_run(
        Path(args.graph), config, Path(args.run), split_dir=Path(args.split_dir) if args.split_dir else None, force=args.force
    )
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
    print(format_metrics(results["valid"], title))
    print(format_metrics(results["test"], "test (train and validation items masked)"))
    if "test_details" in results:
        print(format_details(results["test_details"]))
    print(
        f"{results['seconds_per_epoch']:.2f}s per epoch on {results['device_name']}; "
        f"run folder {run} ({time.perf_counter() - t0:.1f}s in all)"
    )
    return 0


# --------------------------------------------------------------------------- evaluate / recommend
def cmd_evaluate(args) -> int:
    run = load_run_from_args(args)
    metrics = run.evaluate(args.set)
    if args.output_format == "json":  # one JSON document on stdout, nothing else
        print(json.dumps(metrics, indent=2))
        return 0
    title = f"{args.set} metrics of {args.run}"
    if run.added_item_ids:
        title += f" (the {len(run.added_item_ids)} item(s) added after training are candidates too)"
    print(format_metrics(metrics, title))
    print_notes(run)
    if args.json:
        print(json.dumps(metrics, indent=2))
    return 0


def cmd_recommend(args) -> int:
    run = load_run_from_args(args)
    users = None if args.users == "all" else [u.strip() for u in args.users.split(",") if u.strip()]
    recs = run.recommend(users, k=args.k)
    if args.out:
        run.write_recommendations(recs, Path(args.out))
        print(f"{len(recs):,} recommendations for {recs['user'].nunique():,} users written to {args.out}")
    shown_users = recs["user"].unique()[: args.show]
    print_recommendations(run, recs[recs["user"].isin(shown_users)], set(run.added_item_ids), "added")
    hidden = recs["user"].nunique() - len(shown_users)
    if hidden > 0:
        where = f"all of them are in {args.out}" if args.out else "write every list with --out FILE.csv, or print more with --show N"
        print(f"... and {hidden:,} more user(s): {where}")
    print_notes(run)
    return 0


# --------------------------------------------------------------------------- parsers
def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate`` and ``recommend`` to the ``kgrec`` subcommand parsers."""
    p = sub.add_parser(
        "train",
        help="train and evaluate a model on a built graph",
        description="Train a model on a built graph by link-prediction self-supervision, select its "
        "weights on validation and score the test set once; leaves a run folder. An existing run "
        "folder is refused unless --force (replace it whole) or --resume (continue a killed run).",
    )
    p.add_argument("--graph", help="a graph folder written by `kgrec build`")
    p.add_argument("--config", help="experiment config (experiments/NAME.toml); kgrec's defaults otherwise")
    # --run-dir: torchrun's own parser rejects `--run` anywhere on its command line (ambiguous
    # with its --run-path), so `torchrun ... -m kgrec train` needs the longer spelling
    p.add_argument("--run", "--run-dir", dest="run", required=True, help="run folder to write, e.g. runs/NAME")
    p.add_argument("--split-dir", help="train on a fixed split (a folder with train.csv, valid.csv, test.csv)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--seed", type=int, help="override train.seed")
    add_device(p, default=None, what="override train.device")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    add_force(p, "run folder")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="full-ranking metrics of a finished run",
        description="Rank every item of the run's catalogue (items added after training included) "
        "for every user with held-out items; training (and, for test, validation) items masked.",
    )
    add_run_options(p)
    p.add_argument("--set", choices=["test", "valid"], default="test", help="which held-out part")
    add_output_format(p)
    p.add_argument("--json", action="store_true", help="also print the metrics as JSON after the table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "recommend",
        help="top-K recommendations from a finished run",
        description="Each user's top-K items (training and validation items excluded), ranked as "
        "`kgrec evaluate` ranks; items added with `kgrec add-items` take part. Prints the first "
        "--show users; --out writes every list as CSV.",
    )
    add_run_options(p)
    p.add_argument("--users", default="all", help="'all' or a comma-separated list of user ids")
    add_k(p, 20, "items per user")
    p.add_argument("--out", help="write every user's list as user,item,rank,score CSV here")
    p.add_argument("--show", type=int, default=3, help="how many users' lists to print")
    p.set_defaults(func=cmd_recommend)
