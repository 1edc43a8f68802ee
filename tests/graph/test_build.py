import torch

from kgrec.graph.build import build_graph, relation_name


def test_nodes_and_types(tiny_tables):
    kg = build_graph(tiny_tables, name="tiny")
    assert kg.num_users == 4 and kg.num_items == 5
    assert kg.node_types == ["user", "item", "Genre", "entity"]
    assert sorted(kg.nodes["Genre"]["id"]) == ["http://example.org/genre/comedy", "http://example.org/genre/drama"]
    assert kg.nodes["entity"]["id"].tolist() == ["http://example.org/person/ann"]
    # ids kept in order of first appearance, so rebuilding gives the same indices
    assert kg.nodes["user"]["id"].tolist() == ["u1", "u2", "u3", "u4"]
    assert kg.nodes["item"]["label"].tolist()[0] == "One"
    assert kg.nodes["item"]["text"].tolist()[0] == "A comedy about one thing."
    assert kg.nodes["item"]["text"].tolist()[2] is None


def test_behaviours_are_separate_edge_types_with_reverses(tiny_tables):
    kg = build_graph(tiny_tables)
    assert kg.behaviours == ["buy", "click"]
    click = kg.data["user", "click", "item"].edge_index
    assert click.size(1) == 6
    assert torch.equal(kg.data["item", "rev_click", "user"].edge_index, click.flip(0))
    assert kg.data["user", "buy", "item"].edge_index.size(1) == 3


def test_knowledge_edges_by_predicate(tiny_tables):
    kg = build_graph(tiny_tables)
    assert kg.relations["genre"] == "http://schema.org/genre"
    assert kg.data["item", "genre", "Genre"].edge_index.size(1) == 3
    assert kg.data["item", "director", "entity"].edge_index.size(1) == 2
    assert kg.data["Genre", "broader", "Genre"].edge_index.size(1) == 1
    assert ("Genre", "rev_genre", "item") in kg.data.edge_types
    forward = kg.knowledge_edge_types()
    assert all(not et[1].startswith("rev_") for et in forward) and len(forward) == 3


def test_relation_names_are_safe():
    assert relation_name("http://schema.org/genre") == "genre"
    assert relation_name("http://example.org/vocab#has-part") == "has_part"
    assert relation_name("http://rdf.freebase.com/ns/film.film.actor") == "film_film_actor"
    assert relation_name("urn:x:123") == "r_123"


def test_manifest_records_counts(tiny_tables):
    kg = build_graph(tiny_tables, name="tiny")
    assert kg.manifest["name"] == "tiny"
    assert kg.manifest["node_counts"]["item"] == 5
    assert kg.manifest["format_version"] >= 1
