"""EASE's item-item weights and the view that blends them into the recommender's scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from kgrec.config import ExperimentConfig, ModelConfig
from kgrec.errors import KgrecError
from kgrec.graph.useritem import UserItemSets
from kgrec.models import item_item
from kgrec.models.item_item import ItemItemView, build_item_item, ease_weights
from kgrec.models.base import Embeddings
from kgrec.models.registry import build_model

from .conftest import make_graph


def random_history(users=30, items=12, density=0.3, seed=0) -> tuple[UserItemSets, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.random((users, items)) < density).astype(np.float64)
    u, i = np.nonzero(x)
    return UserItemSets.from_pairs(u, i, users, items), x


def test_ease_solves_its_constrained_ridge_regression():
    """KKT conditions of min ||X - XB||^2 + l2 ||B||^2 s.t. diag(B) = 0, checked directly.

    The gradient (X'X + l2 I) B - X'X must vanish off the diagonal (the diagonal is where the
    constraint's multipliers act), and B's diagonal must be zero.
    """
    history, x = random_history()
    b = ease_weights(history, 5.0).double().numpy()
    assert np.allclose(np.diag(b), 0.0)
    gram = x.T @ x
    gradient = (gram + 5.0 * np.eye(len(gram))) @ b - gram
    off = ~np.eye(len(gram), dtype=bool)
    assert np.abs(gradient[off]).max() < 1e-4


def test_ease_shrinks_with_l2():
    history, _ = random_history()
    small, large = ease_weights(history, 1.0), ease_weights(history, 1000.0)
    assert large.abs().sum() < small.abs().sum()


def test_gram_accumulates_over_user_blocks(monkeypatch):
    history, _ = random_history(users=50)
    whole = ease_weights(history, 3.0)
    monkeypatch.setattr(item_item, "_GRAM_BLOCK", 7)
    assert torch.allclose(ease_weights(history, 3.0), whole, atol=1e-6)


@pytest.mark.parametrize("l2", [0.0, -1.0, float("nan")])
def test_l2_must_be_positive(l2):
    history, _ = random_history()
    with pytest.raises(KgrecError, match="item_item_l2 must be positive"):
        ease_weights(history, l2)


def test_large_catalogue_is_refused_with_the_key_to_change(monkeypatch):
    history, _ = random_history(items=12)
    monkeypatch.setattr(item_item, "MAX_ITEMS", 10)
    with pytest.raises(KgrecError, match='12 items is more than the 10.*model.item_item = "none"'):
        ease_weights(history, 1.0)


def test_view_scores_are_history_times_weights():
    history, x = random_history()
    view = ItemItemView.fit(history, 2.0)
    users = torch.tensor([0, 5, 29])
    expected = torch.as_tensor(x[[0, 5, 29]], dtype=torch.float32) @ view.weights
    assert torch.allclose(view(users), expected, atol=1e-5)
    # a new user who liked items 1 and 3 (given twice): the sum of those rows, counted once
    assert torch.allclose(view.for_items(torch.tensor([3, 1, 3])), view.weights[1] + view.weights[3])


def test_only_the_blend_is_saved_and_the_weights_move_with_the_module(tmp_path):
    history, _ = random_history()
    view = ItemItemView.fit(history, 2.0)
    assert set(view.state_dict()) == {"blend"}
    view.blend.fill_(0.25)
    save_file(view.state_dict(), str(tmp_path / "w.safetensors"))
    again = ItemItemView.fit(history, 2.0)
    again.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    assert float(again.blend) == 0.25
    view.double()
    assert view.weights.dtype == torch.float64


def test_build_item_item_names():
    history, _ = random_history()
    assert build_item_item("none", history, 1.0) is None
    assert isinstance(build_item_item("EASE", history, 1.0), ItemItemView)
    with pytest.raises(KgrecError, match="model.item_item = 'slim' is not one of: none, ease"):
        build_item_item("slim", history, 1.0)


def test_config_names_a_bad_view():
    g = make_graph(with_features=False)
    with pytest.raises(KgrecError, match="model.item_item = 'slim' is not one of: none, ease"):
        build_model(ExperimentConfig(model=ModelConfig(item_item="slim", use_text=False)), g)
    with pytest.raises(KgrecError, match="item_item_l2 must be positive"):
        build_model(ExperimentConfig(model=ModelConfig(item_item="ease", item_item_l2=0.0, use_text=False)), g)


def test_full_scores_add_the_blended_view_and_leave_added_items_alone():
    g = make_graph(with_features=False)
    config = ExperimentConfig(model=ModelConfig(dim=8, use_text=False))
    history = UserItemSets.from_pairs([0, 0, 1, 2], [0, 1, 2, 3], g.num_users, g.num_items)
    users = torch.arange(g.num_users)
    final = torch.randn(g.num_nodes + 2, 8)  # 2 cold items added after the entities
    catalogue = torch.cat([torch.arange(g.num_users, g.num_users + g.num_items), torch.tensor([g.num_nodes, g.num_nodes + 1])])
    emb = Embeddings(final, final, g.num_users, g.num_items, item_nodes=catalogue)
    item_emb = final[catalogue]
    dot = final[: g.num_users] @ item_emb.T
    assert torch.equal(build_model(config, g).full_scores(users, emb), dot)  # no view
    model = build_model(config, g, item_item=ItemItemView.fit(history, 1.0))
    assert torch.equal(model.full_scores(users, emb), dot)  # blend 0: the dot product
    model.item_item.blend.fill_(2.0)
    scores = model.full_scores(users, emb)
    prior = model.item_item(users)
    assert torch.allclose(scores[:, : g.num_items], dot[:, : g.num_items] + 2.0 * prior)
    assert torch.equal(scores[:, g.num_items :], dot[:, g.num_items :])
    vector = torch.randn(8)
    liked = model.vector_scores(vector, emb, liked=[0, 1])
    assert torch.allclose(liked[: g.num_items], item_emb[: g.num_items] @ vector + 2.0 * model.item_item.for_items(torch.tensor([0, 1])))
    assert torch.allclose(model.vector_scores(vector, emb), item_emb @ vector)  # nothing liked: no view


def test_a_remembering_view_computes_each_batch_once_and_gives_the_same_scores(monkeypatch):
    history, _ = random_history()
    view = ItemItemView.fit(history, 5.0)
    users = torch.arange(0, 10)
    calls = []
    dense_rows = history.dense_rows
    monkeypatch.setattr(view.history, "dense_rows", lambda u: calls.append(1) or dense_rows(u))
    expected = view(users)
    with view.remembering():
        first = view(users)
        with view.remembering():  # nested: the same memory
            again = view(users)
        also = view(users)
        other = view(torch.arange(10, 20))
    assert torch.equal(first, expected) and again is first and also is first and other.shape == (10, 12)
    assert len(calls) == 3  # before, once inside for users 0-9, once for 10-19
    view(users)
    assert len(calls) == 4  # outside, nothing is remembered
    monkeypatch.setattr(item_item, "MEMO_CELLS", 50)  # too big to keep: computed every time
    with view.remembering():
        view(users), view(users)
    assert len(calls) == 6
