import pytest

from kgrec.config import GraphSpec, InteractionSource, RdfSource, load_graph_spec
from kgrec.errors import KgrecError
from kgrec.ingest import ingest
from kgrec.ingest.sources import SourceTables

LOG = "user,item,rating\nu1,1,5\nu1,2,4\nu2,1,3\nu2,3,5\n"
TTL = """@prefix ex: <http://example.org/> .
@prefix film: <http://example.org/film/> .
@prefix person: <http://example.org/person/> .
@prefix schema: <http://schema.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
film:1 a schema:Movie ; ex:director person:ann ; rdfs:label "Heat"@en ;
    schema:description "A crime film." ; ex:year 1995 .
film:2 a schema:Movie ; ex:director person:ann .
person:ann a schema:Person ; schema:name "Ann" .
<http://example.org/user/u1> ex:livesIn <http://example.org/place/paris> .
"""


@pytest.fixture
def spec(write, tmp_path) -> GraphSpec:
    write("log.csv", LOG)
    write("kg.ttl", TTL)
    return GraphSpec(
        name="tiny",
        interactions=InteractionSource(path="log.csv"),
        rdf=RdfSource(paths=["kg.ttl"], item_iri="http://example.org/film/{id}"),
        base_dir=str(tmp_path),
    )


def test_ingest_reads_matches_and_extracts(spec, tmp_path):
    tables = ingest(spec)
    assert isinstance(tables, SourceTables)
    assert len(tables.interactions) == 4
    assert tables.item_nodes == {
        "1": "http://example.org/film/1",
        "2": "http://example.org/film/2",
        "3": None,
    }
    assert set(map(tuple, tables.triples.values.tolist())) == {
        ("http://example.org/film/1", "http://example.org/director", "http://example.org/person/ann"),
        ("http://example.org/film/2", "http://example.org/director", "http://example.org/person/ann"),
        ("http://example.org/user/u1", "http://example.org/livesIn", "http://example.org/place/paris"),
    }
    texts = {r["node"]: (r["label"], r["description"]) for r in tables.texts.to_dict("records")}
    assert texts["http://example.org/film/1"] == ("Heat", "A crime film.")
    # node types are for entities only: the films are items
    assert tables.node_types == {"http://example.org/person/ann": "Person"}
    assert tables.user_nodes == {}
    assert tables.inputs == {"interactions": [str(tmp_path / "log.csv")], "rdf": [str(tmp_path / "kg.ttl")]}
    counts = tables.report.counts
    assert counts["items"]["items matched to RDF"] == 2 and counts["items"]["items without RDF"] == 1
    assert counts["interactions"]["kept"] == 4
    assert counts["rdf"]["dropped: literal attribute (not an edge)"] == 1
    assert "2 of 3 items matched" in tables.report.format()


def test_users_are_matched_through_user_iri(spec):
    spec.rdf.user_iri = "http://example.org/user/{id}"
    tables = ingest(spec)
    assert tables.user_nodes == {"u1": "http://example.org/user/u1"}


def test_default_matching_by_iri_tail(spec):
    spec.rdf.item_iri = None
    tables = ingest(spec)
    assert tables.item_nodes["1"] == "http://example.org/film/1"


def test_link_file_is_recorded_as_input(spec, write, tmp_path):
    write("links.csv", "item,iri\n1,http://example.org/film/2\n")
    spec.rdf.item_iri = None
    spec.rdf.link = "links.csv"
    tables = ingest(spec)
    assert tables.item_nodes == {"1": "http://example.org/film/2", "2": None, "3": None}
    assert tables.inputs["link"] == [str(tmp_path / "links.csv")]


def test_rdf_sharing_no_item_is_an_error_naming_the_options(spec):
    spec.rdf.item_iri = "http://example.org/movie/{id}"
    with pytest.raises(KgrecError) as e:
        ingest(spec)
    assert "share no item" in str(e.value) and "--item-iri" in str(e.value)
    spec.rdf.item_iri = None
    spec.rdf.paths = ["other.ttl"]
    (spec.resolve("other.ttl")).write_text(
        "<http://example.org/x/a> <http://example.org/p> <http://example.org/x/b> .\n"
    )
    with pytest.raises(KgrecError, match=r"share no item.*--item-iri.*--link"):
        ingest(spec)


def test_without_rdf_every_item_is_unmatched(spec):
    spec.rdf = RdfSource()
    tables = ingest(spec)
    assert set(tables.item_nodes.values()) == {None} and tables.triples.empty and tables.texts.empty


def test_spec_file_paths_resolve_against_its_folder(write, tmp_path):
    write("data/log.csv", LOG)
    write("data/kg.ttl", TTL)
    path = write(
        "specs/tiny.toml",
        '[interactions]\npath = "../data/log.csv"\nrating_threshold = 4.0\n\n'
        '[rdf]\npaths = ["../data/kg.ttl"]\nitem_iri = "http://example.org/film/{id}"\n',
    )
    tables = ingest(load_graph_spec(path))
    assert tables.interactions["item"].tolist() == ["1", "2", "3"]
    assert tables.report.counts["interactions"]["dropped: below rating threshold"] == 1


def test_lenient_flag_reaches_the_log_reader(spec, write):
    write("log.csv", LOG + "u3,4,bad\n")
    with pytest.raises(KgrecError, match="line 6: non-numeric rating"):
        ingest(spec)
    spec.lenient = True
    assert ingest(spec).report.counts["interactions"]["dropped: non-numeric rating"] == 1
