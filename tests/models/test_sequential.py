"""The sequential models' item table and encoders: shapes, causality, what reaches the inputs."""

from __future__ import annotations

import pytest
import torch

from kgrec.config import ExperimentConfig, from_dict
from kgrec.models.registry import build_model
from kgrec.models.sequential import SequenceItemTable


def config(encoder: str, **model) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {
        "model": {"encoder": encoder, "dim": 8, "layers": 2, "use_text": True, "use_kg": True, **model},
        "sequence": {"max_len": 5, "layers": 1, "heads": 2, "inner": 16, "dropout": 0.0},
        "train": {"loss": "softmax", "kg_loss_weight": 0.0},
    })  # fmt: skip


def test_item_table_smooths_items_over_the_knowledge_edges_only(graph):
    table = SequenceItemTable(graph, 8, use_id=True, use_text=False, use_kg=True, layers=1)
    x0 = table.node_input(graph)
    out = table(graph)
    U, I = graph.num_users, graph.num_items
    assert out.shape == x0.shape
    assert not torch.allclose(out[U : U + I], x0[U : U + I]), "items with an entity move towards it"
    torch.testing.assert_close(out[:U], x0[:U])  # no user-item edge is used
    plain = SequenceItemTable(graph, 8, use_id=True, use_text=False, use_kg=False, layers=1)
    torch.testing.assert_close(plain(graph), plain.node_input(graph))


@pytest.mark.parametrize("encoder", ["sasrec", "gru4rec"])
def test_a_position_never_sees_later_items(graph, encoder):
    model = build_model(config(encoder), graph).eval()
    table = model.items(graph)
    seqs = torch.tensor([[0, 1, 2, 3, 0], [0, 1, 3, 2, 1]])
    lengths = torch.tensor([4, 5])
    h = model.hidden(table, seqs, lengths)
    torch.testing.assert_close(h[0, :2], h[1, :2])  # same first two items, different futures
    assert not torch.allclose(h[0, 2], h[1, 2])


@pytest.mark.parametrize("encoder", ["sasrec", "gru4rec"])
def test_next_item_loss_reaches_ids_text_and_the_encoder(graph, encoder):
    model = build_model(config(encoder), graph)
    model.set_histories(torch.tensor([[0, 1, 0, 0, 0], [2, 0, 0, 0, 0], [0, 0, 0, 0, 0]]), torch.tensor([2, 1, 0]))
    emb = model.encode(graph)
    assert emb.user_table().shape == (graph.num_users, 8)
    assert torch.count_nonzero(emb.user_table()[2]) == 0, "a user without history gets no vector"
    terms = model.sequence_loss(graph, torch.tensor([[0, 1, 2, 0, 0]]), torch.tensor([[1, 2, 3, -1, -1]]), torch.tensor([3]))
    terms["next_item"].backward()
    assert model.items.node_input.id_embedding.weight.grad.abs().sum() > 0
    assert model.items.node_input.text_projection.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)


def test_later_items_term_targets_the_items_after_the_next_where_the_window_has_them(graph):
    """``sequence.future = 3``: position t also predicts items t+2 and t+3 of the window (not padding)."""
    cfg = config("sasrec")
    cfg.sequence.future, cfg.sequence.future_weight = 3, 1.0
    torch.manual_seed(0)
    model = build_model(cfg, graph).eval()
    inputs, targets, lengths = torch.tensor([[0, 1, 2, 0, 0]]), torch.tensor([[1, 2, 3, -1, -1]]), torch.tensor([3])
    terms = model.sequence_loss(graph, inputs, targets, lengths)
    assert set(terms) == {"next_item", "later_items"}
    # by hand: positions 0 and 1 have items after the next (2, 3 and 3); position 2 has none
    table = model.items(graph)
    h = model.hidden(table, inputs, lengths)[0, :3]
    logits = h @ table[graph.num_users : graph.num_users + graph.num_items].t() / cfg.train.temperature
    log_p = torch.log_softmax(logits, dim=1)
    expected = -(log_p[0, 2] + log_p[0, 3] + log_p[1, 3]) / 3
    torch.testing.assert_close(terms["later_items"], expected)
    torch.testing.assert_close(terms["next_item"], -(log_p[0, 1] + log_p[1, 2] + log_p[2, 3]) / 3)


def test_future_one_is_the_plain_next_item_loss(graph):
    cfg = config("sasrec")
    assert cfg.sequence.future == 1, "the default is SASRec's objective"
    model = build_model(cfg, graph).eval()
    assert set(model.sequence_loss(graph, torch.tensor([[0, 1, 2]]), torch.tensor([[1, 2, 3]]), torch.tensor([3]))) == {"next_item"}
