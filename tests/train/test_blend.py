"""The item-item blend: chosen on validation after training, saved with the weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kgrec.config import ExperimentConfig
from kgrec.graph.useritem import UserItemSets
from kgrec.models.item_item import ItemItemView
from kgrec.models.base import Embeddings, Recommender
from kgrec.runs import load_run, train_run
from kgrec.train.blend import SHARES, select_blend


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory, click_graph):
    """Users in 4 taste groups over 40 items: co-occurrence says a lot, for EASE to find."""
    rng = np.random.default_rng(1)
    clicks = []
    for u in range(60):
        items = rng.choice([i for i in range(40) if i % 4 == u % 4], size=7, replace=False)
        clicks += [(u, i, t) for t, i in enumerate(items)]
    return click_graph(tmp_path_factory.mktemp("g") / "g", clicks, num_items=40, genres=5)


def config(item_item="ease") -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.model.use_text = False
    cfg.model.dim = 8
    cfg.model.layers = 1
    cfg.model.item_item = item_item
    cfg.model.item_item_l2 = 2.0
    cfg.train.epochs = 3
    cfg.train.batch_size = 64
    cfg.train.lr = 0.01
    return cfg


def quiet(*_):
    return None


def test_blend_is_chosen_on_validation_and_saved(graph_dir, tmp_path):
    res = train_run(graph_dir, config(), tmp_path / "r", progress=False, log=quiet)
    record = res["item_item"]
    assert record["kind"] == "ease" and record["l2"] == 2.0
    tried = {float(k): v for k, v in record["tried"].items()}
    assert sorted(tried) == list(SHARES)
    assert res["valid"]["ndcg@20"] == max(tried.values()) == tried[record["share"]]
    assert res["valid"]["ndcg@20"] >= record["valid_dot_only"]["ndcg@20"]  # share 0 is a candidate
    assert tried[0.0] == pytest.approx(record["valid_dot_only"]["ndcg@20"], abs=1e-9)
    # the weights on disk carry the blend: a reloaded run ranks as the run was scored
    run = load_run(tmp_path / "r", device="cpu")
    assert float(run.model.item_item.blend) == pytest.approx(record["blend"])
    assert run.evaluate("test")["ndcg@20"] == pytest.approx(res["test"]["ndcg@20"], abs=1e-6)
    assert run.evaluate("valid")["ndcg@20"] == pytest.approx(res["valid"]["ndcg@20"], abs=1e-6)


def test_same_seed_same_blend(graph_dir, tmp_path):
    a = train_run(graph_dir, config(), tmp_path / "a", progress=False, log=quiet)
    b = train_run(graph_dir, config(), tmp_path / "b", progress=False, log=quiet)
    assert a["item_item"]["share"] == b["item_item"]["share"]
    assert a["item_item"]["blend"] == pytest.approx(b["item_item"]["blend"], rel=1e-5)
    for key, value in a["test"].items():
        assert b["test"][key] == pytest.approx(value, abs=1e-6), key


def test_training_is_the_same_with_or_without_the_view(graph_dir, tmp_path):
    """The view only enters after training: the per-epoch validation curve is unchanged."""
    with_view = train_run(graph_dir, config(), tmp_path / "a", progress=False, log=quiet)
    without = train_run(graph_dir, config("none"), tmp_path / "b", progress=False, log=quiet)
    curve = lambda p: [json.loads(line) for line in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    a, b = curve(tmp_path / "a"), curve(tmp_path / "b")
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):  # equal up to the order of float sums across threads (as in test_loop)
        assert x["epoch"] == y["epoch"]
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
        assert x["valid_ndcg@20"] == pytest.approx(y["valid_ndcg@20"], abs=1e-6)
    assert with_view["item_item"]["valid_dot_only"]["ndcg@20"] == pytest.approx(without["valid"]["ndcg@20"], abs=1e-9)


def _model(view, user_emb, item_emb):
    """A bare recommender holding the view, and embeddings for it: what select_blend uses."""
    final = torch.cat([user_emb, item_emb])
    return Recommender(user_emb.size(0), item_emb.size(0), item_item=view), Embeddings(final, final, user_emb.size(0), item_emb.size(0))


def _sets(users=20, items=10):
    train = UserItemSets.from_pairs([u for u in range(users) for k in range(3)], [(u + k) % items for u in range(users) for k in range(3)], users, items)
    valid = UserItemSets.from_pairs(list(range(users)), [(u + 3) % items for u in range(users)], users, items)
    return train, valid


def test_a_view_without_signal_is_switched_off():
    train, valid = _sets()
    view = ItemItemView(torch.zeros(10, 10), train)
    user_emb, item_emb = torch.randn(20, 4, generator=torch.Generator().manual_seed(0)), torch.randn(10, 4)
    model, emb = _model(view, user_emb, item_emb)
    record = select_blend(model, emb, valid, train, "ndcg@10", [10], 8)
    assert record["share"] == 0.0 and record["blend"] == 0.0 and float(view.blend) == 0.0


def test_an_informative_view_wins_over_useless_embeddings():
    """Each user's next item follows their last one: EASE learns it, zero embeddings cannot."""
    train, valid = _sets()
    view = ItemItemView.fit(train, 0.5)
    model, emb = _model(view, torch.zeros(20, 4), torch.zeros(10, 4) + 1e-3 * torch.arange(10.0)[:, None])
    record = select_blend(model, emb, valid, train, "ndcg@10", [10], 8)
    assert record["share"] > 0.0 and float(view.blend) == record["blend"] > 0.0
    assert record["valid"]["ndcg@10"] > record["tried"][0.0]


def test_a_catalogue_too_large_for_the_view_is_refused_before_anything_is_written(graph_dir, tmp_path, monkeypatch):
    from kgrec.errors import KgrecError
    from kgrec.models import item_item

    monkeypatch.setattr(item_item, "MAX_ITEMS", 10)
    with pytest.raises(KgrecError, match="40 items is more than the 10"):
        train_run(graph_dir, config(), tmp_path / "r", progress=False, log=quiet)
    assert not (tmp_path / "r").exists()


def test_recommendations_rank_with_the_blend(graph_dir, tmp_path):
    """Top-20 lists scored by hand give the run's test recall: recommend uses the same scores."""
    train_run(graph_dir, config(), tmp_path / "r", progress=False, log=quiet)
    run = load_run(tmp_path / "r", device="cpu")
    assert float(run.model.item_item.blend) > 0.0  # otherwise this checks nothing new
    recs = run.recommend(k=20)
    test = run.split.test.assign(user=lambda d: run.kg.nodes["user"]["id"].to_numpy()[d["user"]],
                                 item=lambda d: run.kg.nodes["item"]["id"].to_numpy()[d["item"]])
    hits = recs.merge(test, on=["user", "item"]).groupby("user").size()
    recall = (hits / test.groupby("user").size()).fillna(0.0).mean()
    assert recall > 0.0 and recall == pytest.approx(run.evaluate("test")["recall@20"], abs=1e-9)
