"""The cold-start-user protocol: users held out, then served from 0, 1, 3 or 5 interactions."""

from __future__ import annotations

import json

import pytest

from kgrec.bench.coldstart import run_cold_start
from kgrec.bench.coldstart_users import REVEAL, choose_cold_users, drop_users, reveal_order
from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
from kgrec.errors import KgrecError
from kgrec.graph.build import build_graph
from kgrec.graph.store import save_graph


@pytest.fixture(scope="module")
def tiny_kg(tiny_helper):
    return build_graph(tiny_helper.tiny_tables(), name="tiny")


def test_cold_users_have_enough_interactions_and_are_seeded(tiny_kg):
    counts = tiny_kg.interactions.groupby("user").size()
    chosen = choose_cold_users(tiny_kg, 0.25, seed=1)
    assert len(chosen) == 6 and all(counts[u] > REVEAL for u in chosen)
    assert chosen == choose_cold_users(tiny_kg, 0.25, seed=1) != choose_cold_users(tiny_kg, 0.25, seed=2)
    with pytest.raises(KgrecError, match="fraction must be in"):
        choose_cold_users(tiny_kg, 0.0)


def test_drop_users_removes_their_interactions_and_edges_only(tiny_kg):
    gone = choose_cold_users(tiny_kg, 0.25, seed=1)
    warm = drop_users(tiny_kg, gone)
    assert warm.num_users == tiny_kg.num_users and warm.num_items == tiny_kg.num_items  # nothing renumbered
    assert not warm.interactions["user"].isin(gone).any()
    assert len(warm.interactions) == (~tiny_kg.interactions["user"].isin(gone)).sum()
    for et in warm.data.edge_types:
        if et[0] == "user":
            assert not set(warm.data[et].edge_index[0].tolist()) & set(gone)
    assert warm.data["item", "genre", "Genre"].edge_index.size(1) == tiny_kg.data["item", "genre", "Genre"].edge_index.size(1)


def test_reveal_order_is_time_order(tiny_kg):
    users = choose_cold_users(tiny_kg, 0.25, seed=1)
    order = reveal_order(tiny_kg, users, seed=0)
    inter = tiny_kg.interactions
    for u in users:
        times = inter[inter["user"] == u].set_index("item")["timestamp"]
        assert list(times.loc[order[u]]) == sorted(times)  # the tiny log's times are distinct per user


def test_protocol_serves_cold_users_better_than_popularity(tiny_kg, tiny_helper, tmp_path):
    save_graph(tiny_kg, tmp_path / "graph")
    config = ExperimentConfig(
        model=ModelConfig(dim=16, layers=2, use_text=False),
        train=TrainConfig(epochs=12, batch_size=64, lr=0.02, patience=12, device="cpu"),
    )
    quiet = dict(encoder=tiny_helper.HashingEncoder(), progress=False, log=lambda *_: None)
    result = run_cold_start(tmp_path / "graph", config, tmp_path / "work", fraction=0.25, seed=1, parts=("users",), **quiet)
    assert result.items == {} and list(result.users) == ["k0", "k1", "k3", "k5"]
    users = {t["num_users"].iloc[0] for t in result.users.values()}
    assert users == {6}  # the same users, candidates and truth in every setting
    k5 = result.users["k5"]
    assert {"popularity", "text cosine", "kgrec (fold-in)"} == set(k5.index)
    # the tiny users like one genre each: five revealed items tell it, popularity cannot
    assert k5.loc["kgrec (fold-in)", "ndcg@20"] > k5.loc["popularity", "ndcg@20"]
    assert "kgrec (fold-in of text-closest items)" in result.users["k0"].index
    saved = json.loads((tmp_path / "work" / "results.json").read_text())
    assert set(saved["users"]) == {"k0", "k1", "k3", "k5"} and saved["details"]["users"]["users_evaluated"] == 6
    assert "### k5" in (tmp_path / "work" / "results.md").read_text()
