"""``kgrec build`` (logs + RDF -> a graph folder) and ``kgrec data`` (fetch, synth)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kgrec.cli.options import add_force, at_least_one
from kgrec.errors import KgrecError


def _spec_from_args(args, spec=None):
    from kgrec.config import GraphSpec, load_graph_spec

    if spec is None:
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
    if args.rating_split is not None:
        spec.interactions.rating_split = args.rating_split
    if args.format:
        spec.interactions.format = args.format
    if args.delimiter:
        spec.interactions.delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    for mapping in args.column or []:
        field, _, column = mapping.partition("=")
        attr = f"{field}_column"
        if not column or not hasattr(spec.interactions, attr):
            raise KgrecError(f"--column expects FIELD=NAME with FIELD one of user, item, rating, timestamp, event, scene; got {mapping!r}")
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
    check_replaceable(Path(args.out), args.force)  # before any work: never overwrite a graph unasked
    if args.append:
        return _append(args, t0)
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
    save_graph(kg, Path(args.out), force=args.force)
    print(kg.summary())
    print(f"graph written to {args.out} in {time.perf_counter() - t0:.1f}s")
    return 0


def _append(args, t0: float) -> int:
    """``kgrec build --append GRAPH``: the graph grown by new rows and triples, written to ``--out``."""
    from kgrec.config import load_graph_spec
    from kgrec.graph.append import append_spec, append_tables
    from kgrec.graph.store import load_graph, save_graph
    from kgrec.ingest import ingest

    if args.recbole or args.kgat:
        raise KgrecError("--append grows a graph from an interaction log (and RDF): leave out --recbole and --kgat")
    if not args.interactions:
        raise KgrecError("--append needs the new rows: give --interactions FILE (and --rdf FILE for new items)")
    kg = load_graph(Path(args.append))
    base = load_graph_spec(Path(args.spec)) if args.spec else None
    spec = _spec_from_args(args, append_spec(kg, args.interactions, args.rdf, lenient=args.lenient, base=base))
    tables = ingest(spec)
    grown = append_tables(kg, tables, lenient=spec.lenient, rdf=spec.rdf)
    print(tables.report.format())
    save_graph(grown, Path(args.out), force=args.force)
    print(grown.summary())
    print(f"graph {args.append} grown into {args.out} in {time.perf_counter() - t0:.1f}s")
    return 0


def cmd_text_distill(args) -> int:
    from kgrec.graph.store import load_graph
    from kgrec.text.encoder import TextEncoder
    from kgrec.text.features import node_texts
    from kgrec.text.student import distill_student

    kg = load_graph(Path(args.graph))
    teacher = TextEncoder(args.teacher, cache_dir=Path(args.cache) if args.cache else None)
    texts = [t for t in node_texts(kg) if t]
    distill_student(texts, teacher, Path(args.out), epochs=args.epochs, start=args.start, force=args.force)
    return 0


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
    about = write_synth(Path(args.out), seed=args.seed, preset=args.preset, scenes=args.scenes, **counts)
    c = about["counts"]
    print(
        f"{c['users']:,} users, {c['items']:,} items, {c['interactions']:,} interactions, {c['entities']:,} entities, "
        f"{c['triples']:,} triples written to {args.out} in {about['seconds']:.1f}s\n"
        f"build it with: kgrec build --spec {Path(args.out) / 'graph.toml'} --out graphs/{Path(args.out).name}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``build`` and ``data`` to the ``kgrec`` subcommand parsers."""
    p = sub.add_parser(
        "build",
        help="build a graph from interaction logs and RDF",
        description="Read an interaction log and RDF about the items, match items to RDF resources, "
        "and write the heterogeneous graph of users, items and entities as a folder (manifest.json + Parquet).",
    )
    p.add_argument("--spec", help="graph spec (graphs/NAME.toml); command-line options override it")
    p.add_argument("--interactions", help="interaction log: CSV, TSV, Parquet or JSONL")
    p.add_argument("--format", help="format of the log when its extension does not say (csv, tsv, parquet, jsonl)")
    p.add_argument("--delimiter", help="field delimiter of a text log (e.g. ';', or 'tab')")
    p.add_argument("--column", action="append", metavar="FIELD=NAME", help="map a log column, e.g. user=customer_id (repeatable)")
    p.add_argument("--rating-threshold", type=float, help="implicit feedback: keep rows with rating >= this (default: every row)")
    p.add_argument(
        "--rating-split", type=float,
        help="two behaviours from ratings: rows with rating >= this become 'like', the other rated rows 'rated' "
        "(names: interactions.rating_events in the spec)",
    )
    p.add_argument("--rdf", action="append", metavar="FILE", help="RDF about items (repeatable)")
    p.add_argument("--rdf-format", help="rdflib format for the RDF files (default: from the extension)")
    p.add_argument("--item-iri", metavar="TEMPLATE", help="item IRI template, e.g. 'http://example.org/item/{id}'")
    p.add_argument("--link", metavar="FILE", help="CSV/TSV mapping item id -> IRI")
    p.add_argument("--user-iri", metavar="TEMPLATE", help="user IRI template for users that have RDF")
    p.add_argument("--recbole", metavar="DIR", help="import a RecBole atomic-file dataset folder (.inter/.item/.kg/.link)")
    p.add_argument("--kgat", metavar="DIR", help="import a KGAT-layout folder (train.txt, test.txt, kg_final.txt)")
    p.add_argument("--lenient", action="store_true", help="drop bad records (reported) instead of stopping")
    p.add_argument(
        "--append", metavar="GRAPH",
        help="grow this built graph instead: --interactions (and --rdf for new items) are read with its settings and "
        "added to it; the grown graph goes to --out (the old one is not changed)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output folder, e.g. graphs/NAME")
    add_force(p, "graph folder")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("data", help="public and synthetic data sets", description="Fetch a public data set, or generate one of any size.")
    dsub = p.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="fetch a data set into the local cache (e.g. ml-100k)")
    f.add_argument("name", help="the data set: ml-100k (MovieLens-100K with its Freebase KG, from the RecBole wheel), ml-100k-scenes (the same with genre-group scenes), synth-scenes (the scenes suite's synthetic data)")
    f.add_argument("--cache", default="data/cache", help="cache folder")
    f.add_argument("--force", action="store_true", help="fetch again even when it is cached")
    f.set_defaults(func=cmd_data_fetch)
    f = dsub.add_parser("synth", help="generate a synthetic data set of any size (logs + N-Triples + graph spec)")
    for count in ("users", "items", "interactions", "entities", "triples"):
        f.add_argument(f"--{count}", type=int, help=f"number of {count} (overrides the preset's)")
    f.add_argument("--preset", help="amazon-book (KGAT's Amazon-Book counts) or amazon-book-10x")
    f.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    f.add_argument(
        "--scenes", type=int, metavar="N",
        help="add a scene column of N scenes (sizes falling by a factor 3) with planted scene-specific tastes; "
        "the truth goes to OUT/truth/",
    )  # fmt: skip
    f.add_argument("--out", required=True, help="output folder, e.g. data/cache/synth-amazon-book")
    f.set_defaults(func=cmd_data_synth)

    p = sub.add_parser("text", help="text encoders: distil a light student from the transformer", description="Text encoders.")
    tsub = p.add_subparsers(dest="text_command", required=True)
    d = tsub.add_parser(
        "distill", help="train a static-embedding student to reproduce the text encoder on a graph's texts",
        description="Distil a light text encoder (static token embeddings, mean-pooled, one linear map) that "
        "reproduces the teacher's unit vectors on the graph's node texts; use it with [text] model = OUT or "
        "--text-model OUT (add-items, new-user, bench speed, cold-start --student).",
    )  # fmt: skip
    d.add_argument("--graph", required=True, help="a graph folder written by `kgrec build` (its node texts are the training set)")
    d.add_argument("--teacher", default="default", help="the text model to distil (default: the packaged all-MiniLM-L6-v2)")
    d.add_argument("--out", required=True, help="the student folder to write, e.g. data/cache/students/minilm-static")
    d.add_argument("--epochs", type=at_least_one, default=30, help="passes over the texts")
    d.add_argument("--start", choices=["outputs", "inputs"], default="outputs",
                   help="where the token vectors begin: the teacher's output for each token alone (Model2Vec's start, "
                   "default) or its input token embeddings")
    d.add_argument("--cache", default="data/cache/text", help="the teacher's encoding cache")
    add_force(d, "student folder")
    d.set_defaults(func=cmd_text_distill)
