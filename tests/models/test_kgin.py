"""KGIN (kgrec.models.kgin): distance correlation, intent-aware aggregation by hand, refusals, training."""

from __future__ import annotations


import pytest
import torch

from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.kgin import KGINEncoder, distance_correlation, knowledge_relations


def _config(**model):
    settings = dict(encoder="kgin", layers=2, dim=16, use_text=False, kg_min_degree=1, intents=2)
    settings.update(model)
    return ExperimentConfig(
        model=ModelConfig(**settings),
        train=TrainConfig(epochs=15, batch_size=64, lr=0.02, kg_loss_weight=0.0, independence_weight=1e-3, patience=15, device="cpu"),
    )


def _graph() -> GraphTensors:
    """User 0 rated items 1, 2 (both directions); item 1 <-> entity 3, item 2 <-> entity 4."""
    src = torch.tensor([1, 2, 0, 0, 3, 1, 4, 2])
    dst = torch.tensor([0, 0, 1, 2, 1, 3, 2, 4])
    rel = torch.tensor([0, 0, 3, 3, 1, 2, 1, 2])
    return GraphTensors(
        num_users=1, num_items=2, num_nodes=5, edge_index=torch.stack([src, dst]), edge_type=rel,
        relation_names=["rate", "genre", "rev_genre", "rev_rate"], node_type=torch.tensor([0, 1, 1, 2, 2]),
    )


def test_distance_correlation():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0])
    assert distance_correlation(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert distance_correlation(x, -3 * x + 1).item() == pytest.approx(1.0, abs=1e-5)  # any linear map
    assert distance_correlation(x, x.pow(2)).item() < 1.0
    # by hand for (1, 2, 3) and (1, 3, 2): the double-centred distance matrices are
    # A = [[-10, 2, 8], [2, -4, 2], [8, 2, -10]] / 9 and B = [[-10, 8, 2], [8, -10, 2], [2, 2, -4]] / 9;
    # sum(A * B) = 252 / 81 and sum(A * A) = sum(B * B) = 360 / 81, so dCor^2 = 252 / 360 = 0.7
    a = torch.tensor([1.0, 2.0, 3.0])
    b = torch.tensor([1.0, 3.0, 2.0])
    assert distance_correlation(a, b).item() == pytest.approx(0.7**0.5, abs=1e-5)


def test_one_hop_by_hand():
    torch.manual_seed(0)
    assert knowledge_relations(_graph()).tolist() == [1, 2]
    enc = KGINEncoder(2, 4, knowledge_relations(_graph()), num_layers=1, intents=2, dropout=0.0)
    with torch.no_grad():
        enc.relation.weight.copy_(torch.tensor([[9.0, 9.0], [1.0, 2.0], [3.0, 1.0], [9.0, 9.0]]))
        enc.intent_logits.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 5.0, -5.0, 0.0]]))
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [1.0, -1.0], [2.0, 2.0]])
    out = enc(x, _graph())
    # intents mix only the knowledge relations (1, 2): softmax of (0, 0) and (5, -5)
    e = torch.stack([0.5 * enc.relation.weight[1] + 0.5 * enc.relation.weight[2],
                     torch.softmax(torch.tensor([5.0, -5.0]), 0) @ enc.relation.weight[1:3]]).detach()
    beta = torch.softmax(x[0] @ e.t(), 0)
    mean = (x[1] + x[2]) / 2
    user = mean * (beta @ e) + mean
    # item 1 hears only entity 3 along relation 1; entity 3 hears item 1 along relation 2
    item1 = x[3] * enc.relation.weight[1].detach()
    entity3 = x[1] * enc.relation.weight[2].detach()
    norm = torch.nn.functional.normalize
    assert out[0].tolist() == pytest.approx((x[0] + norm(user, dim=0)).tolist(), abs=1e-5)
    assert out[1].tolist() == pytest.approx((x[1] + norm(item1, dim=0)).tolist(), abs=1e-5)
    assert out[3].tolist() == pytest.approx((x[3] + norm(entity3, dim=0)).tolist(), abs=1e-5)


def test_items_hear_nothing_from_users():
    enc = KGINEncoder(2, 4, knowledge_relations(_graph()), num_layers=2, intents=2, dropout=0.0)
    x = torch.randn(5, 2)
    y = x.clone()
    y[0] = 100.0
    assert torch.allclose(enc(x, _graph())[1:], enc(y, _graph())[1:])


@pytest.mark.parametrize(
    "change,message",
    [
        ({"layers": 0}, 'model.layers = 0: model.encoder = "kgin" propagates'),
        ({"use_kg": False}, "model.use_kg = false"),
        ({"intents": 0}, "model.intents = 0 must be 1 or more"),
    ],
)
def test_settings_kgin_cannot_honour_are_refused(change, message):
    with pytest.raises(KgrecError, match=message):
        check_experiment(_config(**change))
    config = _config()
    config.train.independence_weight = -1.0
    with pytest.raises(KgrecError, match="independence_weight = -1.0 must be 0 or more"):
        check_experiment(config)


@pytest.mark.slow
def test_kgin_learns_tastes_that_follow_genres(tmp_path, genre_tastes):
    results, run, first = genre_tastes(tmp_path, _config())
    assert first["loss_independence"] > 0 and "loss_kg" not in first
