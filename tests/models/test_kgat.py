"""KGAT (kgrec.models.kgat): its attention and aggregator by hand, what it refuses, that it trains."""

from __future__ import annotations


import pytest
import torch

from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.kgat import BiInteractionLayer, KGATEncoder
from kgrec.models.propagation import SparsePattern


def _config(**model):
    settings = dict(encoder="kgat", layers=1, dim=16, use_text=False, kg_min_degree=1)
    settings.update(model)
    return ExperimentConfig(
        model=ModelConfig(**settings),
        train=TrainConfig(epochs=15, batch_size=64, lr=0.02, kg_loss_weight=0.5, patience=15, device="cpu"),
    )


def _graph() -> GraphTensors:
    """User 0 -> items 1, 2 (relation 0); item 1 <-> entity 3 (relations 1, 2)."""
    src = torch.tensor([1, 2, 0, 0, 3, 1])
    dst = torch.tensor([0, 0, 1, 2, 1, 3])
    rel = torch.tensor([0, 0, 3, 3, 1, 2])
    return GraphTensors(
        num_users=1, num_items=2, num_nodes=4, edge_index=torch.stack([src, dst]), edge_type=rel,
        relation_names=["rate", "genre", "rev_genre", "rev_rate"], node_type=torch.tensor([0, 1, 1, 2]),
    )


def test_attention_is_transr_scores_softmaxed_over_each_neighbourhood():
    torch.manual_seed(0)
    enc = KGATEncoder(3, 4, num_layers=1)
    with torch.no_grad():
        enc.projection.copy_(torch.randn(4, 3, 3))
        enc.relation.weight.copy_(torch.randn(4, 3))
    x = torch.randn(4, 3)
    g = _graph()
    groups = enc._groups(g)
    alpha = enc.attention(x, groups, 4)

    def pi(h, r, t):
        w = enc.projection[r]
        with torch.no_grad():
            return float((w @ x[t]) @ torch.tanh(w @ x[h] + enc.relation.weight[r]))

    got = {(int(s), int(d)): float(a) for s, d, a in zip(groups.src, groups.dst, alpha)}
    # user 0's neighbourhood is items 1 and 2 (relation 0); item 1's is user 0 (3) and entity 3 (1)
    p1, p2 = pi(0, 0, 1), pi(0, 0, 2)
    assert got[(1, 0)] == pytest.approx(torch.softmax(torch.tensor([p1, p2]), 0)[0].item(), abs=1e-5)
    q_user, q_entity = pi(1, 3, 0), pi(1, 1, 3)
    assert got[(3, 1)] == pytest.approx(torch.softmax(torch.tensor([q_user, q_entity]), 0)[1].item(), abs=1e-5)
    assert got[(1, 3)] == pytest.approx(1.0) and got[(0, 2)] == pytest.approx(1.0)  # one neighbour each


def test_bi_interaction_by_hand_and_concatenated_layers():
    layer = BiInteractionLayer(2)
    with torch.no_grad():
        layer.sum_weight.weight.copy_(torch.eye(2))
        layer.product_weight.weight.copy_(torch.eye(2))
        layer.sum_weight.bias.zero_()
        layer.product_weight.bias.zero_()
    x = torch.tensor([[1.0, -1.0], [2.0, 3.0]])
    pattern = SparsePattern.from_edges(torch.tensor([0]), torch.tensor([1]), 2, 2)  # node 1 -> node 0
    out = layer(x, pattern.matrices(torch.tensor([0.5])))
    # node 0: e_N = 0.5 * (2, 3) = (1, 1.5); sum (2, 0.5); product (1, -1.5) -> LeakyReLU 0.2
    assert out[0].tolist() == pytest.approx([2.0 + 1.0, 0.5 - 0.3])
    # node 1 has no neighbours: e_N = 0, LeakyReLU(x) + 0
    assert out[1].tolist() == pytest.approx([2.0, 3.0])
    enc = KGATEncoder(3, 4, num_layers=2)
    assert enc(torch.randn(4, 3), _graph()).shape == (4, 9)


def test_attention_is_kept_for_an_epoch_once_the_trainer_asks():
    torch.manual_seed(0)
    enc = KGATEncoder(3, 4, num_layers=1, dropout=0.0)
    x, g = torch.randn(4, 3), _graph()
    enc.train()
    first = enc(x, g)
    with torch.no_grad():
        enc.projection.mul_(3.0)  # a step that changes the attention's parameters
    assert not torch.allclose(enc(x, g), first), "without start_epoch every pass recomputes"
    enc.start_epoch()
    epoch = enc(x, g)
    with torch.no_grad():
        enc.projection.mul_(3.0)
    assert torch.equal(enc(x, g), epoch), "within an epoch the attention is kept"
    enc.eval()
    assert not torch.allclose(enc(x, g), epoch), "evaluation uses the current parameters"
    enc.train()
    enc.start_epoch()
    assert torch.allclose(enc(x, g), enc.eval()(x, g))


def test_sparse_pattern_sums_parallel_edges_and_transposes():
    rows, cols = torch.tensor([0, 0, 2, 0]), torch.tensor([1, 2, 0, 1])
    p = SparsePattern.from_edges(rows, cols, 3, 3)
    a, a_t = p.matrices(p.entry_values(torch.tensor([1.0, 2.0, 3.0, 4.0])))
    dense = torch.tensor([[0.0, 5.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    assert torch.equal(a.to_dense(), dense) and torch.equal(a_t.to_dense(), dense.t())
    from kgrec.models.propagation import spmm

    x = torch.randn(3, 2, requires_grad=True)
    spmm(a, a_t, x).pow(2).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    (dense @ x2).pow(2).sum().backward()
    assert torch.allclose(x.grad, x2.grad)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"edge_dropout": 0.1}, "model.edge_dropout = 0.1"),
        ({"layers": 0}, 'model.layers = 0: model.encoder = "kgat" propagates'),
        ({"normalize": True}, "model.normalize = true"),
    ],
)
def test_settings_kgat_cannot_honour_are_refused(change, message):
    config = _config(**change)
    with pytest.raises(KgrecError, match=message):
        check_experiment(config)
    config = _config()
    config.train.kg_loss_weight = 0.0
    with pytest.raises(KgrecError, match="train.kg_loss_weight = 0"):
        check_experiment(config)
    config = _config()
    config.train.independence_weight = 1e-4
    with pytest.raises(KgrecError, match="has no intents"):
        check_experiment(config)


@pytest.mark.slow
def test_kgat_learns_tastes_that_follow_genres(tmp_path, genre_tastes):
    results, run, first = genre_tastes(tmp_path, _config())
    recs = run.recommend(["u0", "u1"], k=3)
    genre = {u: int(u[1:]) % 3 for u in ("u0", "u1")}
    assert all(int(r.item[1:]) % 3 == genre[r.user] for r in recs.itertuples())
    assert first["loss_kg"] > 0
