import time

import pytest
from rdflib import Graph, Literal, Namespace

from kgrec.config import RdfSource
from kgrec.errors import KgrecError
from kgrec.ingest.matching import match_items, read_link_file, resource_iris

EX = Namespace("http://example.org/")


@pytest.fixture
def graph() -> Graph:
    g = Graph()
    g.add((EX["film/1"], EX.director, EX["person/ann"]))
    g.add((EX["film/2"], EX.title, Literal("Two")))
    g.add((EX["thing#3"], EX.title, Literal("Three")))
    g.add((EX["person/ann"], EX.likes, EX["film/a%20b"]))
    return g


def test_resource_iris_are_subjects_and_iri_objects(graph):
    expected = {EX["film/1"], EX["film/2"], EX["thing#3"], EX["person/ann"], EX["film/a%20b"]}
    assert resource_iris(graph) == {str(iri) for iri in expected}


def test_default_matches_iri_tail_after_slash_or_hash(graph):
    matches = match_items(["1", "2", "3", "9", "a b"], graph, RdfSource())
    assert matches == {
        "1": str(EX["film/1"]),
        "2": str(EX["film/2"]),
        "3": str(EX["thing#3"]),
        "9": None,
        "a b": str(EX["film/a%20b"]),  # percent-encoded spelling
    }


def test_default_matching_refuses_ambiguous_items(graph):
    graph.add((EX["genre/1"], EX.name, Literal("one")))
    with pytest.raises(KgrecError) as e:
        match_items(["1"], graph, RdfSource())
    message = str(e.value)
    assert "'1'" in message and str(EX["film/1"]) in message and str(EX["genre/1"]) in message
    assert "--item-iri" in message and "--link" in message


def test_ids_with_a_slash_match_by_scanning(graph):
    graph.add((EX["cat/x/7"], EX.name, Literal("x")))
    assert match_items(["x/7"], graph, RdfSource()) == {"x/7": str(EX["cat/x/7"])}


def test_template_requires_the_iri_to_exist(graph):
    rdf = RdfSource(item_iri="http://example.org/film/{id}")
    assert match_items(["1", "2", "3"], graph, rdf) == {
        "1": str(EX["film/1"]),
        "2": str(EX["film/2"]),
        "3": None,
    }


def test_template_without_placeholder_is_an_error(graph):
    with pytest.raises(KgrecError, match="placeholder"):
        match_items(["1"], graph, RdfSource(item_iri="http://example.org/film/"))


def test_users_match_by_their_template_only(graph):
    graph.add((EX["user/7"], EX.age, Literal(30)))
    rdf = RdfSource(user_iri="http://example.org/user/{id}")
    assert match_items(["7", "8"], graph, rdf, kind="user") == {"7": str(EX["user/7"]), "8": None}
    assert match_items(["7"], graph, RdfSource(), kind="user") == {}


@pytest.mark.parametrize(
    "name, text",
    [
        ("links.csv", "item,iri\n1,http://example.org/thing#3\n2,http://example.org/film/2\n"),
        ("links.csv", "1,http://example.org/thing#3\n2,http://example.org/film/2\n\n"),
        ("links.tsv", "item\tiri\n1\thttp://example.org/thing#3\n2\thttp://example.org/film/2\n"),
        ("links.txt", "1\thttp://example.org/thing#3\n2\thttp://example.org/film/2\n"),
    ],
)
def test_link_file_with_or_without_header(graph, write, tmp_path, name, text):
    write(name, text + "5,http://example.org/film/5\n".replace(",", "\t" if "\t" in text else ","))
    matches = match_items(["1", "2", "5", "6"], graph, RdfSource(link=name), tmp_path)
    assert matches == {"1": str(EX["thing#3"]), "2": str(EX["film/2"]), "5": None, "6": None}


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("item,iri\n1,http://e/1\n2\n", 3, "expected 2 fields"),
        ("1,http://e/1\n2,not an iri\n", 2, "invalid IRI"),
        ("1,http://e/1\n2,http://e/{2}\n", 2, "invalid IRI"),
        ("1,http://e/1\n,http://e/2\n", 2, "empty item id"),
        ("1,http://e/1\n1,http://e/2\n", 2, "linked to two IRIs"),
    ],
)
def test_bad_link_lines_name_the_line(write, text, line, what):
    path = write("links.csv", text)
    with pytest.raises(KgrecError) as e:
        read_link_file(path)
    assert f"links.csv, line {line}:" in str(e.value) and what in str(e.value)


def test_suffix_index_is_fast_for_many_items_and_resources():
    resources = {f"http://example.org/r/{i}" for i in range(200_000)}
    items = [str(i) for i in range(0, 400_000, 4)]
    start = time.perf_counter()
    matches = match_items(items, resources, RdfSource())
    assert time.perf_counter() - start < 5  # a scan per item would take minutes
    assert sum(v is not None for v in matches.values()) == 50_000
