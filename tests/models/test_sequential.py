"""The sequential models' item table and encoders: shapes, causality, what reaches the inputs."""

from __future__ import annotations

import pytest
import torch

from kgrec.config import ExperimentConfig, from_dict
from kgrec.models.registry import build_model
from kgrec.models.propagation import NormalisedAdjacency
from kgrec.models.sequential import SASRecEncoder, SequenceItemTable, dropout, knowledge_edges


def config(encoder: str, **model) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {
        "model": {"encoder": encoder, "dim": 8, "layers": 2, "use_text": True, "use_kg": True, **model},
        "sequence": {"max_len": 5, "layers": 1, "heads": 2, "inner": 16, "dropout": 0.0},
        "train": {"loss": "softmax", "kg_loss_weight": 0.0},
    })  # fmt: skip


def test_item_table_holds_the_items_and_the_nodes_with_knowledge_edges_only(graph):
    table = SequenceItemTable(graph, 8, use_id=True, use_text=True, use_kg=True, layers=1)
    U, I = graph.num_users, graph.num_items
    isolated = graph.num_nodes - 1  # make_graph leaves the last entity without edges
    assert table.nodes[:I].tolist() == list(range(U, U + I)), "the items come first, in catalogue order"
    assert set(table.nodes[I:].tolist()) == set(knowledge_edges(graph).unique().tolist()) - set(range(U, U + I))
    assert isolated not in table.nodes.tolist() and not set(range(U)) & set(table.nodes.tolist())
    assert table.id_embedding.num_embeddings == len(table.nodes)
    out, x0 = table(graph), table.inputs(graph)
    assert out.shape == x0.shape == (len(table.nodes), 8)
    assert not torch.allclose(out[:I], x0[:I]), "items with an entity move towards it"
    plain = SequenceItemTable(graph, 8, use_id=True, use_text=False, use_kg=False, layers=1)
    assert len(plain.nodes) == I
    torch.testing.assert_close(plain(graph), plain.inputs(graph))


def test_item_table_computes_what_the_whole_graph_propagation_computes(graph):
    """Leaving out the rows that cannot reach an item changes no item's vector."""
    table = SequenceItemTable(graph, 8, use_id=True, use_text=True, use_kg=True, layers=2)
    x0 = torch.zeros(graph.num_nodes, 8)
    x0[table.nodes] = table.inputs(graph)
    x0[graph.num_nodes - 1] = torch.randn(8)  # an isolated entity's vector may be anything
    adj = NormalisedAdjacency.from_edge_index(knowledge_edges(graph), graph.num_nodes).normalised()
    h, total = x0, torch.zeros_like(x0)
    for _ in range(2):
        h = adj @ h
        total = total + h
    expected = (x0 + total / 2)[graph.num_users : graph.num_users + graph.num_items]
    torch.testing.assert_close(table(graph)[: graph.num_items], expected)


def test_item_table_reads_text_only_where_a_node_has_it(graph):
    table = SequenceItemTable(graph, 8, use_id=False, use_text=True, use_kg=False, layers=0)
    x0 = table.inputs(graph)
    has_text = graph.has_text[table.nodes]
    assert has_text.any() and not has_text.all(), "the fixture mixes nodes with and without text"
    assert torch.count_nonzero(x0[~has_text]) == 0
    torch.testing.assert_close(x0[has_text], table.text_projection(graph.features[table.nodes[has_text]]))


def test_sasrec_blocks_compute_what_the_torch_layers_compute(graph):
    """The written-out forward (packed real positions, own dropout) equals ``nn.TransformerEncoder``'s."""
    torch.manual_seed(3)
    encoder = SASRecEncoder(dim=8, max_len=5, layers=2, heads=2, inner=16, dropout=0.3).eval()
    items = torch.randn(3, 5, 8)
    lengths = torch.tensor([5, 2, 1])
    mask = torch.arange(5)[None] < lengths[:, None]
    ours = encoder(items, mask)
    x = encoder.norm(items + encoder.position(torch.arange(5)))
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    theirs = encoder.blocks(x, mask=causal, src_key_padding_mask=~mask)
    torch.testing.assert_close(ours[mask], theirs[mask])
    assert torch.count_nonzero(ours[~mask]) == 0, "padding rows are zeros"


