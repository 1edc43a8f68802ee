"""``kgrec export`` and ``kgrec sparql``: a graph (and a run's outputs) for other tools.

With ``--run``, the run object (:class:`kgrec.runs.Run`) supplies what goes along: its items
added after training, its embeddings and its top-K lists, ranked as ``kgrec recommend`` ranks.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kgrec.cli.options import add_device, add_k
from kgrec.errors import KgrecError


def _load(args):
    """The graph and, with ``--run``, the trained run (checked to belong to the graph later)."""
    from kgrec.graph.store import load_graph

    kg = load_graph(Path(args.graph))
    run = None
    if args.run:
        from kgrec.runs import load_run

        run = load_run(Path(args.run), device=args.device, graph=Path(args.graph))
        for note in run.view_notes():
            print(f"note: {note}", file=sys.stderr)
    return kg, run


def _split_types(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [t.strip() for t in value.split(",") if t.strip()]


def cmd_export(args) -> int:
    from kgrec.export import FORMATS, SubgraphFilter, export_tables, format_from_path, write_export

    fmt = args.format or format_from_path(Path(args.out))
    if fmt is None:
        raise KgrecError(f"give --format ({', '.join(FORMATS)}); the extension of {args.out} does not say")
    if args.hops != 2 and args.user is None:
        raise KgrecError("--hops needs --user (the neighbourhood's centre)")
    t0 = time.perf_counter()
    kg, run = _load(args)
    flt = SubgraphFilter(node_types=_split_types(args.node_types), user=args.user, hops=args.hops, max_nodes=args.max_nodes)
    tables = export_tables(kg, flt, run=run, k=args.k)
    what = write_export(tables, fmt, Path(args.out))
    print(f"{fmt}: {what} written to {args.out} in {time.perf_counter() - t0:.1f}s")
    return 0


def _read_query(args) -> str:
    if args.query and args.query_file:
        raise KgrecError("give a query or --query-file, not both")
    if args.query_file:
        path = Path(args.query_file)
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise KgrecError(f"cannot read the query ({e})", path=path) from None
    if not args.query:
        raise KgrecError("give a SPARQL query (quoted) or --query-file FILE")
    return args.query


def cmd_sparql(args) -> int:
    from kgrec.export import export_tables
    from kgrec.export.sparql import rdf_graph, run_query
    from kgrec.io import atomic_path

    query = _read_query(args)
    kg, run = _load(args)
    t0 = time.perf_counter()
    g = rdf_graph(export_tables(kg, run=run, k=args.k))
    loaded = time.perf_counter() - t0
    result = run_query(g, query)
    if result.kind == "ASK":
        print("true" if result.answer else "false")
    elif result.kind == "SELECT":
        table = result.table
        if args.out:
            with atomic_path(Path(args.out), ".csv") as tmp:
                table.to_csv(tmp, index=False)
            print(f"{len(table):,} rows written to {args.out}", file=sys.stderr)
        elif len(table):
            print(table.to_string(index=False, max_colwidth=args.max_width))
        else:
            print("(no rows)")
    else:
        text = result.graph.serialize(format="turtle")
        if args.out:
            with atomic_path(Path(args.out), ".ttl") as tmp:
                tmp.write_text(text, encoding="utf-8")
            print(f"{len(result.graph):,} triples written to {args.out}", file=sys.stderr)
        else:
            print(text)
    print(f"({len(g):,} triples loaded in {loaded:.1f}s, query answered in {time.perf_counter() - t0 - loaded:.1f}s)", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add ``export`` and ``sparql`` to the ``kgrec`` subcommand parsers."""
    from kgrec.export import FORMATS  # light: the writers are imported when they run

    p = subparsers.add_parser(
        "export",
        help="export a graph (and a run's embeddings and top-K lists) to GraphML, GEXF, RDF, Neo4j CSV or Parquet",
        description="Export a built graph, or part of it, for other tools. With --run, the learned "
        "embeddings (node attributes) and each user's top-K list (recommended edges with rank and "
        "score; RDF statements in the kgrec vocabulary) go along.",
    )
    p.add_argument("--graph", required=True, help="a graph folder written by `kgrec build`")
    p.add_argument("--run", help="a run folder trained on this graph: adds embeddings and recommendations")
    p.add_argument("--format", choices=list(FORMATS), help="output format (default: from the --out extension)")
    p.add_argument("--out", required=True, help="output file (graphml, gexf, turtle, ntriples, jsonld) or folder (neo4j, parquet)")
    p.add_argument("--node-types", metavar="T,T", help="export only these node types, e.g. user,item,Genre")
    p.add_argument("--user", metavar="ID", help="export only this user's neighbourhood (original user id)")
    p.add_argument("--hops", type=int, default=2, help="radius of the --user neighbourhood (default 2)")
    p.add_argument("--max-nodes", type=int, help="keep at most this many nodes (nearest to --user first, then best connected)")
    add_k(p, 10, "with --run, length of each user's top-K list")
    add_device(p, what="with --run, device for the model")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "sparql",
        help="run a SPARQL query over a graph as RDF",
        description="Query the graph as RDF (the same statements as `kgrec export --format turtle`). "
        "Prefixes kgrec:, user:, item:, behaviour:, type:, run:, rdf:, rdfs:, xsd:, schema: are predeclared.",
    )
    p.add_argument("--graph", required=True, help="a graph folder written by `kgrec build`")
    p.add_argument("query", nargs="?", help="the SPARQL query (quote it), or use --query-file")
    p.add_argument("--query-file", metavar="FILE", help="read the query from this file")
    p.add_argument("--run", help="also load a run's recommendations (kgrec:recommended, kgrec:Recommendation)")
    add_k(p, 10, "with --run, length of each user's top-K list")
    p.add_argument("--out", help="write SELECT results as CSV (CONSTRUCT/DESCRIBE results as Turtle) here")
    p.add_argument("--max-width", type=int, default=60, help="widest column printed, in characters")
    add_device(p, what="with --run, device for the model")
    p.set_defaults(func=cmd_sparql)
