"""The scene parts and what fine-tuning freezes."""

from __future__ import annotations

import pytest
import torch

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.models.registry import build_model
from kgrec.models.scenes import SceneParts, SceneRecommender


@pytest.fixture
def scene_model(make_graph_fn):
    return lambda encoder="lightgcn": _scene_model(make_graph_fn(), encoder)


def _scene_model(g, encoder: str) -> tuple[SceneRecommender, object]:
    cfg = ExperimentConfig()
    cfg.model.encoder = encoder
    cfg.model.dim = 8
    cfg.model.layers = 2
    cfg.model.item_item = "none"
    torch.manual_seed(0)
    base = build_model(cfg, g)
    return SceneRecommender(base, SceneParts(2, 8, g.num_items)), g


def grads_after_one_step(model: SceneRecommender, g, what: str) -> dict[str, torch.Tensor | None]:
    model.freeze(what)
    model.zero_grad(set_to_none=True)
    users, pos, neg, scenes = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([[3], [0], [1]]), torch.tensor([0, 1, 1])
    # non-zero scene parts, so that every parameter lies on the path of the loss
    with torch.no_grad():
        model.parts.adapter.normal_(0, 0.1)
    sum(model.loss(users, pos, neg, scenes, model.encode(g)).values()).backward()
    return {name: p.grad for name, p in model.named_parameters()}


def nonzero(grad) -> bool:
    return grad is not None and bool(grad.abs().sum() > 0)


@pytest.mark.parametrize("encoder", ["lightgcn", "relational"])
def test_freeze_shared_trains_only_the_scene_parts(encoder, scene_model):
    model, g = scene_model(encoder)
    grads = grads_after_one_step(model, g, "shared")
    for name, grad in grads.items():
        assert nonzero(grad) == name.startswith("parts.") or (name == "parts.item_bias" and grad is not None), name
        if not name.startswith("parts."):
            assert grad is None, name


def test_freeze_top_trains_the_id_embeddings_and_the_scene_parts(scene_model):
    model, g = scene_model("relational")
    grads = grads_after_one_step(model, g, "top")
    trained = {name for name, grad in grads.items() if grad is not None}
    assert trained == {"base.node_input.id_embedding.weight", "parts.adapter", "parts.offset", "parts.item_bias"}
    assert any(n.startswith("base.encoder.") for n in grads)  # the relational encoder has weights, left frozen
    assert "base.node_input.text_projection.weight" in grads


def test_freeze_none_trains_everything_on_the_loss_path(scene_model):
    model, g = scene_model("relational")
    grads = grads_after_one_step(model, g, "none")
    assert all(p.requires_grad for p in model.parameters())
    assert nonzero(grads["base.node_input.id_embedding.weight"]) and nonzero(grads["parts.adapter"])
    assert any(nonzero(grad) for name, grad in grads.items() if name.startswith("base.encoder."))


def test_an_unknown_freeze_choice_is_refused(scene_model):
    model, _ = scene_model()
    with pytest.raises(KgrecError, match="scenes.freeze"):
        model.freeze("bottom")


def test_fresh_scene_parts_score_like_the_shared_model(scene_model):
    model, g = scene_model()
    emb = model.infer(g)
    users = torch.arange(3)
    expected = emb.user(users) @ emb.item_table().t()
    for scene in (0, 1):
        assert torch.allclose(model.scene_scores(users, scene, emb), expected)
    items = torch.tensor([[0, 1], [2, 3], [1, 0]])
    assert torch.allclose(model.pair_scores(users, items, torch.tensor([0, 1, 1]), emb), expected.gather(1, items))


def test_the_adapter_moves_users_per_scene():
    parts = SceneParts(2, 2, 3, item_bias=False)
    with torch.no_grad():
        parts.adapter[1] = torch.tensor([[-1.0, 1.0], [1.0, -1.0]])  # scene 1 swaps the two tastes
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert parts.user(z, torch.tensor([0, 1])).tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_a_clone_trains_apart_from_the_original(scene_model):
    model, g = scene_model()
    model.encode(g)  # fills the encoder's per-graph cache (a sparse tensor deepcopy cannot copy)
    copy_ = model.clone()
    with torch.no_grad():
        copy_.parts.offset.add_(1.0)
    assert float(model.parts.offset.detach().abs().sum()) == 0.0
    assert torch.allclose(copy_.encode(g).final, model.encode(g).final)


def test_one_scenes_parts_are_saved_reset_and_restored():
    parts = SceneParts(3, 2, 4)
    with torch.no_grad():
        for q in parts.parameters():
            q.normal_()
    saved = parts.scene_state(1)
    expected = [q.detach().clone() for q in parts.parameters()]
    assert float(parts.squared_norm().detach()) == pytest.approx(sum(float(q.square().sum()) for q in expected))
    parts.reset()
    assert float(parts.squared_norm().detach()) == 0.0
    parts.load_scene(1, saved)
    for q, e in zip(parts.parameters(), expected):
        assert torch.equal(q[1], e[1]) and not q[0].any() and not q[2].any()
    parts.load_scene(1, None)
    assert float(parts.squared_norm().detach()) == 0.0


def test_the_loss_pulls_the_scene_parts_toward_zero_and_skips_a_frozen_layer0(scene_model):
    model, g = scene_model()
    users, pos, neg, scenes = torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([[2], [3]]), torch.tensor([0, 1])
    with torch.no_grad():
        model.parts.offset.fill_(0.5)
    terms = model.loss(users, pos, neg, scenes, model.encode(g), parts_l2=0.1)
    assert set(terms) == {"cf", "reg", "parts"}
    assert float(terms["parts"].detach()) == pytest.approx(0.1 * 2 * 8 * 0.25)
    with torch.no_grad():  # the shared model frozen: its embeddings carry no autograd, no L2 on them
        emb = model.encode(g)
    assert set(model.loss(users, pos, neg, scenes, emb)) == {"cf"}
