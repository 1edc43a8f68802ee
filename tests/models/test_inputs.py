"""NodeInput: ID embedding + projected text features, each switchable."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.models.inputs import NodeInput


@pytest.mark.parametrize("use_id,use_text", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("dim", [1, 16])
def test_shape_and_parts(graph, use_id, use_text, dim):
    inputs = NodeInput(graph.num_nodes, dim, graph.feature_dim, use_id=use_id, use_text=use_text)
    out = inputs(graph)
    assert out.shape == (graph.num_nodes, dim)
    assert inputs.uses_id == use_id and inputs.uses_text == use_text
    assert (inputs.id_embedding is not None) == use_id
    assert (inputs.text_projection is not None) == use_text


def test_sum_of_id_and_masked_projection(graph):
    inputs = NodeInput(graph.num_nodes, 5, graph.feature_dim)
    expected = inputs.id_embedding.weight + (
        graph.features @ inputs.text_projection.weight.t()
    ) * graph.has_text.unsqueeze(-1)
    torch.testing.assert_close(inputs(graph), expected)


def test_text_only_gives_zero_rows_without_text(graph):
    graph.features = graph.features + 1.0  # even a non-zero feature row must be ignored
    out = NodeInput(graph.num_nodes, 5, graph.feature_dim, use_id=False)(graph)
    assert (out[~graph.has_text] == 0).all()
    assert (out[graph.has_text].abs().sum(dim=1) > 0).all()


def test_both_parts_off_is_an_error(graph):
    with pytest.raises(KgrecError, match="use_id and model.use_text"):
        NodeInput(graph.num_nodes, 4, graph.feature_dim, use_id=False, use_text=False)


def test_text_without_features_falls_back_to_ids(make_graph_fn):
    g = make_graph_fn(with_features=False)
    inputs = NodeInput(g.num_nodes, 4, g.feature_dim, use_text=True)
    assert inputs.text_fallback and not inputs.uses_text
    torch.testing.assert_close(inputs(g), inputs.id_embedding.weight)
    assert "text_fallback=True" in repr(inputs)


def test_no_id_and_no_features_is_an_error(make_graph_fn):
    g = make_graph_fn(with_features=False)
    with pytest.raises(KgrecError, match="no text features"):
        NodeInput(g.num_nodes, 4, g.feature_dim, use_id=False, use_text=True)


def test_id_init_is_lightgcn_style():
    torch.manual_seed(0)
    weight = NodeInput(5000, 32, 0, use_text=False).id_embedding.weight.detach()
    assert abs(float(weight.std()) - 0.1) < 0.005
    assert abs(float(weight.mean())) < 0.005


def test_half_features_are_accepted(graph):
    inputs = NodeInput(graph.num_nodes, 4, graph.feature_dim)
    half = dataclasses.replace(graph, features=graph.features.half())
    out = inputs(half)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, inputs(graph), atol=1e-2, rtol=1e-2)


def test_gradients_reach_both_parts(graph):
    inputs = NodeInput(graph.num_nodes, 4, graph.feature_dim)
    inputs(graph).pow(2).sum().backward()
    assert inputs.id_embedding.weight.grad.abs().sum() > 0
    assert inputs.text_projection.weight.grad.abs().sum() > 0


def test_graph_of_another_size_is_an_error(graph, make_graph_fn):
    inputs = NodeInput(graph.num_nodes, 4, graph.feature_dim)
    with pytest.raises(KgrecError, match="built for 10 nodes"):
        inputs(make_graph_fn(num_users=5))
    with pytest.raises(KgrecError, match="6-dimensional text features"):
        inputs(dataclasses.replace(graph, features=torch.zeros(graph.num_nodes, 3)))


def test_rows_with_text_follow_each_new_graph_of_the_same_size(graph):
    """The cached rows belong to one ``has_text`` tensor: a new graph's never inherits them, even
    when Python gives its tensor the id of a freed one (an id-keyed cache failed here)."""
    inputs = NodeInput(graph.num_nodes, 4, graph.feature_dim, use_id=False)
    gen = torch.Generator().manual_seed(0)
    stale = 0
    for _ in range(200):
        has_text = torch.rand(graph.num_nodes, generator=gen) < 0.5
        features = torch.ones(graph.num_nodes, graph.feature_dim) * has_text[:, None]
        g = dataclasses.replace(graph, features=features, has_text=has_text)
        out, want = inputs(g), features @ inputs.text_projection.weight.t()
        stale += not torch.allclose(out, want)
        del g, features, has_text, out, want  # free them, so the next graph's tensors may take their ids
    assert stale == 0

