"""RDF exports: each file parses back in rdflib with the expected triples, IRIs kept, strings escaped."""

from __future__ import annotations

import pytest
from rdflib import RDF, RDFS, Graph, Literal, URIRef
from rdflib.compare import isomorphic

from kgrec.export import write_export
from kgrec.export.rdf_export import KGREC, RDF_FORMATS, SCHEMA, to_rdflib, triple_table
from kgrec.export.subgraph import SubgraphFilter, export_tables

EX = "http://example.org/"
ODD_LABEL = 'Say "hi"\\ to\nthe caf\u00e9'
USER1 = URIRef("https://kgrec.org/ns/user/1")
ITEM1 = URIRef("http://example.org/item/1")


@pytest.fixture(scope="module")
def plain_tables(export_kg):
    return export_tables(export_kg)


@pytest.fixture(scope="module")
def expected_graph(plain_tables):
    return to_rdflib(triple_table(plain_tables))


def expected_triple_count(kg) -> int:
    """Counted from the graph itself, independently of the exporter."""
    inter = kg.interactions
    nodes = kg.num_nodes
    users_items = kg.num_users + kg.num_items
    labels = sum(int(df["label"].notna().sum()) for df in kg.nodes.values())
    texts = sum(int(df["text"].notna().sum()) for df in kg.nodes.values())
    behaviour = len(inter.drop_duplicates(["user", "item", "event"]))
    knowledge = sum(kg.data[et].edge_index.size(1) for et in kg.knowledge_edge_types())
    entity_types = len(kg.node_types) - 2
    vocabulary = 2 * entity_types + 2 * len(kg.behaviours)  # subClassOf + label; subPropertyOf + label
    return nodes + users_items + labels + texts + behaviour + knowledge + vocabulary


@pytest.mark.parametrize("fmt", list(RDF_FORMATS))
def test_each_format_parses_back_to_the_same_graph(export_kg, plain_tables, expected_graph, tmp_path, fmt):
    out = tmp_path / f"g.{fmt}"
    summary = write_export(plain_tables, fmt, out)
    g = Graph().parse(out, format=RDF_FORMATS[fmt])
    assert len(g) == expected_triple_count(export_kg)
    assert f"({len(g):,} triples)" in summary
    assert isomorphic(g, expected_graph)


def test_statements_use_original_iris_and_the_kgrec_vocabulary(expected_graph):
    g = expected_graph
    ann, g0 = URIRef(f"{EX}person/ann"), URIRef(f"{EX}genre/g0")
    assert (USER1, RDF.type, KGREC.User) in g
    assert (USER1, KGREC.id, Literal("1")) in g
    assert (ITEM1, RDF.type, KGREC.Item) in g
    assert (ITEM1, RDFS.label, Literal(ODD_LABEL)) in g
    assert (ITEM1, SCHEMA.description, Literal("First line.\nSecond line.")) in g
    assert (USER1, URIRef("https://kgrec.org/ns/behaviour/click"), URIRef("http://example.org/item/2")) in g
    assert (URIRef("https://kgrec.org/ns/behaviour/click"), RDFS.subPropertyOf, KGREC.interactedWith) in g
    assert (URIRef("http://example.org/item/2"), URIRef("http://schema.org/director"), ann) in g
    assert (g0, RDF.type, URIRef("https://kgrec.org/ns/type/Genre")) in g
    assert (URIRef("https://kgrec.org/ns/type/Genre"), RDFS.subClassOf, KGREC.Entity) in g
    assert (URIRef(f"{EX}genre/g1"), URIRef(f"{EX}vocab#broader"), g0) in g
    assert (URIRef(f"{EX}person/bob%20smith"), RDF.type, URIRef("https://kgrec.org/ns/type/entity")) in g
    assert (URIRef("https://kgrec.org/ns/entity/entity/42"), RDF.type, URIRef("https://kgrec.org/ns/type/entity")) in g


def test_recommendations_are_statements_with_rank_and_score(export_kg, export_run, tmp_path, item_iri):
    tables = export_tables(export_kg, SubgraphFilter(user="5", hops=1), run=export_run, k=3)
    out = tmp_path / "recs.ttl"
    write_export(tables, "turtle", out)
    g = Graph().parse(out, format="turtle")
    user = URIRef("https://kgrec.org/ns/user/5")
    rows = sorted(
        (int(r.rank), str(r.item), float(r.score))
        for r in g.query(
            "SELECT ?item ?rank ?score WHERE { ?r a kgrec:Recommendation ; kgrec:user ?u ; kgrec:item ?item ;"
            " kgrec:rank ?rank ; kgrec:score ?score ; kgrec:run ?run . }",
            initNs={"kgrec": KGREC},
            initBindings={"u": user},
        )
    )
    expected = export_run.recommend(["5"], k=3)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [r[1] for r in rows] == [item_iri(i) for i in expected["item"]]
    assert [r[2] for r in rows] == pytest.approx(expected["score"].tolist(), rel=1e-6)
    assert {str(o) for o in g.objects(user, KGREC.recommended)} == {r[1] for r in rows}
    vector = str(g.value(user, KGREC.embedding)).split()
    assert len(vector) == export_run.config.model.dim


def test_ntriples_lines_are_one_statement_each(plain_tables, tmp_path):
    out = tmp_path / "g.nt"
    write_export(plain_tables, "ntriples", out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert all(line.endswith(" .") and line.startswith("<") for line in lines)
    assert len(lines) == len(set(lines)) == len(Graph().parse(out, format="nt"))
    assert any(r'"Say \"hi\"\\ to\nthe caf' in line for line in lines)  # escaped, still one line
