"""Losses against hand computations, stability and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from kgrec.config import ExperimentConfig, ModelConfig
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.registry import build_model
from kgrec.models.losses import bpr_loss, kg_link_loss, l2_regularisation, sampled_softmax_loss, structural_contrast_loss


def _neg_log_sigmoid(x: float) -> float:
    return -math.log(1.0 / (1.0 + math.exp(-x)))


def test_bpr_by_hand():
    pos, neg = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 3.0])
    expected = (_neg_log_sigmoid(1.0) + _neg_log_sigmoid(0.0) + _neg_log_sigmoid(-1.0)) / 3
    assert bpr_loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("batch,num_neg", [(1, 1), (4, 3), (16, 8)])
def test_bpr_with_several_negatives_is_the_mean_over_pairs(batch, num_neg):
    pos, neg = torch.randn(batch), torch.randn(batch, num_neg)
    expected = sum(
        _neg_log_sigmoid(float(pos[b] - neg[b, j])) for b in range(batch) for j in range(num_neg)
    ) / (batch * num_neg)
    assert bpr_loss(pos, neg).item() == pytest.approx(expected, rel=1e-5)


def test_bpr_is_stable_for_large_differences():
    assert bpr_loss(torch.tensor([1000.0]), torch.tensor([-1000.0])).item() == 0.0
    assert bpr_loss(torch.tensor([-1000.0]), torch.tensor([1000.0])).item() == pytest.approx(2000.0)
    half = bpr_loss(torch.tensor([30.0]).half(), torch.tensor([-30.0]).half())
    assert half.dtype == torch.float32 and torch.isfinite(half)


def test_bpr_gradient():
    pos = torch.tensor([0.5, -1.0], requires_grad=True)
    neg = torch.tensor([0.0, 1.0], requires_grad=True)
    bpr_loss(pos, neg).backward()
    # d/dpos of mean softplus(neg - pos) = -sigmoid(neg - pos) / B
    expected = -torch.sigmoid(torch.tensor([-0.5, 2.0])) / 2
    torch.testing.assert_close(pos.grad, expected)
    torch.testing.assert_close(neg.grad, -expected)


def test_sampled_softmax_by_hand():
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    t = 0.5
    rows = [[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]
    expected = sum(
        -(row[0] / t) + math.log(sum(math.exp(v / t) for v in row)) for row in rows
    ) / 2
    assert sampled_softmax_loss(pos, neg, t).item() == pytest.approx(expected, rel=1e-6)


def test_sampled_softmax_one_negative_equals_bpr_at_temperature_one():
    pos, neg = torch.randn(8), torch.randn(8)
    torch.testing.assert_close(sampled_softmax_loss(pos, neg, 1.0), bpr_loss(pos, neg))


def test_sampled_softmax_gradient_and_validation():
    pos = torch.zeros(1, requires_grad=True)
    neg = torch.zeros(1, 3, requires_grad=True)
    sampled_softmax_loss(pos, neg, 1.0).backward()
    torch.testing.assert_close(pos.grad, torch.tensor([-0.75]))  # p(pos) - 1 = 1/4 - 1
    torch.testing.assert_close(neg.grad, torch.full((1, 3), 0.25))
    with pytest.raises(ValueError):
        sampled_softmax_loss(pos, neg, 0.0)


def test_l2_regularisation_by_hand():
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0], [4.0]])
    assert l2_regularisation(a, b, batch_size=2).item() == pytest.approx(0.5 * (1 + 4 + 9 + 16) / 2)
    a.requires_grad_(True)
    l2_regularisation(a, batch_size=4).backward()
    torch.testing.assert_close(a.grad, a.detach() / 4)
    with pytest.raises(ValueError):
        l2_regularisation(a, batch_size=0)


def _tiny_graph() -> GraphTensors:
    edge_index = torch.tensor([[0, 2, 2, 4], [2, 0, 4, 2]])
    return GraphTensors(
        num_users=2, num_items=2, num_nodes=6, edge_index=edge_index,
        edge_type=torch.tensor([0, 1, 2, 3]), relation_names=["c", "rc", "k", "rk"],
        node_type=torch.tensor([0, 0, 1, 1, 2, 2]),
    )


@pytest.mark.parametrize("num_neg", [None, 3])
def test_kg_link_loss_is_bpr_over_distmult(num_neg):
    g = _tiny_graph()
    model = build_model(ExperimentConfig(model=ModelConfig(dim=4, use_text=False)), g)
    with torch.no_grad():
        model.relation_embedding.weight.normal_()
    emb = torch.randn(g.num_nodes, 4, requires_grad=True)
    heads, rels, tails = torch.tensor([2, 3]), torch.tensor([2, 2]), torch.tensor([4, 5])
    neg = torch.tensor([5, 4]) if num_neg is None else torch.tensor([[5, 4, 5], [4, 4, 5]])
    loss = kg_link_loss(model.kg_score, lambda nodes: emb[nodes], heads, rels, tails, neg)
    r = model.relation_embedding.weight[rels]
    pos_s = (emb[heads] * r * emb[tails]).sum(-1)
    if num_neg is None:
        neg_s = (emb[heads] * r * emb[neg]).sum(-1)
    else:
        neg_s = ((emb[heads] * r).unsqueeze(1) * emb[neg]).sum(-1)
    torch.testing.assert_close(loss, bpr_loss(pos_s, neg_s))
    loss.backward()
    assert emb.grad[[2, 3, 4, 5]].abs().sum() > 0 and emb.grad[[0, 1]].abs().sum() == 0
    assert model.relation_embedding.weight.grad[2].abs().sum() > 0


def test_structural_contrast_by_hand():
    anchor = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    positive = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    tau = 0.5
    cos = torch.tensor([[1.0, 2**-0.5], [0.0, 2**-0.5]]) / tau  # cos(anchor_b, positive_c)
    expected = -(torch.log_softmax(cos, dim=1).diagonal()).mean()
    assert structural_contrast_loss(anchor, positive, tau).item() == pytest.approx(expected.item(), rel=1e-6)


def test_structural_contrast_rewards_aligned_views():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 16, generator=gen)
    aligned = structural_contrast_loss(x, x * 3.0, 0.1)  # same directions, other scale
    shuffled = structural_contrast_loss(x, x[torch.randperm(32, generator=gen)], 0.1)
    assert aligned < 0.5 < shuffled
