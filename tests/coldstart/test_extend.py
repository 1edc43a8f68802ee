"""Adding nodes to a trained graph and propagating with the trained encoder."""

from __future__ import annotations

import pytest
import torch

from kgrec.coldstart.extend import NewEdges, extend_graph, reverse_relation
from kgrec.errors import KgrecError


def test_propagating_the_unextended_graph_reproduces_the_model(tiny_trained):
    model, g = tiny_trained.model, tiny_trained.graph
    with torch.inference_mode():
        expected, _ = model(g)
        assert torch.allclose(model.propagate(g, model.layer0(g)), expected, atol=1e-5)


def test_extend_graph_appends_nodes_and_both_edge_directions(tiny_trained):
    g = tiny_trained.graph
    item = g.num_users  # the first item
    edges = NewEdges([g.num_nodes], [item], ["click"])
    ext = extend_graph(g, torch.tensor([0]), edges)
    assert ext.num_nodes == g.num_nodes + 1 and ext.node_type[-1] == 0
    assert torch.equal(ext.edge_index[:, : g.edge_index.size(1)], g.edge_index)
    added = ext.edge_index[:, g.edge_index.size(1) :].t().tolist()
    names = [ext.relation_names[t] for t in ext.edge_type[g.edge_index.size(1) :].tolist()]
    assert added == [[g.num_nodes, item], [item, g.num_nodes]] and names == ["click", "rev_click"]
    assert ext.features.size(0) == ext.num_nodes and not bool(ext.has_text[-1])
    assert ext.num_users == g.num_users and ext.num_items == g.num_items  # slices stay the trained ones


def test_extend_graph_refuses_unknown_relations_and_nodes(tiny_trained):
    g = tiny_trained.graph
    with pytest.raises(KgrecError, match="not in the trained graph"):
        extend_graph(g, torch.tensor([1]), NewEdges([g.num_nodes], [0], ["likes"]))
    with pytest.raises(KgrecError, match="outside the graph"):
        extend_graph(g, torch.tensor([1]), NewEdges([g.num_nodes + 5], [0], ["click"]))


def test_reverse_relation_round_trips():
    assert reverse_relation("item:genre:Genre") == "rev_item:genre:Genre"
    assert reverse_relation(reverse_relation("click")) == "click"
