"""The demo generator: deterministic, parseable, consistent, and learnable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from rdflib import RDF, RDFS, Graph, Namespace, URIRef

from kgrec.datasets.demo import ITEM_IRI, write_demo

SCHEMA = Namespace("http://schema.org/")
COMMITTED = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    write_demo(folder)
    interactions = pd.read_csv(folder / "interactions.csv", dtype={"user": str, "item": str, "event": str})
    graph = Graph().parse(folder / "items.ttl", format="turtle")
    return folder, interactions, graph


def test_same_seed_same_bytes_other_seed_other_data(demo, tmp_path):
    folder, _, _ = demo
    write_demo(tmp_path / "again")
    write_demo(tmp_path / "other", seed=8)
    for name in ("interactions.csv", "items.ttl"):
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes()
        assert (tmp_path / "other" / name).read_bytes() != (folder / name).read_bytes()


def test_committed_demo_is_the_generators_output(demo):
    folder, _, _ = demo
    for name in ("interactions.csv", "items.ttl"):
        assert (COMMITTED / name).read_bytes() == (folder / name).read_bytes(), (
            f"data/demo/{name} is stale: run python -m kgrec.datasets.demo data/demo"
        )


def test_interactions_table(demo):
    _, inter, _ = demo
    assert list(inter.columns) == ["user", "item", "event", "rating", "timestamp"]
    assert 8_000 <= len(inter) <= 15_000
    assert set(inter["event"]) == {"view", "click", "buy", "rate"}
    assert 250 <= inter["user"].nunique() <= 300 and 150 <= inter["item"].nunique() <= 200
    rated = inter["event"] == "rate"
    assert inter.loc[rated, "rating"].between(1, 5).all()
    assert (inter.loc[rated, "rating"] % 1 == 0).all()
    assert inter.loc[~rated, "rating"].isna().all()
    assert inter["timestamp"].is_monotonic_increasing
    assert not inter.duplicated(["user", "item", "event"]).any()


def test_every_interacted_item_is_described_in_the_rdf(demo):
    _, inter, graph = demo
    for item in inter["item"].unique():
        iri = URIRef(ITEM_IRI.format(id=item))
        assert graph.value(iri, RDFS.label) is not None, item
        assert graph.value(iri, SCHEMA.description) is not None, item
        assert graph.value(iri, SCHEMA.genre) is not None, item
        assert graph.value(iri, SCHEMA.director) is not None, item


def test_linked_entities_are_typed_and_labelled(demo):
    _, _, graph = demo
    for predicate in (SCHEMA.genre, SCHEMA.director, SCHEMA.keywords, SCHEMA.productionCompany, SCHEMA.birthPlace):
        objects = set(graph.objects(None, predicate))
        assert objects, predicate
        for entity in objects:
            assert graph.value(entity, RDF.type) is not None, entity
            assert graph.value(entity, RDFS.label) is not None, entity


def test_descriptions_mention_the_films_genre(demo):
    _, _, graph = demo
    for film, genre in graph.subject_objects(SCHEMA.genre):
        if str(film).startswith(ITEM_IRI.format(id="")):
            labels = [str(graph.value(g, RDFS.label)).lower() for g in graph.objects(film, SCHEMA.genre)]
            assert any(lab in str(graph.value(film, SCHEMA.description)) for lab in labels), film


def test_users_concentrate_on_few_genres(demo):
    """The log follows tastes: a user's top genre covers far more of their films than chance."""
    _, inter, graph = demo
    genres_of = {}
    for film, genre in graph.subject_objects(SCHEMA.genre):
        genres_of.setdefault(str(film).rsplit("/", 1)[-1], set()).add(genre)
    all_counts = Counter(g for gs in genres_of.values() for g in gs)
    baseline = max(all_counts.values()) / len(genres_of)  # the most common genre's share of films
    shares = []
    for _, films in inter.drop_duplicates(["user", "item"]).groupby("user")["item"]:
        counts = Counter(g for f in films for g in genres_of[f])
        shares.append(counts.most_common(1)[0][1] / len(films))
    assert sum(shares) / len(shares) > 2 * baseline
