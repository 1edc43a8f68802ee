import pytest
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS

from kgrec.config import RdfSource
from kgrec.ingest.knowledge import extract_knowledge, type_name
from kgrec.ingest.sources import TEXT_COLUMNS, TRIPLE_COLUMNS

EX = Namespace("http://example.org/")
SDO = Namespace("http://schema.org/")


def graph_of(*triples) -> Graph:
    graph = Graph()
    for triple in triples:
        graph.add(triple)
    return graph


def test_iri_objects_become_triples_and_other_literals_are_counted(report):
    graph = graph_of(
        (EX.film1, EX.director, EX.ann),
        (EX.film1, EX.year, Literal(1995)),
        (EX.film1, EX.genre, EX.crime),
    )
    triples, texts, types = extract_knowledge(graph, RdfSource(), report)
    assert list(triples.columns) == TRIPLE_COLUMNS
    assert sorted(map(tuple, triples.values.tolist())) == [
        (str(EX.film1), str(EX.director), str(EX.ann)),
        (str(EX.film1), str(EX.genre), str(EX.crime)),
    ]
    assert texts.empty and list(texts.columns) == TEXT_COLUMNS and types == {}
    counts = report.counts["rdf"]
    assert counts["read"] == 3 and counts["kept"] == 2
    assert counts["dropped: literal attribute (not an edge)"] == 1


def test_labels_and_descriptions_prefer_english_then_untagged(report):
    graph = graph_of(
        (EX.film1, RDFS.label, Literal("Heat", lang="en")),
        (EX.film1, RDFS.label, Literal("Hitze", lang="de")),
        (EX.film1, SDO.description, Literal("Un film", lang="fr")),
        (EX.film1, SDO.description, Literal("A crime film")),
        (EX.ann, SDO.name, Literal("Ann", lang="de")),
    )
    triples, texts, _ = extract_knowledge(graph, RdfSource(), report)
    assert triples.empty
    rows = {r["node"]: (r["label"], r["description"]) for r in texts.to_dict("records")}
    assert rows == {str(EX.film1): ("Heat", "A crime film"), str(EX.ann): ("Ann", None)}


def test_earlier_predicate_wins_among_equally_good_literals(report):
    graph = graph_of(
        (EX.film1, SDO.description, Literal("schema text")),  # DESCRIPTION_PREDICATES[0]
        (EX.film1, RDFS.comment, Literal("comment text")),  # later in the list
    )
    _, texts, _ = extract_knowledge(graph, RdfSource(), report)
    assert texts["description"].tolist() == ["schema text"]


def test_types_come_from_the_type_predicate_and_are_not_edges(report):
    graph = graph_of(
        (EX.ann, RDF.type, SDO.Person),
        (EX.ann, RDF.type, URIRef("http://dbpedia.org/ontology/Actor")),
        (EX.crime, RDF.type, URIRef("http://example.org/onto#Film-Genre")),
        (EX.film1, EX.director, EX.ann),
    )
    triples, _, types = extract_knowledge(graph, RdfSource(), report)
    assert len(triples) == 1
    assert types == {str(EX.ann): "Actor", str(EX.crime): "Film_Genre"}  # sorted-first, sanitised


def test_no_type_predicate_makes_type_statements_edges(report):
    graph = graph_of((EX.ann, RDF.type, SDO.Person))
    triples, _, types = extract_knowledge(graph, RdfSource(type_predicate=None), report)
    assert len(triples) == 1 and types == {}


def test_ignored_predicates_and_blank_nodes_are_dropped_with_counts(report):
    blank = BNode()
    graph = graph_of(
        (EX.film1, EX.sameAs, EX.other),
        (EX.film1, EX.award, blank),
        (blank, EX.year, Literal(2000)),
        (EX.film1, EX.genre, EX.crime),
    )
    triples, _, _ = extract_knowledge(graph, RdfSource(ignore_predicates=[str(EX.sameAs)]), report)
    assert triples["relation"].tolist() == [str(EX.genre)]
    assert report.counts["rdf"]["dropped: blank node"] == 2
    assert report.counts["rdf"]["dropped: ignored predicate"] == 1


@pytest.mark.parametrize(
    "iri, name",
    [
        ("http://schema.org/Movie", "Movie"),
        ("http://example.org/onto#Sci-Fi Film", "Sci_Fi_Film"),
        ("urn:type:Thing", "Thing"),
        ("http://example.org/types/item", "item"),
        ("http://example.org/Person/", "Person"),
    ],
)
def test_type_name(iri, name):
    assert type_name(iri) == name
