"""KGCL (kgrec.models.kgcl): InfoNCE and the KG-guided item dropout by hand, refusals, training."""

from __future__ import annotations

import math

import pytest
import torch

from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.kgcl import KGCLEncoder, info_nce


def _config(**model):
    settings = dict(encoder="kgcl", layers=2, dim=16, use_text=False, kg_min_degree=1, edge_dropout=0.1)
    settings.update(model)
    return ExperimentConfig(
        model=ModelConfig(**settings),
        train=TrainConfig(epochs=15, batch_size=64, lr=0.02, kg_loss_weight=0.1, contrast_weight=0.1,
                          contrast_temperature=0.2, patience=15, device="cpu"),
    )


def _graph() -> GraphTensors:
    """Users 0, 1; items 2, 3, 4; entity 5 linked to items 2 and 3 (both directions)."""
    pairs = [(0, 2), (0, 3), (1, 3), (1, 4)]
    src = [i for u, i in pairs] + [u for u, i in pairs] + [5, 5, 2, 3]
    dst = [u for u, i in pairs] + [i for u, i in pairs] + [2, 3, 5, 5]
    rel = [0] * 4 + [3] * 4 + [1, 1, 2, 2]
    return GraphTensors(
        num_users=2, num_items=3, num_nodes=6, edge_index=torch.tensor([src, dst]), edge_type=torch.tensor(rel),
        relation_names=["rate", "genre", "rev_genre", "rev_rate"], node_type=torch.tensor([0, 0, 1, 1, 1, 2]),
    )


def test_info_nce_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    c = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    # row 0: cos to candidates (1, 1/sqrt2, 0), positive = candidate 0; row 1: (0, 1/sqrt2, 1), positive = candidate 2
    t = 0.5
    row0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(2**-0.5 / t) + 1))
    row1 = -math.log(math.exp(1 / t) / (1 + math.exp(2**-0.5 / t) + math.exp(1 / t)))
    assert info_nce(a, c[[0, 2]], c, t).item() == pytest.approx((row0 + row1) / 2, abs=1e-5)


def test_items_are_their_id_plus_attended_knowledge():
    enc = KGCLEncoder(2, 4, num_layers=1)
    x = torch.randn(6, 2)
    inputs = enc.item_inputs(x, enc._graph(_graph()))
    # items 2 and 3 hear entity 5 only (attention 1 over one neighbour); item 4 and the rest keep x
    assert torch.allclose(inputs[2], x[2] + x[5]) and torch.allclose(inputs[3], x[3] + x[5])
    assert torch.equal(inputs[[0, 1, 4, 5]], x[[0, 1, 4, 5]])


def test_keep_probabilities_follow_kg_consistency():
    enc = KGCLEncoder(2, 4, num_layers=1, ui_dropout=0.2)
    graph = enc._graph(_graph())
    v1 = torch.tensor([[0.0, 0], [0, 0], [1, 0], [1, 0], [1, 0], [0, 0]])
    v2 = torch.tensor([[0.0, 0], [0, 0], [1, 0], [1, 1], [-1, 0], [0, 0]])  # consistency 1, 0.71, -1
    p = enc._item_keep_probability(v1, v2, graph)
    assert p[2] > p[3] > p[4] and p[0] == 1 and p[5] == 1
    # min-max of exp(cos) floored at 0.3, scaled to a mean keep rate of 0.8, capped at 0.95
    w = torch.tensor([1.0, (math.exp(2**-0.5) - math.exp(-1)) / (math.e - math.exp(-1)), 0.3])
    assert p[2:5].tolist() == pytest.approx((0.8 * w / w.mean()).clamp(max=0.95).tolist(), abs=1e-5)


def test_views_drop_whole_items_and_evaluation_draws_none():
    torch.manual_seed(0)
    enc = KGCLEncoder(2, 4, num_layers=1, ui_dropout=0.5)
    g = _graph()
    x = torch.randn(6, 2)
    enc.eval()
    assert torch.equal(enc(x, g), enc(x, g))
    main, v1, v2 = enc(x, g, views=True)
    assert torch.equal(main, enc(x, g)) and not torch.equal(v1, v2)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"use_kg": False}, "model.use_kg = false"),
        ({"kg_view_dropout": 1.0}, r"model.kg_view_dropout = 1.0 must lie in \[0, 1\)"),
        ({"normalize": True}, "model.normalize = true"),
    ],
)
def test_settings_kgcl_cannot_honour_are_refused(change, message):
    with pytest.raises(KgrecError, match=message):
        check_experiment(_config(**change))
    config = _config()
    config.train.contrast_temperature = 0.0
    with pytest.raises(KgrecError, match="contrast_temperature = 0.0 must be a positive number"):
        check_experiment(config)


@pytest.mark.slow
def test_kgcl_learns_tastes_that_follow_genres(tmp_path, genre_tastes):
    results, run, first = genre_tastes(tmp_path, _config())
    assert first["loss_contrast"] > 0 and first["loss_kg"] > 0
