import pandas as pd
import torch

from kgrec.graph.build import build_graph
from kgrec.train.view import graph_events, target_pairs, training_tensors


def _pairs(g, rel_prefix=""):
    ei = g.edge_index
    return {(int(a), int(b)) for a, b in ei.T.tolist()}


def test_held_out_pairs_leave_every_behaviour(tiny_tables):
    kg = build_graph(tiny_tables)
    u1, i2 = kg.user_index["u1"], kg.item_index["i2"]
    held = pd.DataFrame({"user": [u1], "item": [i2]})
    g = training_tensors(kg, held)
    off_item = kg.num_users
    edges = _pairs(g)
    assert (u1, off_item + i2) not in edges and (off_item + i2, u1) not in edges
    full = training_tensors(kg, None)
    assert (u1, off_item + i2) in _pairs(full)
    # click and buy edges of the pair are both gone: 2 forward + 2 reverse
    assert full.edge_index.size(1) - g.edge_index.size(1) == 4


def test_layout_and_relations(tiny_tables):
    kg = build_graph(tiny_tables)
    g = training_tensors(kg, None)
    assert g.num_nodes == 4 + 5 + 2 + 1
    assert g.node_type.tolist() == [0] * 4 + [1] * 5 + [2] * 2 + [3]
    assert g.num_relations == 2 * 2 + 2 * 3
    assert g.edge_type.max().item() == g.num_relations - 1
    assert g.kg_edge_index.size(1) == 6
    # every knowledge edge connects the right node types
    heads_types = g.node_type[g.kg_edge_index[0]]
    assert set(heads_types.tolist()) <= {1, 2}


def test_without_kg(tiny_tables):
    g = training_tensors(build_graph(tiny_tables), None, use_kg=False)
    assert g.kg_edge_index.size(1) == 0
    assert g.num_relations == 4
    assert int(g.edge_index.max()) < 4 + 5


def test_target_pairs_deduplicate_behaviours(tiny_tables):
    kg = build_graph(tiny_tables)
    pairs = target_pairs(kg)
    assert len(pairs) == 8  # (u1, i2) clicked and bought counts once
    assert pairs.loc[(pairs.user == kg.user_index["u1"]) & (pairs.item == kg.item_index["i2"]), "timestamp"].item() == 2.0
    assert len(target_pairs(kg, ["buy"])) == 3


def test_leaf_entities_can_be_left_out(tiny_tables):
    kg = build_graph(tiny_tables)
    # comedy (3 edges), drama (2), ann (2): all kept at 2; at 3 only comedy's edges survive
    assert training_tensors(kg, None, kg_min_degree=2).kg_edge_index.size(1) == 6
    g = training_tensors(kg, None, kg_min_degree=3)
    genres = kg.nodes["Genre"]["id"].tolist()
    comedy = kg.node_offsets()["Genre"] + genres.index("http://example.org/genre/comedy")
    assert g.kg_edge_index.size(1) == 2
    assert set(g.kg_edge_index[1].tolist()) == {comedy}


def test_events_keep_only_the_named_behaviours_but_every_relation(tiny_tables):
    kg = build_graph(tiny_tables)
    full = training_tensors(kg, None)
    buy_only = training_tensors(kg, None, events=["buy"])
    assert buy_only.relation_names == full.relation_names  # the model sees the same relations
    click = full.relation_names.index("click")
    assert int((buy_only.edge_type == click).sum()) == 0 and int((full.edge_type == click).sum()) == 6
    buy = full.relation_names.index("buy")
    assert int((buy_only.edge_type == buy).sum()) == int((full.edge_type == buy).sum()) == 3


def test_graph_events_targets_plus_the_auxiliary_ones(tiny_tables):
    kg = build_graph(tiny_tables)
    assert graph_events(kg, None, None) is None
    assert graph_events(kg, ["buy"], None) is None  # every other behaviour stays auxiliary
    assert graph_events(kg, ["buy"], []) == ["buy"]
    assert sorted(graph_events(kg, ["buy"], ["click"])) == ["buy", "click"]
