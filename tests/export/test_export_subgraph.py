"""Export tables and subgraph filters: node identities, closed edge sets, run outputs."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.errors import KgrecError
from kgrec.export.subgraph import (
    BEHAVIOUR,
    KNOWLEDGE,
    RECOMMENDATION,
    SubgraphFilter,
    export_tables,
    looks_like_iri,
    node_iris,
    safe_iri,
)


def test_full_export_has_every_node_and_forward_edge(export_kg):
    t = export_tables(export_kg)
    assert t.num_nodes == export_kg.num_nodes
    knowledge = sum(export_kg.data[et].edge_index.size(1) for et in export_kg.knowledge_edge_types())
    assert (t.edges["kind"] == BEHAVIOUR).sum() == len(export_kg.interactions)
    assert (t.edges["kind"] == KNOWLEDGE).sum() == knowledge
    assert t.num_edges == len(export_kg.interactions) + knowledge
    assert t.nodes["key"].is_unique
    assert {"user:1", "item:1"} <= set(t.nodes["key"])  # same original id, different nodes
    assert t.embeddings is None and not (t.edges["kind"] == RECOMMENDATION).any()


def test_iris_keep_original_entity_iris_and_name_the_rest():
    import pandas as pd

    ids = pd.Series(["http://example.org/person/ann", "42", "http://example.org/a b"])
    got = node_iris("Person", ids).tolist()
    assert got[0] == "http://example.org/person/ann"
    assert got[1] == "https://kgrec.org/ns/entity/Person/42"
    assert got[2] == "http://example.org/a%20b"
    assert node_iris("user", pd.Series(["a/b c"])).tolist() == ["https://kgrec.org/ns/user/a%2Fb%20c"]
    stored = pd.Series(["http://example.org/item/7"])
    assert node_iris("item", pd.Series(["7"]), stored).tolist() == ["http://example.org/item/7"]
    assert looks_like_iri("urn:x:y") and not looks_like_iri("42") and not looks_like_iri("m.0abc")
    assert safe_iri('http://x/<a>"b"') == "http://x/%3Ca%3E%22b%22"


def test_node_type_filter_keeps_only_edges_between_kept_nodes(export_kg):
    t = export_tables(export_kg, SubgraphFilter(node_types=["item", "Genre"]))
    assert set(t.nodes["type"]) == {"item", "Genre"}
    assert set(t.edges["relation"]) == {"genre", "broader", "sequel"}
    assert t.edges["source"].max() < t.num_nodes and t.edges["target"].max() < t.num_nodes


def test_user_neighbourhood_by_hops(export_kg):
    one = export_tables(export_kg, SubgraphFilter(user="1", hops=1))
    items_of_user_1 = set(export_kg.interactions.loc[export_kg.interactions["user"] == export_kg.user_index["1"], "item"])
    assert set(one.nodes["key"]) == {"user:1"} | {f"item:{export_kg.nodes['item']['id'][i]}" for i in items_of_user_1}
    two = export_tables(export_kg, SubgraphFilter(user="1", hops=2))
    assert set(one.nodes["key"]) < set(two.nodes["key"])
    assert "Genre" in set(two.nodes["type"]) and (two.nodes["type"] == "user").sum() > 1
    zero = export_tables(export_kg, SubgraphFilter(user="1", hops=0))
    assert zero.nodes["key"].tolist() == ["user:1"] and zero.num_edges == 0


def test_max_nodes_keeps_the_nearest_then_best_connected(export_kg):
    t = export_tables(export_kg, SubgraphFilter(user="1", hops=3, max_nodes=5))
    assert t.num_nodes == 5 and "user:1" in set(t.nodes["key"])
    full = export_tables(export_kg)
    degree = np.bincount(np.concatenate([full.edges["source"], full.edges["target"]]), minlength=full.num_nodes)
    degree_of = dict(zip(full.nodes["key"], degree))
    top = export_tables(export_kg, SubgraphFilter(max_nodes=3))
    assert top.num_nodes == 3
    assert min(degree_of[k] for k in top.nodes["key"]) >= sorted(degree)[-3]


@pytest.mark.parametrize(
    "flt, message",
    [
        (SubgraphFilter(node_types=["Movie"]), "unknown node type"),
        (SubgraphFilter(user="nobody"), "unknown user id"),
        (SubgraphFilter(user="1", node_types=["item"]), "user node type"),
        (SubgraphFilter(max_nodes=0), "max-nodes"),
    ],
)
def test_bad_filters_are_user_errors(export_kg, flt, message):
    with pytest.raises(KgrecError, match=message):
        export_tables(export_kg, flt)


def test_run_adds_embeddings_and_top_k_edges(export_kg, export_run):
    t = export_tables(export_kg, run=export_run, k=3)
    has = t.has_embedding()
    assert has[t.nodes["type"].isin(["user", "item"]).to_numpy()].all()
    assert not has[~t.nodes["type"].isin(["user", "item"]).to_numpy()].any()
    recs = t.edges[t.edges["kind"] == RECOMMENDATION]
    assert len(recs) == 3 * export_kg.num_users
    assert recs["rank"].between(1, 3).all() and recs["score"].notna().all()
    expected = export_run.recommend(None, k=3)
    keys = t.nodes["key"].to_numpy()
    got = list(zip(keys[recs["source"]], keys[recs["target"]], recs["rank"].astype(int)))
    assert got == [(f"user:{u}", f"item:{i}", r) for u, i, r in zip(expected["user"], expected["item"], expected["rank"])]


def test_recommended_items_join_a_user_neighbourhood(export_kg, export_run):
    t = export_tables(export_kg, SubgraphFilter(user="2", hops=0), run=export_run, k=2)
    recs = t.edges[t.edges["kind"] == RECOMMENDATION]
    assert len(recs) == 2 and t.num_nodes == 3  # the user and its two recommended items
    assert set(t.nodes["type"]) == {"user", "item"}
