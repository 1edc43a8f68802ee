"""The RDF a graph was built from comes back out of its RDF export (issue 13).

What is intentionally not kept is listed in docs/vocabulary.md ("What the export leaves out")
and checked at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import rdflib

from kgrec.cli.main import main
from kgrec.export import export_tables, write_export
from kgrec.graph.build import build_graph
from kgrec.ingest import ingest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_kg():
    from kgrec.config import load_graph_spec

    return build_graph(ingest(load_graph_spec(ROOT / "graphs" / "demo.toml")), name="demo")


@pytest.mark.parametrize("fmt,suffix,parse_as", [("turtle", "ttl", "turtle"), ("ntriples", "nt", "nt"), ("jsonld", "jsonld", "json-ld")])
def test_every_original_triple_about_items_and_entities_comes_back(demo_kg, tmp_path, fmt, suffix, parse_as):
    original = rdflib.Graph().parse(ROOT / "data" / "demo" / "items.ttl")
    out = tmp_path / f"demo.{suffix}"
    write_export(export_tables(demo_kg), fmt, out)
    exported = rdflib.Graph().parse(out, format=parse_as)
    missing = [t for t in original if t not in exported]
    assert not missing, f"{len(missing)} of {len(original)} original triples lost, e.g. {missing[:3]}"
    # what the catalogue says comes back as it said it: classes, language tags, plain dates
    movie = rdflib.URIRef("http://example.org/kgrec-demo/item/m001")
    assert (movie, rdflib.RDF.type, rdflib.URIRef("http://schema.org/Movie")) in exported
    assert (movie, rdflib.RDFS.label, rdflib.Literal("The Golden Stagecoach", lang="en")) in exported
    assert (movie, rdflib.URIRef("http://schema.org/datePublished"), rdflib.Literal("2013")) in exported
    # kgrec's vocabulary beside it, and no second, untagged copy of the label
    assert (movie, rdflib.RDF.type, rdflib.URIRef("https://kgrec.org/ns#Item")) in exported
    assert (movie, rdflib.RDFS.label, rdflib.Literal("The Golden Stagecoach")) not in exported


def test_sparql_counts_the_films_by_their_own_class(tmp_path, capsys):
    graph = tmp_path / "demo"
    assert main(["build", "--spec", str(ROOT / "graphs" / "demo.toml"), "--out", str(graph)]) == 0
    capsys.readouterr()
    films = sum(1 for _ in rdflib.Graph().parse(ROOT / "data" / "demo" / "items.ttl").subjects(rdflib.RDF.type, rdflib.URIRef("http://schema.org/Movie")))
    assert main(["sparql", "--graph", str(graph), "SELECT (COUNT(?x) AS ?n) WHERE { ?x a schema:Movie }"]) == 0
    assert capsys.readouterr().out.split() == ["n", str(films)]


def test_what_is_left_out_is_what_the_vocabulary_says(tmp_path):
    """Blank nodes, ignored predicates and resources that are no node of the graph."""
    from kgrec.config import GraphSpec, InteractionSource, RdfSource

    (tmp_path / "log.csv").write_text("user,item\nu1,i1\nu2,i2\n")
    (tmp_path / "kb.ttl").write_text(
        "@prefix ex: <http://example.org/> .\n@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
        'ex:i1 ex:title "Eins"@de, "One"@en ; ex:year "1999"^^xsd:gYear ; ex:runtime 93 ; a ex:Film ; ex:genre ex:g .\n'
        'ex:i2 ex:award [ ex:name "a blank node" ] ; ex:secret "ignored" ; ex:genre ex:g .\n'
        'ex:g a ex:Genre ; ex:name "Drama"@en .\n'
        'ex:i9 ex:title "not in the log" .\n'
    )
    spec = GraphSpec(
        name="t", interactions=InteractionSource(path=str(tmp_path / "log.csv")),
        rdf=RdfSource(paths=[str(tmp_path / "kb.ttl")], ignore_predicates=["http://example.org/secret"]),
    )  # fmt: skip
    out = tmp_path / "t.nt"
    write_export(export_tables(build_graph(ingest(spec))), "ntriples", out)
    exported = rdflib.Graph().parse(out, format="nt")
    ex = rdflib.Namespace("http://example.org/")
    kept = [
        (ex.i1, ex.title, rdflib.Literal("Eins", lang="de")),
        (ex.i1, ex.title, rdflib.Literal("One", lang="en")),
        (ex.i1, ex.year, rdflib.Literal("1999", datatype=rdflib.XSD.gYear)),
        (ex.i1, ex.runtime, rdflib.Literal(93)),
        (ex.i1, rdflib.RDF.type, ex.Film),
        (ex.g, rdflib.RDF.type, ex.Genre),
        (ex.g, ex.name, rdflib.Literal("Drama", lang="en")),
        (ex.i2, ex.genre, ex.g),
    ]
    for t in kept:
        assert t in exported, t
    said = {(s, p) for s, p, _ in exported}
    assert (ex.i2, ex.award) not in said  # a blank node
    assert (ex.i2, ex.secret) not in said  # an ignored predicate
    assert (ex.i9, ex.title) not in said  # not a node of the graph: the item is in no log
