"""``kgrec explain``, ``similar``, ``add-items``, ``new-user`` and ``cold-start``.

Each is a thin layer over the run object (:class:`kgrec.runs.Run`), or over the cold-start
protocol (:mod:`kgrec.bench.coldstart`).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from kgrec.cli.options import add_device, add_force, add_k, add_output_format, add_run_options, at_least_one, load_run_from_args
from kgrec.cli.runs import print_notes, print_recommendations
from kgrec.errors import KgrecError


def _ids(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _records(frame) -> list[dict]:
    """A result table as JSON-ready rows (numpy scalars made plain)."""
    return json.loads(frame.to_json(orient="records"))


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


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
    run = load_run_from_args(args)
    explanations = run.explain(args.user, item=args.item, k=args.k, paths=args.paths)
    picture = None
    if not args.no_png:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(args.user))
        picture = Path(args.png) if args.png else Path(args.run) / "explanations" / f"user_{safe}.png"
        run.draw(explanations, picture, title=f"Why these items for user {args.user}")
    if args.output_format == "json":
        records = [run.record(e) for e in explanations]
        _print_json({"user": args.user, "explanations": records, "picture": None if picture is None else str(picture)})
        return 0
    print(f"Why these items for user {args.user} (paths in the training graph, scored by the model):")
    for e in explanations:
        print(run.format(e))
    if picture is not None:
        print(f"picture written to {picture}")
    return 0


def cmd_similar(args) -> int:
    run = load_run_from_args(args)
    similar = run.similar(args.item, k=args.k) if args.mode in ("similar", "both") else None
    bundles = run.bundles(args.item, k=args.k, min_support=args.min_support) if args.mode in ("bundle", "both") else None
    if args.output_format == "json":
        out = {"item": args.item, "label": run.item_label(args.item)}
        if similar is not None:
            out["similar"] = _records(similar)
        if bundles is not None:
            out["bundles"] = _records(bundles)
        _print_json(out)
        return 0
    print(f"item {args.item} {run.item_label(args.item) or ''}")
    if similar is not None:
        _print_items(similar, "more like this (embedding cosine):")
    if bundles is not None:
        _print_items(bundles, f"often taken together (lift, >= {args.min_support} users):", score="lift")
    return 0


def cmd_add_items(args) -> int:
    run = load_run_from_args(args)
    cold = run.add_items(
        [Path(p) for p in args.rdf], items=_ids(args.items), item_iri=args.item_iri,
        save=not args.dry_run, id_init=args.id_init, replace=args.force, encoder=_text_encoder(run, args),
    )  # fmt: skip
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


def _text_encoder(run, args):
    """``--text-model``: another encoder for the new texts (a student of the run's, usually);
    None: the run's own ``[text] model``."""
    if not getattr(args, "text_model", None):
        return None
    from kgrec.text.encoder import TextEncoder

    encoder = TextEncoder(args.text_model, device=str(run.device), max_length=run.config.text.max_length)
    width = run.trained_graph.feature_dim
    if width and encoder.dim != width:
        raise KgrecError(f"--text-model {args.text_model!r} makes {encoder.dim}-dimensional vectors; the run was trained on {width}")
    return encoder


def cmd_new_user(args) -> int:
    if bool(args.text) == bool(args.liked):
        raise KgrecError("give either --text PROFILE or --liked ITEM,ITEM,...")
    run = load_run_from_args(args)
    if args.text:
        recs = run.recommend_for_text(args.text, k=args.k, encoder=_text_encoder(run, args))
        title = f"top {args.k} for a new user: {args.text!r}"
    else:
        recs = run.recommend_for_items(_ids(args.liked), k=args.k, method=args.method)
        title = f"top {args.k} for a new user who liked {args.liked}"
    if args.output_format == "json":
        _print_json({"text": args.text, "liked": _ids(args.liked), "recommendations": _records(recs)})
    else:
        _print_items(recs, title)
    return 0


def cmd_cold_start(args) -> int:
    from kgrec.bench.coldstart import run_cold_start
    from kgrec.experiment import load_experiment

    config = load_experiment(Path(args.config) if args.config else None)
    if args.device:
        config.train.device = args.device
    parts = tuple(args.parts.split(",")) if args.parts else ("items", "users")
    student = None
    if args.student:
        from kgrec.text.encoder import TextEncoder

        student = TextEncoder(args.student, max_length=config.text.max_length)
    result = run_cold_start(
        Path(args.graph), config, Path(args.out), fraction=args.fraction, seed=args.seed, parts=parts, student=student,
        force=args.force, resume=args.resume,
    )  # fmt: skip
    d = result.details
    if result.items:
        i = d["items"]
        print(f"cold items: {i['cold_items']} of {i['catalogue']} held out ({i['held_out_interactions']:,} interactions)")
        for setting in ("cold_only", "warm_only", "hybrid"):
            cols = ["recall@20", "ndcg@20"] + (["cold recall@20", "cold ndcg@20", "cold share@20"] if setting == "hybrid" else [])
            print(f"{setting}:")
            print(result.format("items", setting, cols))
    if result.users:
        u = d["users"]
        print(f"cold users: {u['users_evaluated']} held out; first {u['revealed_at_most']} interactions revealed ({u['order']})")
        for setting in result.users:
            print(f"{setting}:")
            print(result.format("users", setting, ["recall@20", "ndcg@20"]))
    print(f"written to {Path(args.out) / 'results.json'} and results.md")
    return 0


# --------------------------------------------------------------------------- parser
def register(sub: argparse._SubParsersAction) -> None:
    """Add the analysis subcommands to the ``kgrec`` parser's subparsers."""
    p = sub.add_parser(
        "explain", help="knowledge-graph paths that explain a user's recommendations",
        description="The best paths in the training graph from a user to each recommended item "
        "(through shared entities, other users, or item-item relations), each edge scored by the "
        "cosine of its endpoints' trained embeddings; printed, and drawn as a PNG.",
    )  # fmt: skip
    add_run_options(p)
    p.add_argument("--user", required=True, help="the user's original id")
    p.add_argument("--item", help="explain this item (default: the user's top --k recommendations)")
    add_k(p, 3, "recommendations to explain")
    p.add_argument("--paths", type=at_least_one, default=3, help="paths per item")
    p.add_argument("--png", help="picture file (default: RUN/explanations/user_USER.png)")
    p.add_argument("--no-png", action="store_true", help="text only, no picture")
    add_output_format(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "similar", help="items like an item (embeddings) and items taken with it (lift)",
        description="'More like this' by the cosine of trained item embeddings, and 'often taken "
        "together' by co-interaction lift over the training interactions.",
    )  # fmt: skip
    add_run_options(p)
    p.add_argument("--item", required=True, help="the item's original id")
    add_k(p, 10, "items per list")
    p.add_argument("--mode", choices=["similar", "bundle", "both"], default="both", help="which list(s)")
    p.add_argument("--min-support", type=at_least_one, default=2, help="bundles: least number of users who took both")
    add_output_format(p)
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser(
        "add-items", help="embed new items from RDF (description + triples) without retraining",
        description="Read RDF about new items as the graph's own RDF was read, link them to the "
        "entities the graph has, embed them with the trained model and save them in "
        "RUN/added_items/: every command on the run ranks them from then on.",
    )  # fmt: skip
    add_run_options(p)
    p.add_argument("--rdf", action="append", required=True, metavar="FILE", help="RDF about the new items (repeatable)")
    p.add_argument("--items", help="comma-separated ids of the items to add (default: every new described resource)")
    p.add_argument("--item-iri", metavar="TEMPLATE", help="item IRI template, e.g. 'http://example.org/item/{id}' (default: the graph's rule)")
    p.add_argument("--id-init", choices=["mean", "zero"], default="mean", help="ID part of a new item's input")
    p.add_argument("--users", help="show these users' top --k with the new items (comma-separated ids)")
    add_k(p, 10, "with --users, items per user")
    p.add_argument("--show", type=int, default=3, help="new items whose closest trained items are printed")
    p.add_argument("--dry-run", action="store_true", help="embed and print, save nothing")
    p.add_argument("--force", action="store_true", help="replace items added earlier under the same ids")
    p.add_argument("--text-model", metavar="MODEL", help="encode the new descriptions with this model (e.g. a `kgrec text distill` student) instead of the run's")
    p.set_defaults(func=cmd_add_items)

    p = sub.add_parser(
        "new-user", help="top-K for a user the model never saw: a text profile or liked items",
        description="A new user from a few liked items (folded in as a user node) or from a text "
        "profile (matched to item descriptions by the text encoder first).",
    )  # fmt: skip
    add_run_options(p)
    p.add_argument("--text", help="a text profile, e.g. 'dark science fiction with a great soundtrack'")
    p.add_argument("--liked", help="comma-separated ids of liked items")
    p.add_argument("--method", choices=["fold-in", "mean"], default="fold-in", help="with --liked: a new user node, or the mean of the items")
    p.add_argument("--text-model", metavar="MODEL", help="with --text: encode the profile with this model (e.g. a `kgrec text distill` student)")
    add_k(p, 10, "items to recommend")
    add_output_format(p)
    p.set_defaults(func=cmd_new_user)

    p = sub.add_parser(
        "cold-start", help="the cold-start protocols: held-out items and users, against baselines",
        description="Items: hold out a fraction of the items with all their interactions, train on the rest, "
        "add them back from their text and RDF only, and rank them among themselves (cold_only), the warm "
        "test among warm items (warm_only) and everything in the whole catalogue (hybrid). Users: hold out a "
        "fraction of the users, train on the rest, and serve them from 0 (a text profile), 1, 3 or 5 "
        "revealed interactions. Against text and popularity baselines; OUT/results.json and results.md.",
    )  # fmt: skip
    p.add_argument("--graph", required=True, help="a graph folder written by `kgrec build`")
    p.add_argument("--config", help="experiment config (default: kgrec's defaults)")
    p.add_argument("--out", required=True, help="work folder (warm graphs and runs, results.json, results.md)")
    p.add_argument("--parts", help="items, users or items,users (default: both)")
    p.add_argument("--student", metavar="MODEL", help="also rank the cold items with their texts encoded by this model (a `kgrec text distill` student)")
    p.add_argument("--fraction", type=float, default=0.1, help="share of the items held out")
    p.add_argument("--seed", type=int, default=2024, help="seed of the held-out draw")
    add_device(p, default=None, what="override train.device")
    add_force(p, "work folder")
    p.add_argument("--resume", action="store_true", help="reuse the warm runs of an earlier call with the same graph, config, fraction and seed")
    p.set_defaults(func=cmd_cold_start)
