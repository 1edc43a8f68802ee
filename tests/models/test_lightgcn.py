"""KGLightGCN against a dense-matrix reference implementation of LightGCN."""

from __future__ import annotations

import pytest
import torch

from kgrec.models.lightgcn import KGLightGCN


def dense_lightgcn(x: torch.Tensor, edge_index: torch.Tensor, num_layers: int) -> torch.Tensor:
    """LightGCN with dense matrices: mean of (D^-1/2 A D^-1/2)^k x for k = 0..K."""
    n = x.size(0)
    a = torch.zeros(n, n, dtype=torch.float64)
    ones = torch.ones(edge_index.size(1), dtype=torch.float64)
    a.index_put_((edge_index[1], edge_index[0]), ones, accumulate=True)  # parallel edges add up
    deg = a.sum(dim=1)
    inv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    norm = inv[:, None] * a * inv[None, :]
    out = x.double()
    layers = [out]
    for _ in range(num_layers):
        out = norm @ out
        layers.append(out)
    return torch.stack(layers).mean(dim=0)


@pytest.mark.parametrize("num_layers", [0, 1, 2, 3])
@pytest.mark.parametrize("duplicate", [False, True])
@pytest.mark.parametrize("dim", [1, 8])
def test_matches_dense_reference(make_graph_fn, num_layers, duplicate, dim):
    g = make_graph_fn(duplicate=duplicate, isolated=True)
    x = torch.randn(g.num_nodes, dim, generator=torch.Generator().manual_seed(1))
    out = KGLightGCN(num_layers).eval()(x, g)
    expected = dense_lightgcn(x, g.edge_index, num_layers)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_isolated_node_keeps_its_layer0_share(graph):
    x = torch.randn(graph.num_nodes, 4)
    out = KGLightGCN(3).eval()(x, graph)
    isolated = graph.num_nodes - 1  # the fixture's last entity has no edge
    assert not (graph.edge_index == isolated).any()
    torch.testing.assert_close(out[isolated], x[isolated] / 4)
    assert torch.isfinite(out).all()


def test_use_kg_false_propagates_over_user_item_edges_only(graph):
    x = torch.randn(graph.num_nodes, 4)
    out = KGLightGCN(2, use_kg=False).eval()(x, graph)
    ui = (graph.edge_index < graph.num_users + graph.num_items).all(dim=0)
    expected = dense_lightgcn(x, graph.edge_index[:, ui], 2)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_adjacency_is_built_once_per_graph(graph):
    enc = KGLightGCN(2).eval()
    x = torch.randn(graph.num_nodes, 4)
    enc(x, graph)
    first = enc.adjacency(graph)
    enc(x, graph)
    assert enc.adjacency(graph) is first
    assert len(enc._adjacency) == 1
    other = graph.to("cpu")  # same values, new tensors: a new entry
    other.edge_index = graph.edge_index.clone()
    enc(x, other)
    assert len(enc._adjacency) == 2


def test_gradient_reaches_the_input(graph):
    x = torch.randn(graph.num_nodes, 4, requires_grad=True)
    KGLightGCN(3)(x, graph).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_edge_dropout_only_in_training_mode(graph):
    enc = KGLightGCN(2, edge_dropout=0.5)
    x = torch.randn(graph.num_nodes, 4)
    enc.eval()
    torch.testing.assert_close(enc(x, graph), KGLightGCN(2).eval()(x, graph))
    enc.train()
    torch.manual_seed(0)
    outs = [enc(x, graph) for _ in range(5)]
    assert any(not torch.allclose(o, enc.eval()(x, graph)) for o in outs)


def test_edge_dropout_is_symmetric_and_renormalised(graph):
    enc = KGLightGCN(1, edge_dropout=0.5).train()
    torch.manual_seed(3)
    adj = enc.adjacency(graph).to_dense().double()
    torch.testing.assert_close(adj, adj.t())
    # The kept entries, re-normalised from scratch, must give the same matrix.
    full = torch.zeros_like(adj)
    ei = graph.edge_index
    full.index_put_((ei[1], ei[0]), torch.ones(ei.size(1), dtype=full.dtype), accumulate=True)
    kept = full * (adj > 0)
    assert 0 < (kept > 0).sum() < (full > 0).sum()
    deg = kept.sum(dim=1)
    inv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    torch.testing.assert_close(adj, inv[:, None] * kept * inv[None, :])


def test_runs_in_fp32_under_autocast(graph):
    x = torch.randn(graph.num_nodes, 4)
    enc = KGLightGCN(2).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x.bfloat16(), graph)
    assert out.dtype == torch.float32


def test_invalid_arguments():
    with pytest.raises(ValueError):
        KGLightGCN(-1)
    with pytest.raises(ValueError):
        KGLightGCN(2, edge_dropout=1.0)
