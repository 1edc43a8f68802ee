"""SPARQL over a kgrec graph, through rdflib.

The graph (and, with a run, its recommendations) is turned into the same RDF as
``kgrec export --format turtle`` writes (:mod:`kgrec.export.rdf_export`), loaded into an
in-memory rdflib graph, and queried. The kgrec prefixes (``kgrec:``, ``user:``, ``item:``,
``behaviour:``, ``type:``, ``run:``) and ``rdf:``, ``rdfs:``, ``xsd:``, ``schema:`` are
predeclared, so a query need not repeat them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rdflib import BNode, Graph, Literal
from rdflib.plugins.sparql import prepareQuery
from rdflib.plugins.sparql.parserutils import CompValue

from kgrec.errors import KgrecError
from kgrec.export.rdf_export import PREFIXES, to_rdflib, triple_table
from kgrec.export.subgraph import ExportTables


@dataclass
class QueryResult:
    """What a query returned: a table (SELECT), a truth value (ASK) or a graph (CONSTRUCT, DESCRIBE)."""

    kind: str
    table: pd.DataFrame | None = None
    answer: bool | None = None
    graph: Graph | None = None


def rdf_graph(tables: ExportTables) -> Graph:
    """The export tables as an rdflib graph, prefixes bound."""
    return to_rdflib(triple_table(tables))


def _cell(term) -> object:
    if term is None:
        return None
    if isinstance(term, Literal):
        value = term.toPython()
        return value if isinstance(value, (int, float, bool, str)) else str(term)
    if isinstance(term, BNode):
        return f"_:{term}"
    return str(term)


def _parts(node) -> set[str]:
    """Names of every algebra node in a prepared query."""
    if isinstance(node, CompValue):
        return {node.name}.union(*(_parts(v) for v in node.values()))
    if isinstance(node, (list, tuple)):
        return set().union(*(_parts(v) for v in node))
    return set()


def run_query(g: Graph, query: str) -> QueryResult:
    """Run a SPARQL query over ``g``; a bad query is reported as a :class:`KgrecError`.

    Queries never reach the network: ``SERVICE`` (federated queries) and ``FROM`` /
    ``FROM NAMED`` (which rdflib may try to fetch) are refused before evaluation.
    """
    try:
        prepared = prepareQuery(query, initNs=PREFIXES)
    except Exception as e:  # pyparsing raises its own exception types
        raise KgrecError(f"SPARQL syntax error: {e}") from None
    parts = _parts(prepared.algebra)
    if "ServiceGraphPattern" in parts or "DatasetClause" in parts:
        raise KgrecError("SERVICE, FROM and FROM NAMED are not supported: kgrec queries the local graph only")
    try:
        result = g.query(prepared)
    except Exception as e:  # evaluation errors (unknown functions, bad casts...) are the query's fault
        raise KgrecError(f"SPARQL query failed: {type(e).__name__}: {e}") from None
    if result.type == "SELECT":
        columns = [str(v) for v in result.vars]
        rows = [[_cell(row[i]) for i in range(len(columns))] for row in result]
        return QueryResult("SELECT", table=pd.DataFrame(rows, columns=columns))
    if result.type == "ASK":
        return QueryResult("ASK", answer=bool(result.askAnswer))
    out = result.graph if result.graph is not None else Graph()
    for prefix, ns in PREFIXES.items():
        out.bind(prefix, ns, override=True, replace=True)
    return QueryResult(result.type, graph=out)
