"""``kgrec explain``, ``similar``, ``add-items``, ``new-user`` and ``cold-start``.

Each is a thin layer over the run object (:class:`kgrec.runs.Run`), or over the cold-start
protocol (:mod:`kgrec.bench.coldstart`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from kgrec.cli.runs import print_notes, print_recommendations
from kgrec.errors import KgrecError


def _ids(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _print_items(frame, title: str, score: str = "score") -> None:
    print(title)
    if frame.empty:
        print("  (none)")
    for r in frame.itertuples():
        label = getattr(r, "label", None)
        extra = f"  together {r.together}, lift {r.lift:.2f}" if score == "lift" else f"  ({getattr(r, score):.3f})"
        print(f"  {getattr(r, 'rank', r.Index + 1):>3}. {r.item}  {label or ''}{extra}")


# --------------------------------------------------------------------------- commands
def cmd_explain(args) -> int:
    from kgrec.runs import load_run

    run = load_run(Path(args.run), device=args.device)
    explanations = run.explain(args.user, item=args.item, k=args.k, paths=args.paths)
    print(f"Why these items for user {args.user} (paths in the training graph, scored by the model):")
    for e in explanations:
        print(run.format(e))
    if not args.no_png:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(args.user))
        out = Path(args.png) if args.png else Path(args.run) / "explanations" / f"user_{safe}.png"
        run.draw(explanations, out, title=f"Why these items for user {args.user}")
        print(f"picture written to {out}")
    return 0


def cmd_similar(args) -> int:
    from kgrec.runs import load_run

    run = load_run(Path(args.run), device=args.device)
    print(f"item {args.item} {run.item_label(args.item) or ''}")
    if args.mode in ("similar", "both"):
        _print_items(run.similar(args.item, k=args.k), "more like this (embedding cosine):")
    if args.mode in ("bundle", "both"):
        _print_items(run.bundles(args.item, k=args.k, min_support=args.min_support), f"often taken together (lift, >= {args.min_support} users):", score="lift")
    return 0


def cmd_add_items(args) -> int:
    from kgrec.runs import load_run

    run = load_run(Path(args.run), device=args.device)
    cold = run.add_items([Path(p) for p in args.rdf], items=_ids(args.items), item_iri=args.item_iri, save=not args.dry_run, id_init=args.id_init)
    print(f"{len(cold)} item(s) embedded without retraining: {', '.join(cold.ids[:10])}{' ...' if len(cold) > 10 else ''}")
    for key, n in sorted(cold.report.items()):
        print(f"  {key}: {n:,}")
    if args.dry_run:
        print("dry run: nothing saved")
    else:
        print(f"saved to {Path(args.run) / 'added_items'}; every command on this run (recommend, evaluate, explain, "
              "similar, new-user, export, sparql) and kgrec.load_run() include them")
    for item in cold.ids[: args.show]:
        _print_items(run.similar(item, k=5), f"{item} {run.item_label(item) or ''}: closest trained items")
    if args.users:
        print_recommendations(run, run.recommend(_ids(args.users), k=args.k), set(cold.ids), "new")
    print_notes(run)
    return 0


def cmd_new_user(args) -> int:
    from kgrec.runs import load_run

    if bool(args.text) == bool(args.liked):
        raise KgrecError("give either --text PROFILE or --liked ITEM,ITEM,...")
    run = load_run(Path(args.run), device=args.device)
    if args.text:
        recs = run.recommend_for_text(args.text, k=args.k)
        _print_items(recs, f"top {args.k} for a new user: {args.text!r}")
    else:
        recs = run.recommend_for_items(_ids(args.liked), k=args.k, method=args.method)
        _print_items(recs, f"top {args.k} for a new user who liked {args.liked}")
    return 0


def cmd_cold_start(args) -> int:
    from kgrec.bench.coldstart import run_cold_start
    from kgrec.experiment import load_experiment

    config = load_experiment(Path(args.config) if args.config else None)
    if args.device:
        config.train.device = args.device
    result = run_cold_start(Path(args.graph), config, Path(args.out), fraction=args.fraction, seed=args.seed)
    d = result.details
    print(f"cold-start items: {d['cold_items']} held out ({d['held_out_interactions']:,} interactions), "
          f"{d['users_evaluated']:,} users, candidates = the held-out items")
    print(result.format(ks=(10, 20, 50)))
    print("whole catalogue (every item a candidate, the user's warm items masked; truth = the cold items):")
    print(result.format(ks=(20, 50), catalogue=True))
    print(f"written to {Path(args.out) / 'cold_start.json'}")
    return 0


# --------------------------------------------------------------------------- parser
def register(sub: argparse._SubParsersAction) -> None:
    """Add the analysis subcommands to the ``kgrec`` parser's subparsers."""
    p = sub.add_parser("explain", help="knowledge-graph paths that explain a user's recommendations")
    p.add_argument("--run", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--item", help="explain this item (default: the user's top --k recommendations)")
    p.add_argument("--k", type=int, default=3, help="recommendations to explain (default 3)")
    p.add_argument("--paths", type=int, default=3, help="paths per item (default 3)")
    p.add_argument("--png", help="picture file (default RUN/explanations/user_USER.png)")
    p.add_argument("--no-png", action="store_true", help="text only")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("similar", help="items like an item (embeddings) and items taken with it (lift)")
    p.add_argument("--run", required=True)
    p.add_argument("--item", required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--mode", choices=["similar", "bundle", "both"], default="both")
    p.add_argument("--min-support", type=int, default=2, help="bundles: least number of users who took both")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("add-items", help="embed new items from RDF (description + triples) without retraining")
    p.add_argument("--run", required=True)
    p.add_argument("--rdf", action="append", required=True, metavar="FILE", help="RDF about the new items (repeatable)")
    p.add_argument("--items", help="comma-separated ids of the items to add (default: every new described resource)")
    p.add_argument("--item-iri", metavar="TEMPLATE", help="item IRI template, e.g. 'http://example.org/item/{id}'")
    p.add_argument("--id-init", choices=["mean", "zero"], default="mean", help="ID part of a new item's input (default mean)")
    p.add_argument("--users", help="show these users' top --k with the new items")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--show", type=int, default=3, help="new items whose closest trained items are printed")
    p.add_argument("--dry-run", action="store_true", help="embed and print, save nothing")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_add_items)

    p = sub.add_parser("new-user", help="top-K for a user the model never saw: a text profile or liked items")
    p.add_argument("--run", required=True)
    p.add_argument("--text", help="a text profile, e.g. 'dark science fiction with a great soundtrack'")
    p.add_argument("--liked", help="comma-separated ids of liked items")
    p.add_argument("--method", choices=["fold-in", "mean"], default="fold-in")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_new_user)

    p = sub.add_parser("cold-start", help="the cold-start-item protocol: hold out items, train, rank them")
    p.add_argument("--graph", required=True)
    p.add_argument("--config", help="experiment config")
    p.add_argument("--out", required=True, help="work folder (warm graph, warm run, cold_start.json)")
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--device")
    p.set_defaults(func=cmd_cold_start)
