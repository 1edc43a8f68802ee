"""Tiny graphs for the model tests, made in memory."""

from __future__ import annotations

import pytest
import torch

from kgrec.models.graph_tensors import GraphTensors


def make_graph(
    num_users: int = 3,
    num_items: int = 4,
    num_entities: int = 3,
    *,
    with_features: bool = True,
    feature_dim: int = 6,
    isolated: bool = True,
    duplicate: bool = True,
) -> GraphTensors:
    """A small collaborative knowledge graph with both edge directions.

    Relations: 0 click (user->item), 1 rev_click, 2 genre (item->entity), 3 rev_genre,
    4 rate (user->item, parallel to a click when ``duplicate``), 5 rev_rate. The last entity
    is isolated when ``isolated``.
    """
    U, I, K = num_users, num_items, num_entities
    gen = torch.Generator().manual_seed(7)
    ui = [(u, U + (u + k) % I) for u in range(U) for k in range(2)]
    ie = [(U + i, U + I + i % (K - 1 if isolated else K)) for i in range(I)]
    forward = [(s, d, 0) for s, d in ui] + [(s, d, 2) for s, d in ie]
    if duplicate:
        forward.append((ui[0][0], ui[0][1], 4))
    src = torch.tensor([s for s, _, _ in forward])
    dst = torch.tensor([d for _, d, _ in forward])
    rel = torch.tensor([r for _, _, r in forward])
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    edge_type = torch.cat([rel, rel + 1])
    n = U + I + K
    node_type = torch.tensor([0] * U + [1] * I + [2] * K)
    features = has_text = None
    if with_features:
        has_text = torch.rand(n, generator=gen) > 0.3
        features = torch.randn(n, feature_dim, generator=gen) * has_text.unsqueeze(-1)
    kg = torch.tensor(ie).t()
    return GraphTensors(
        num_users=U,
        num_items=I,
        num_nodes=n,
        edge_index=edge_index,
        edge_type=edge_type,
        relation_names=["click", "rev_click", "genre", "rev_genre", "rate", "rev_rate"],
        node_type=node_type,
        features=features,
        has_text=has_text,
        kg_edge_index=kg,
        kg_edge_type=torch.full((kg.size(1),), 2),
    )


def random_graph(num_nodes: int, num_edges: int, num_relations: int, seed: int = 0) -> GraphTensors:
    """A random symmetric graph (users/items/entities split 20/30/50)."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_edges,), generator=gen)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=gen)
    rel = torch.randint(0, max(num_relations // 2, 1), (num_edges,), generator=gen)
    U, I = num_nodes // 5, (3 * num_nodes) // 10
    node_type = torch.tensor([0] * U + [1] * I + [2] * (num_nodes - U - I))
    return GraphTensors(
        num_users=U,
        num_items=I,
        num_nodes=num_nodes,
        edge_index=torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1),
        edge_type=torch.cat([rel, rel + num_relations // 2]),
        relation_names=[f"r{i}" for i in range(num_relations)],
        node_type=node_type,
    )


@pytest.fixture
def graph() -> GraphTensors:
    return make_graph()


@pytest.fixture
def make_graph_fn():
    """The :func:`make_graph` builder, for tests that need a variant."""
    return make_graph


@pytest.fixture
def random_graph_fn():
    return random_graph
