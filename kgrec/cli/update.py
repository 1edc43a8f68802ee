"""``kgrec update``: fold new interactions, users and items into a trained run (a new run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kgrec.cli.options import add_device


def cmd_update(args) -> int:
    from kgrec.cli.runs import format_metrics
    from kgrec.runs.update import update_run

    settings = None
    if args.config:
        from kgrec.experiment import load_experiment

        settings = load_experiment(Path(args.config)).update
    results = update_run(
        Path(args.run), Path(args.interactions), Path(args.out), rdf=[Path(p) for p in args.rdf or []], lenient=args.lenient,
        item_iri=args.item_iri, link=args.link, settings=settings, graph=args.run_graph, device=args.device,
    )  # fmt: skip
    tuned = results["update"]["fine_tuning"]
    print(
        f"fine-tuned {tuned['steps']} steps ({tuned['epochs_run']} passes over the new interactions, "
        f"{tuned['new_pairs_per_step']} new + {tuned['replayed_pairs_per_step']} replayed pairs a step); kept pass {tuned['selected_epoch']}"
    )
    print(format_metrics(results["valid"], "validation (old and new interactions)"))
    print(format_metrics(results["test"], "test (old and new interactions; train and validation items masked)"))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``update`` to the ``kgrec`` subcommand parsers."""
    p = sub.add_parser(
        "update",
        help="fold new interactions, users and items into a trained run, without retraining",
        description="Read a new interaction log (and RDF about new items) as the run's graph read its own, grow a copy "
        "of the graph and of the model (new users, items and entities get rows from what the model learnt), "
        "fine-tune a few passes over the new interactions with replay of old ones and distillation of the old "
        "model ([update] settings), and write a new run folder (OUT, with the grown graph in OUT/graph). "
        "The parent run is never changed; an OUT that exists is refused.",
    )
    p.add_argument("--run", required=True, help="the trained run to update (a run folder; it is not changed)")
    p.add_argument("--interactions", required=True, help="the new interaction log (read with the graph's column settings)")
    p.add_argument("--rdf", action="append", metavar="FILE", help="RDF about new items (repeatable); a new item without RDF is refused")
    p.add_argument("--out", required=True, help="the new run folder to write (must not exist)")
    p.add_argument("--item-iri", metavar="TEMPLATE", help="item IRI template for the new items (instead of the graph's rule)")
    p.add_argument("--link", metavar="FILE", help="CSV/TSV mapping new item ids -> IRIs (instead of the graph's rule)")
    p.add_argument("--lenient", action="store_true", help="drop bad records and new items without RDF (counted in the report) instead of stopping")
    p.add_argument("--config", help="take the [update] settings from this experiment config (default: the run's own)")
    p.add_argument(
        "--graph", dest="run_graph", metavar="GRAPH",
        help="the run's graph folder, if it is no longer where training found it (same content: checked by hash)",
    )  # fmt: skip
    add_device(p)
    p.set_defaults(func=cmd_update)
