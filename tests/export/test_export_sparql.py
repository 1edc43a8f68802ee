"""SPARQL over a graph: SELECT tables, ASK, CONSTRUCT, predeclared prefixes, errors for people."""

from __future__ import annotations

import pytest

from kgrec.errors import KgrecError
from kgrec.export.sparql import rdf_graph, run_query
from kgrec.export.subgraph import export_tables


@pytest.fixture(scope="module")
def graph(export_kg):
    return rdf_graph(export_tables(export_kg))


def test_select_counts_match_the_graph(graph, export_kg, item_iri):
    result = run_query(graph, "SELECT (COUNT(?u) AS ?n) WHERE { ?u a kgrec:User }")
    assert result.kind == "SELECT" and result.table["n"].tolist() == [export_kg.num_users]
    clicks = run_query(graph, "SELECT ?i WHERE { ?u kgrec:id '1' ; behaviour:click ?i }").table
    inter = export_kg.interactions
    mine = inter[(inter["user"] == export_kg.user_index["1"]) & (inter["event"] == "click")]
    ids = export_kg.nodes["item"]["id"]
    assert set(clicks["i"]) == {item_iri(ids[i]) for i in mine["item"]}


def test_select_follows_knowledge_paths(graph):
    rows = run_query(
        graph,
        "SELECT DISTINCT ?g WHERE { user:1 ?behaviour ?item . ?item schema:genre ?g }",
    ).table
    # user 1 clicked or bought items 1, 2, 4, 7 and 10; item i has genre g{i % 3}; item 10 has no RDF
    assert set(rows["g"]) == {"http://example.org/genre/g1", "http://example.org/genre/g2"}
    labelled = run_query(graph, "SELECT ?label WHERE { ?i schema:genre ?g . ?g rdfs:label ?label } LIMIT 1").table
    assert labelled["label"].tolist() == ["Comedy"]


def test_ask_and_construct(graph):
    # item 1 is exported under the RDF resource it matched; item 10 matched none
    assert run_query(graph, "ASK { <http://example.org/item/1> rdfs:label ?l }").answer is True
    assert run_query(graph, "ASK { item:10 rdfs:label ?l }").answer is False
    built = run_query(graph, "CONSTRUCT { ?i a kgrec:Item } WHERE { ?i schema:genre ?g }")
    assert built.kind == "CONSTRUCT" and len(built.graph) == 9


def test_unbound_cells_are_none(graph):
    table = run_query(graph, "SELECT ?i ?d WHERE { ?i a kgrec:Item OPTIONAL { ?i schema:description ?d } }").table
    assert len(table) == 10 and table["d"].isna().sum() == 9


@pytest.mark.parametrize(
    "query, message",
    [
        ("SELEC ?x WHERE {}", "syntax"),
        ("SELECT ?x WHERE { ?x nope:y ?z }", "syntax"),
        ("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }", "local graph only"),
        ("SELECT * FROM <http://example.org/data.ttl> WHERE { ?s ?p ?o }", "local graph only"),
    ],
)
def test_bad_queries_are_user_errors(graph, query, message):
    with pytest.raises(KgrecError, match=message):
        run_query(graph, query)
