"""The cold-start-item protocol: items held out with all their interactions, then ranked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgrec.bench.coldstart import choose_cold_items, drop_items, run_cold_start
from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
from kgrec.errors import KgrecError
from kgrec.runs import load_run
from kgrec.graph.build import build_graph
from kgrec.graph.store import load_graph, save_graph


@pytest.fixture(scope="module")
def tiny_kg(tiny_helper):
    return build_graph(tiny_helper.tiny_tables(), name="tiny")


def test_choose_cold_items_is_a_seeded_fraction(tiny_kg):
    a = choose_cold_items(tiny_kg, 0.25, seed=1)
    assert len(a) == round(0.25 * tiny_kg.num_items) and a == sorted(set(a))
    assert a == choose_cold_items(tiny_kg, 0.25, seed=1) and a != choose_cold_items(tiny_kg, 0.25, seed=2)
    with pytest.raises(KgrecError, match="fraction"):
        choose_cold_items(tiny_kg, 1.5)


def test_drop_items_removes_items_interactions_and_edges(tiny_kg, tmp_path):
    cold = [0, 3]
    gone = set(tiny_kg.nodes["item"]["id"].iloc[cold])
    warm = drop_items(tiny_kg, cold)
    assert warm.num_items == tiny_kg.num_items - 2 and not gone & set(warm.nodes["item"]["id"])
    assert warm.num_users == tiny_kg.num_users
    assert len(warm.interactions) == (~tiny_kg.interactions["item"].isin(cold)).sum()
    assert warm.interactions["item"].max() < warm.num_items
    # the same (user id, item id) pairs survive
    ids = tiny_kg.nodes["item"]["id"].to_numpy()
    wids = warm.nodes["item"]["id"].to_numpy()
    before = {(u, ids[i]) for u, i in zip(tiny_kg.interactions["user"], tiny_kg.interactions["item"]) if ids[i] not in gone}
    assert before == {(u, wids[i]) for u, i in zip(warm.interactions["user"], warm.interactions["item"])}
    for et in warm.data.edge_types:
        ei = warm.data[et].edge_index
        for row, t in ((0, et[0]), (1, et[2])):
            assert ei.size(1) == 0 or int(ei[row].max()) < len(warm.nodes[t])
    genre_edges = warm.data["item", "genre", "Genre"].edge_index.size(1)
    assert genre_edges == tiny_kg.data["item", "genre", "Genre"].edge_index.size(1) - 2
    save_graph(warm, tmp_path / "warm")  # it is a valid graph
    assert load_graph(tmp_path / "warm").num_items == warm.num_items


def test_protocol_end_to_end(tiny_kg, tiny_helper, tmp_path):
    save_graph(tiny_kg, tmp_path / "graph")
    config = ExperimentConfig(
        model=ModelConfig(dim=16, layers=2, use_text=False),
        train=TrainConfig(epochs=6, batch_size=64, lr=0.02, patience=6, device="cpu"),
    )
    enc = tiny_helper.HashingEncoder()
    quiet = dict(encoder=enc, progress=False, log=lambda *_: None)
    result = run_cold_start(tmp_path / "graph", config, tmp_path / "work", fraction=0.25, seed=3, parts=("items",), **quiet)
    assert set(result.items) == {"cold_only", "warm_only", "hybrid"} and result.users == {}
    table = result.items["cold_only"]
    assert {"kgrec (content model)", "kgrec (propagation, mean ID)", "text-only (BERT cosine)", "popularity (KG neighbours)", "random"} <= set(table.index)
    assert ((table["recall@20"] >= 0) & (table["recall@20"] <= 1)).all()
    assert (table["num_users"] == table["num_users"].iloc[0]).all() and table["num_users"].iloc[0] > 0
    # 4 cold items only: every method finds every truth item within 20
    assert np.allclose(table["recall@20"], 1.0)
    hybrid = result.items["hybrid"]
    assert {"cold recall@20", "cold ndcg@20", "cold share@20"} <= set(hybrid.columns)
    assert ((hybrid["cold share@20"] >= 0) & (hybrid["cold share@20"] <= 1)).all()
    # the content model leaves the trained items' embeddings alone: warm-only equals the warm run's test
    warm_test = json.loads((tmp_path / "work" / "items" / "run" / "results.json").read_text())["test"]
    assert result.items["warm_only"].loc["kgrec (content model)", "ndcg@20"] == pytest.approx(warm_test["ndcg@20"], abs=1e-6)
    saved = json.loads((tmp_path / "work" / "results.json").read_text())
    assert saved["details"]["items"]["cold_items"] == 4 and set(saved["items"]) == {"cold_only", "warm_only", "hybrid"}
    assert "### hybrid" in (tmp_path / "work" / "results.md").read_text()
    warm = load_graph(tmp_path / "work" / "items" / "graph")
    held = set(tiny_kg.nodes["item"]["id"].iloc[choose_cold_items(tiny_kg, 0.25, seed=3)])
    assert not held & set(warm.nodes["item"]["id"])  # the model never saw the cold items
    # a second call is refused unless asked: --resume reuses the warm run, --force replaces all
    with pytest.raises(KgrecError, match="already there; add --resume .* or --force"):
        run_cold_start(tmp_path / "graph", config, tmp_path / "work", fraction=0.25, seed=3, parts=("items",), **quiet)
    stamp = (tmp_path / "work" / "items" / "run" / "model.safetensors").stat().st_mtime_ns
    again = run_cold_start(tmp_path / "graph", config, tmp_path / "work", fraction=0.25, seed=3, parts=("items",), resume=True, **quiet)
    assert again.items["cold_only"].equals(table)
    assert (tmp_path / "work" / "items" / "run" / "model.safetensors").stat().st_mtime_ns == stamp  # no training
    with pytest.raises(KgrecError, match="other held-out items"):
        run_cold_start(tmp_path / "graph", config, tmp_path / "work", fraction=0.25, seed=4, parts=("items",), resume=True, **quiet)
    other = ExperimentConfig(model=config.model, train=TrainConfig(epochs=5, batch_size=64, lr=0.02, patience=6, device="cpu"))
    with pytest.raises(KgrecError, match="another configuration"):
        run_cold_start(tmp_path / "graph", other, tmp_path / "work", fraction=0.25, seed=3, parts=("items",), resume=True, **quiet)
    forced = run_cold_start(tmp_path / "graph", config, tmp_path / "work", fraction=0.25, seed=4, parts=("items",), force=True, **quiet)
    assert forced.details["seed"] == 4 and forced.details["items"]["run"] == str(tmp_path / "work" / "items" / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "work"]  # no staging folder left
    assert json.loads((tmp_path / "work" / "results.json").read_text())["details"]["seed"] == 4
    assert load_run(tmp_path / "work" / "items" / "run", device="cpu").kg.num_items == warm.num_items  # the moved run finds its graph


def test_unknown_part_is_refused(tiny_kg, tmp_path):
    with pytest.raises(KgrecError, match="unknown cold-start part 'shops'"):
        run_cold_start(tmp_path / "graph", ExperimentConfig(), tmp_path / "work", parts=("shops",))
    assert not (tmp_path / "work").exists()
