"""Recommender and build_model: the factory, the CF head and the KG head."""

from __future__ import annotations

import pytest
import torch

from kgrec.config import ModelConfig
from kgrec.errors import KgrecError
from kgrec.models.lightgcn import KGLightGCN
from kgrec.models.recommender import ENCODERS, Recommender, build_model, count_parameters
from kgrec.models.relational import RelationalEncoder


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_factory_builds_every_named_encoder(graph, name):
    model = build_model(ModelConfig(encoder=name, dim=8, layers=2, heads=2), graph)
    expected = KGLightGCN if ENCODERS[name] == "lightgcn" else RelationalEncoder
    assert isinstance(model.encoder, expected)
    assert model.relation_embedding.num_embeddings == graph.num_relations
    final, layer0 = model(graph)
    assert final.shape == layer0.shape == (graph.num_nodes, 8)
    assert count_parameters(model) > 0


def test_factory_passes_settings_through(graph):
    model = build_model(
        ModelConfig(encoder="RGAT", dim=6, layers=4, heads=3, dropout=0.2, edge_dropout=0.1,
                    use_kg=False, use_text=False),
        graph,
    )
    assert len(model.encoder.convs) == 4 and model.encoder.dropout == 0.2
    assert model.encoder.convs[0].heads == 3 and model.encoder.convs[0].attention_dropout == 0.1
    assert model.encoder.use_kg is False and model.node_input.uses_text is False
    lgcn = build_model(ModelConfig(encoder="lightgcn", layers=1, edge_dropout=0.3), graph)
    assert lgcn.encoder.num_layers == 1 and lgcn.encoder.edge_dropout == 0.3


def test_unknown_encoder_lists_the_known_ones(graph):
    with pytest.raises(KgrecError, match="unknown model.encoder 'gcnn'.*lightgcn.*relational"):
        build_model(ModelConfig(encoder="gcnn"), graph)


@pytest.mark.parametrize(
    "changes,key",
    [({"dim": 0}, "model.dim"), ({"layers": -1}, "model.layers"),
     ({"dropout": 1.0}, "model.dropout"), ({"edge_dropout": -0.1}, "model.edge_dropout"),
     ({"encoder": "rgcn", "dim": 10, "heads": 3}, "model.heads")],
)
def test_invalid_settings_name_their_key(graph, changes, key):
    with pytest.raises(KgrecError, match=key):
        build_model(ModelConfig(**changes), graph)


@pytest.mark.parametrize("batch,num_candidates,dim", [(1, None, 3), (5, None, 8), (4, 7, 8)])
def test_score_is_a_dot_product(batch, num_candidates, dim):
    users = torch.randn(batch, dim)
    items = torch.randn(batch, dim) if num_candidates is None else torch.randn(batch, num_candidates, dim)
    scores = Recommender.score(users, items)
    if num_candidates is None:
        expected = torch.stack([users[b] @ items[b] for b in range(batch)])
    else:
        expected = torch.stack(
            [torch.stack([users[b] @ items[b, j] for j in range(num_candidates)]) for b in range(batch)]
        )
    torch.testing.assert_close(scores, expected)


def test_full_scores_match_score(graph):
    model = build_model(ModelConfig(dim=8), graph)
    emb, _ = model(graph)
    users, items = model.user_item(emb, graph)
    assert users.shape == (graph.num_users, 8) and items.shape == (graph.num_items, 8)
    torch.testing.assert_close(users, emb[: graph.num_users])
    torch.testing.assert_close(items, emb[graph.num_users : graph.num_users + graph.num_items])
    full = model.full_scores(users, items)
    torch.testing.assert_close(full[1, 2], model.score(users[1:2], items[2:3])[0])


def test_kg_score_is_distmult(graph):
    model = build_model(ModelConfig(dim=4), graph)
    with torch.no_grad():
        model.relation_embedding.weight.normal_()
    h, t = torch.randn(3, 4), torch.randn(3, 2, 4)
    rels = torch.tensor([0, 2, 5])
    r = model.relation_embedding.weight[rels]
    expected = torch.stack([torch.stack([(h[b] * r[b] * t[b, j]).sum() for j in range(2)]) for b in range(3)])
    torch.testing.assert_close(model.kg_score(h, rels, t), expected)
    torch.testing.assert_close(model.kg_score(h, rels, t[:, 0]), expected[:, 0])


def test_untrained_kg_score_equals_cf_score(graph):
    model = build_model(ModelConfig(dim=4), graph)
    h, t = torch.randn(5, 4), torch.randn(5, 4)
    torch.testing.assert_close(model.kg_score(h, torch.zeros(5, dtype=torch.long), t), model.score(h, t))


@pytest.mark.parametrize("encoder", ["lightgcn", "relational"])
def test_training_step_reaches_the_inputs(graph, encoder):
    model = build_model(ModelConfig(encoder=encoder, dim=8, layers=2), graph)
    emb, layer0 = model(graph)
    users, items = model.user_item(emb, graph)
    model.score(users[:2], items[:2]).sum().backward()
    assert model.node_input.id_embedding.weight.grad.abs().sum() > 0
    assert model.node_input.text_projection.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder", ["lightgcn", "relational"])
def test_runs_under_autocast(graph, encoder):
    model = build_model(ModelConfig(encoder=encoder, dim=8, dropout=0.1, edge_dropout=0.2), graph)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb, layer0 = model(graph)
        users, items = model.user_item(emb, graph)
        scores = model.score(users, items[: graph.num_users])
    assert torch.isfinite(scores.float()).all()
    scores.float().sum().backward()
    assert model.node_input.id_embedding.weight.grad is not None
