"""The model registry and the contract's shared parts: building, the CF head, the KG head."""

from __future__ import annotations

import pytest
import torch

from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
from kgrec.errors import KgrecError
from kgrec.models.base import Recommender, count_parameters
from kgrec.models.lightgcn import KGLightGCN
from kgrec.models.registry import MODELS, build_model
from kgrec.models.relational import RelationalEncoder


def config(**model) -> ExperimentConfig:
    return ExperimentConfig(model=ModelConfig(**model))


#: The models trained on user-item pairs (the sequential ones have tests of their own).
GRAPH_MODELS = sorted(n for n, cls in MODELS.items() if not getattr(cls, "sequential", False))
#: Settings each model needs beyond the defaults (CKE does not propagate).
NEEDS = {"cke": {"layers": 0}}
#: Width of the final embeddings per unit of model.dim (KGAT concatenates its layers).
WIDTH = {"kgat": lambda layers: layers + 1}


@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_registry_builds_every_named_model(graph, name):
    from kgrec.models.cke import _NoPropagation
    from kgrec.models.kgat import KGATEncoder
    from kgrec.models.kgcl import KGCLEncoder
    from kgrec.models.kgin import KGINEncoder

    model = build_model(config(**{"encoder": name, "dim": 8, "layers": 2, "heads": 2, **NEEDS.get(name, {})}), graph)
    assert isinstance(model, MODELS[name]) and isinstance(model, Recommender)
    expected = {"lightgcn": KGLightGCN, "relational": RelationalEncoder, "cke": _NoPropagation,
                "kgat": KGATEncoder, "kgin": KGINEncoder, "kgcl": KGCLEncoder}[name]
    assert isinstance(model.encoder, expected)
    relations = model.encoder.relation if name in ("kgat", "kgcl") else model.relation_embedding
    assert relations.num_embeddings == graph.num_relations
    emb = model.encode(graph)
    width = 8 * WIDTH.get(name, lambda layers: 1)(2)
    assert emb.final.shape == (graph.num_nodes, width) and emb.layer0.shape == (graph.num_nodes, 8)
    assert emb.user_table().shape == (graph.num_users, width) and emb.item_table().shape == (graph.num_items, width)
    assert count_parameters(model) > 0


def test_settings_pass_through(graph):
    model = build_model(
        config(encoder="relational", dim=6, layers=4, heads=3, dropout=0.2, edge_dropout=0.1, use_kg=False, use_text=False),
        graph,
    )
    assert len(model.encoder.convs) == 4 and model.encoder.dropout == 0.2
    assert model.encoder.convs[0].heads == 3 and model.encoder.convs[0].attention_dropout == 0.1
    assert model.encoder.use_kg is False and model.node_input.uses_text is False
    lgcn = build_model(config(encoder="lightgcn", layers=1, edge_dropout=0.3), graph)
    assert lgcn.encoder.num_layers == 1 and lgcn.encoder.edge_dropout == 0.3


@pytest.mark.parametrize("name", ["gcnn", "rgat", "kgcn", "LightGCN "])
def test_unknown_model_lists_the_known_ones(graph, name):
    with pytest.raises(KgrecError, match=f"model.encoder = '{name}'.*known: lightgcn, relational, cke, kgat, kgin, kgcl"):
        build_model(config(encoder=name), graph)


@pytest.mark.parametrize(
    "changes,key",
    [({"dim": 0}, "model.dim"), ({"layers": -1}, "model.layers"),
     ({"dropout": 1.0}, "model.dropout"), ({"edge_dropout": -0.1}, "model.edge_dropout"),
     ({"encoder": "relational", "dim": 10, "heads": 3}, "model.heads"),
     ({"encoder": "lightgcn", "dropout": 0.1}, "model.dropout")],
)
def test_invalid_settings_name_their_key(graph, changes, key):
    with pytest.raises(KgrecError, match=key):
        build_model(config(**changes), graph)


