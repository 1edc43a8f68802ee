"""The relation-aware attentive encoder: shapes, gradients, determinism, relation awareness."""

from __future__ import annotations

import pytest
import torch

from kgrec.models.relational import RelationalAttentionConv, RelationalEncoder


def _encoder(g, dim=8, seed=0, **kwargs) -> RelationalEncoder:
    torch.manual_seed(seed)
    return RelationalEncoder(dim, g.num_relations, **kwargs)


@pytest.mark.parametrize("dim,heads", [(4, 1), (8, 2), (12, 3)])
@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_output_shape(graph, dim, heads, num_layers):
    enc = _encoder(graph, dim, num_layers=num_layers, heads=heads)
    out = enc(torch.randn(graph.num_nodes, dim), graph)
    assert out.shape == (graph.num_nodes, dim)
    assert torch.isfinite(out).all()


def test_zero_layers_is_identity(graph):
    x = torch.randn(graph.num_nodes, 8)
    torch.testing.assert_close(_encoder(graph, num_layers=0)(x, graph), x)


def test_gradients_reach_input_and_every_parameter(graph):
    enc = _encoder(graph, num_layers=2, heads=2)
    x = torch.randn(graph.num_nodes, 8, requires_grad=True)
    enc(x, graph).pow(2).sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_deterministic_with_seed(graph):
    x = torch.randn(graph.num_nodes, 8)
    outs = []
    for _ in range(2):
        enc = _encoder(graph, seed=5, num_layers=2, dropout=0.3, edge_dropout=0.3).train()
        torch.manual_seed(11)
        outs.append(enc(x, graph))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_dropout_only_in_training_mode(graph):
    enc = _encoder(graph, num_layers=2, dropout=0.5, edge_dropout=0.5)
    x = torch.randn(graph.num_nodes, 8)
    enc.eval()
    torch.testing.assert_close(enc(x, graph), enc(x, graph), rtol=0, atol=0)
    enc.train()
    torch.manual_seed(0)
    assert not torch.allclose(enc(x, graph), enc.eval()(x, graph))


def test_node_without_incoming_edges_keeps_its_input(graph):
    x = torch.randn(graph.num_nodes, 8)
    out = _encoder(graph, num_layers=3)(x, graph)
    isolated = graph.num_nodes - 1
    torch.testing.assert_close(out[isolated], x[isolated])


def test_use_kg_false_cuts_entities_off(graph):
    x = torch.randn(graph.num_nodes, 8)
    out = _encoder(graph, num_layers=2, use_kg=False)(x, graph)
    entities = slice(graph.num_users + graph.num_items, graph.num_nodes)
    torch.testing.assert_close(out[entities], x[entities])
    assert not torch.allclose(out[: graph.num_users], x[: graph.num_users])


def test_relation_types_change_the_output(graph):
    x = torch.randn(graph.num_nodes, 8)
    enc = _encoder(graph, num_layers=1).eval()
    with torch.no_grad():
        enc.convs[0].relation.normal_()
    before = enc(x, graph)
    shuffled = type(graph)(**{**graph.__dict__, "edge_type": (graph.edge_type + 1) % graph.num_relations})
    assert not torch.allclose(before, enc(x, shuffled))


def test_attention_is_a_softmax_over_incoming_edges():
    # Star: nodes 1..3 point at node 0. With identity weights and zero relation vectors, node
    # 0's output is sum_j alpha_j x_j; one-hot inputs make it read out the attention weights.
    conv = RelationalAttentionConv(4, num_relations=2, heads=1).eval()
    with torch.no_grad():
        conv.lin.weight.copy_(torch.eye(4))
        conv.relation.zero_()
        conv.att_src.zero_()
        conv.att_dst.zero_()
        conv.relation_bias.copy_(torch.tensor([[0.0], [1.5]]))
    x = torch.cat([torch.zeros(1, 4), torch.eye(4)[:3]])
    edge_index = torch.tensor([[1, 2, 3], [0, 0, 0]])
    out = conv(x, edge_index, torch.tensor([0, 0, 1]))
    alpha = out[0, :3]
    # Only the relation bias is left in the logits: alpha = softmax(0, 0, 1.5).
    torch.testing.assert_close(alpha, torch.softmax(torch.tensor([0.0, 0.0, 1.5]), dim=0))
    assert out[0, 3] == 0
    torch.testing.assert_close(out[1:], torch.zeros(3, 4))  # no incoming edges


def test_heads_must_divide_dim():
    with pytest.raises(ValueError):
        RelationalAttentionConv(10, num_relations=2, heads=3)


def test_medium_random_graph_forward_backward(random_graph_fn):
    g = random_graph_fn(2000, 10000, 20)
    enc = _encoder(g, dim=16, num_layers=2, heads=2, dropout=0.1, edge_dropout=0.1).train()
    x = torch.randn(g.num_nodes, 16, requires_grad=True)
    enc(x, g).sum().backward()
    assert torch.isfinite(x.grad).all()
