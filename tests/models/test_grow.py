"""Carrying trained weights over to the same model built for a grown graph."""

from __future__ import annotations

import pytest
import torch

from kgrec.config import ExperimentConfig, ModelConfig
from kgrec.errors import KgrecError
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.grow import ID_ROWS, carry_over, new_node_rows
from kgrec.models.registry import build_model


def _graph(users: int, items: int, entities: int, relations: list[str], features: int = 0) -> GraphTensors:
    n = users + items + entities
    node_type = torch.tensor([0] * users + [1] * items + [2] * entities)
    feats = torch.randn(n, features) if features else None
    has_text = torch.ones(n, dtype=torch.bool) if features else None
    edge = torch.tensor([[0], [users]])
    return GraphTensors(users, items, n, edge, torch.zeros(1, dtype=torch.long), relations, node_type, feats, has_text)


def _model(g, encoder="lightgcn"):
    return build_model(ExperimentConfig(model=ModelConfig(encoder=encoder, dim=4, layers=1, use_text=g.features is not None)), g)


def test_old_rows_move_with_their_nodes_and_new_ones_are_filled():
    old_g = _graph(2, 3, 1, ["click", "rev_click"], features=6)
    old = _model(old_g)
    new_g = _graph(3, 4, 1, ["click", "rev_click", "item:genre:entity", "rev_item:genre:entity"], features=6)  # one new user, item
    new = _model(new_g)
    rows = torch.tensor([0, 1, 3, 4, 5, 7])  # users stay, items move by the new user, the entity after the new item
    fill = torch.arange(8.0).reshape(2, 4)  # the new user (node 2) and the new item (node 6)
    carry_over(old.state_dict(), new, rows, old_g.relation_names, new_g.relation_names, fill)
    table, before = new.state_dict()[ID_ROWS], old.state_dict()[ID_ROWS]
    torch.testing.assert_close(table[rows], before)
    torch.testing.assert_close(table[torch.tensor([2, 6])], fill)
    torch.testing.assert_close(new.node_input.text_projection.weight, old.node_input.text_projection.weight)
    rel_new, rel_old = new.relation_embedding.weight, old.relation_embedding.weight
    torch.testing.assert_close(rel_new[:2], rel_old[:2])  # by name: click, rev_click
    assert torch.equal(rel_new[2:], torch.ones(2, 4))  # the new relations keep their fresh (DistMult: ones) rows


def test_new_rows_start_from_what_the_model_learnt():
    g = _graph(3, 4, 1, ["click", "rev_click"])
    old_ids = torch.randn(6, 4)  # old: users 0, 1; items 2-4; entity 5
    rows = torch.tensor([0, 1, 3, 4, 5, 7])
    layer0 = torch.randn(8, 4)
    zero = new_node_rows(old_ids, rows, g, {2: [3, 4]}, layer0, user_init="zero")
    torch.testing.assert_close(zero[0], torch.zeros(4))  # the new user
    torch.testing.assert_close(zero[1], old_ids[2:5].mean(0))  # the new item: the mean trained item row
    items = new_node_rows(old_ids, rows, g, {2: [3, 4]}, layer0, user_init="items")
    torch.testing.assert_close(items[0], layer0[[3, 4]].mean(0))  # the mean layer-0 of the user's items


def test_a_model_with_another_graph_sized_tensor_is_refused():
    old_g = _graph(2, 3, 1, ["click", "rev_click"])
    old = _model(old_g)
    state = dict(old.state_dict())
    state["encoder.per_node"] = torch.zeros(6)
    new_g = _graph(3, 3, 1, ["click", "rev_click"])
    new = _model(new_g)
    new.encoder.register_buffer("per_node", torch.zeros(7))
    with pytest.raises(KgrecError, match=r"keeps 'encoder.per_node' sized by the graph \(\(6,\) -> \(7,\)\).*train it again"):
        carry_over(state, new, torch.tensor([0, 1, 3, 4, 5, 6]), old_g.relation_names, new_g.relation_names)