def test_settings_a_model_cannot_honour_are_refused(graph):
    contrast = ExperimentConfig(model=ModelConfig(encoder="relational"), train=TrainConfig(contrast_weight=0.1))
    with pytest.raises(KgrecError, match="train.contrast_weight.*per-layer"):
        build_model(contrast, graph)
    sampled = ExperimentConfig(model=ModelConfig(encoder="relational"), train=TrainConfig(sampler="neighbor"))
    with pytest.raises(KgrecError, match='train.sampler = "neighbor"'):
        build_model(sampled, graph)


@pytest.mark.parametrize("batch,num_candidates,dim", [(1, None, 3), (5, None, 8), (4, 7, 8)])
def test_dot_is_a_dot_product(batch, num_candidates, dim):
    users = torch.randn(batch, dim)
    items = torch.randn(batch, dim) if num_candidates is None else torch.randn(batch, num_candidates, dim)
    scores = Recommender.dot(users, items)
    if num_candidates is None:
        expected = torch.stack([users[b] @ items[b] for b in range(batch)])
    else:
        expected = torch.stack(
            [torch.stack([users[b] @ items[b, j] for j in range(num_candidates)]) for b in range(batch)]
        )
    torch.testing.assert_close(scores, expected)


def test_full_scores_agree_with_pair_scores(graph):
    model = build_model(config(dim=8), graph)
    emb = model.infer(graph)
    torch.testing.assert_close(emb.user_table(), emb.final[: graph.num_users])
    torch.testing.assert_close(emb.item_table(), emb.final[graph.num_users : graph.num_users + graph.num_items])
    full = model.full_scores(torch.tensor([1, 2]), emb)
    assert full.shape == (2, graph.num_items)
    pairs = model.scores(torch.tensor([1, 2]), torch.tensor([2, 0]), emb)
    torch.testing.assert_close(torch.stack([full[0, 2], full[1, 0]]), pairs)


def test_kg_score_is_distmult(graph):
    model = build_model(config(dim=4), graph)
    with torch.no_grad():
        model.relation_embedding.weight.normal_()
    h, t = torch.randn(3, 4), torch.randn(3, 2, 4)
    rels = torch.tensor([0, 2, 5])
    r = model.relation_embedding.weight[rels]
    expected = torch.stack([torch.stack([(h[b] * r[b] * t[b, j]).sum() for j in range(2)]) for b in range(3)])
    torch.testing.assert_close(model.kg_score(h, rels, t), expected)
    torch.testing.assert_close(model.kg_score(h, rels, t[:, 0]), expected[:, 0])


def test_untrained_kg_score_equals_cf_score(graph):
    model = build_model(config(dim=4), graph)
    h, t = torch.randn(5, 4), torch.randn(5, 4)
    torch.testing.assert_close(model.kg_score(h, torch.zeros(5, dtype=torch.long), t), model.dot(h, t))


@pytest.mark.parametrize("encoder", GRAPH_MODELS)
def test_training_step_reaches_the_inputs(graph, encoder):
    model = build_model(config(**{"encoder": encoder, "dim": 8, "layers": 2, **NEEDS.get(encoder, {})}), graph)
    emb = model.encode(graph)
    model.scores(torch.tensor([0, 1]), torch.tensor([0, 1]), emb).sum().backward()
    assert model.node_input.id_embedding.weight.grad.abs().sum() > 0
    assert model.node_input.text_projection.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder", GRAPH_MODELS)
def test_runs_under_autocast(graph, encoder):
    dropout = 0.0 if encoder in ("lightgcn", "cke", "kgcl") else 0.1
    edge_dropout = 0.0 if encoder in ("cke", "kgat") else 0.2
    model = build_model(config(**{"encoder": encoder, "dim": 8, "dropout": dropout, "edge_dropout": edge_dropout, **NEEDS.get(encoder, {})}), graph)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = model.encode(graph)
        scores = model.dot_scores(torch.arange(graph.num_users), emb)
    assert torch.isfinite(scores.float()).all()
    scores.float().sum().backward()
    assert model.node_input.id_embedding.weight.grad is not None


def test_the_kg_models_say_they_need_knowledge():
    """A graph without knowledge edges is refused before training for these (tests/models/test_cke.py
    shows the refusal through ``kgrec train``)."""
    assert {name for name, cls in MODELS.items() if cls.needs_knowledge} == {"cke", "kgat", "kgin", "kgcl"}