def test_sasrec_drops_out_where_recboles_sasrec_does(monkeypatch):
    """Input, attention weights, attention output, feed-forward output: four sites for one block,
    none on the feed-forward's inner activation (RecBole 1.2.1's FeedForward has no dropout there)."""
    import kgrec.models.sequential as sequential

    widths = []
    monkeypatch.setattr(sequential, "dropout", lambda x, p, training: widths.append(x.size(-1)) or x)
    encoder = SASRecEncoder(dim=8, max_len=5, layers=2, heads=2, inner=16, dropout=0.3).train()
    encoder(torch.randn(3, 5, 8), torch.arange(5)[None] < torch.tensor([5, 2, 1])[:, None])
    assert widths == [8] + [5, 8, 8] * 2  # the input; per block: weights over 5 positions, two d-wide outputs
    assert 16 not in widths


def test_dropout_keeps_the_expectation_and_drops_the_asked_share():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.3, training=True)
    values = y.unique()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.7, rel=1e-4)  # p on a 2^-16 grid
    assert abs(float((y == 0).float().mean()) - 0.3) < 0.005
    assert abs(float(y.mean()) - 1.0) < 0.01
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0, training=True) is x


@pytest.mark.parametrize("shape", [(7,), (3, 5, 2)])  # sizes that are not a multiple of the four lanes of a word
def test_dropout_masks_are_independent_fair_draws_of_any_shape(shape):
    torch.manual_seed(2)
    x = torch.ones(shape)
    y = dropout(x, 0.5, training=True)
    assert y.shape == x.shape and set(y.unique().tolist()) <= {0.0, 2.0}
    many = torch.stack([dropout(torch.ones(4000), 0.5, training=True) for _ in range(10)])
    kept = many != 0
    assert abs(float(kept.float().mean()) - 0.5) < 0.01
    for lane in range(4):  # each 16-bit lane of a random word is a fair draw
        assert abs(float(kept[:, lane::4].float().mean()) - 0.5) < 0.02
    pairs = (kept[:, 0::2] & kept[:, 1::2]).float().mean()  # neighbours (lanes of one word) independent
    assert abs(float(pairs) - 0.25) < 0.015
    assert not (dropout(torch.ones(10), 0.9999999, training=True)).any()


def test_dropout_backward_passes_the_gradient_through_kept_entries_only():
    torch.manual_seed(1)
    x = torch.randn(1000, requires_grad=True)
    y = dropout(x, 0.5, training=True)
    y.sum().backward()
    kept = y != 0
    torch.testing.assert_close(x.grad[kept], torch.full((int(kept.sum()),), 2.0))
    assert torch.count_nonzero(x.grad[~kept]) == 0


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
    assert model.items.id_embedding.weight.grad.abs().sum() > 0
    assert model.items.text_projection.weight.grad.abs().sum() > 0
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
    logits = h @ table[: graph.num_items].t() / cfg.train.temperature
    log_p = torch.log_softmax(logits, dim=1)
    expected = -(log_p[0, 2] + log_p[0, 3] + log_p[1, 3]) / 3
    torch.testing.assert_close(terms["later_items"], expected)
    torch.testing.assert_close(terms["next_item"], -(log_p[0, 1] + log_p[1, 2] + log_p[2, 3]) / 3)


def test_future_one_is_the_plain_next_item_loss(graph):
    cfg = config("sasrec")
    assert cfg.sequence.future == 1, "the default is SASRec's objective"
    model = build_model(cfg, graph).eval()
    assert set(model.sequence_loss(graph, torch.tensor([[0, 1, 2]]), torch.tensor([[1, 2, 3]]), torch.tensor([3]))) == {"next_item"}


def test_item_table_reads_the_text_rows_of_the_graph_it_is_given(graph):
    """Same edges, other descriptions (``has_text``): the rows with text follow the new graph."""
    import dataclasses

    table = SequenceItemTable(graph, 8, use_id=False, use_text=True, use_kg=False, layers=0)
    table.inputs(graph)
    all_text = dataclasses.replace(graph, has_text=torch.ones_like(graph.has_text), features=graph.features + 1.0)
    torch.testing.assert_close(table.inputs(all_text), table.text_projection(all_text.features[table.nodes]))
