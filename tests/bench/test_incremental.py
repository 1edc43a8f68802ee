"""The streaming protocol (``kgrec bench incremental``) on a small world that grows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kgrec.bench.incremental import ARMS, cut_stream, graph_of_rows, run_incremental
from kgrec.cli.main import main
from kgrec.errors import KgrecError
from kgrec.graph.container import ITEM, USER
from kgrec.graph.store import load_graph


@pytest.fixture
def stream_graph(tmp_path, stream_helper):
    """24 users and 21 films; later users and films arrive later in time."""
    rows = stream_helper.clicks(range(12), range(12)) + stream_helper.clicks(range(12, 24), range(21), start=500.0)
    log = stream_helper.write_log(tmp_path / "log.csv", rows)
    return stream_helper.build(tmp_path / "graph", log, [stream_helper.write_catalogue(tmp_path / "films.ttl", range(21))])


def test_the_log_is_cut_in_time_order(stream_graph):
    kg = load_graph(stream_graph)
    stream = cut_stream(kg, base=0.5, chunk=0.2, chunks=2)
    times = kg.interactions["timestamp"].to_numpy()
    n = len(times)
    assert len(stream.base) == round(n * 0.5) and [len(c) for c in stream.chunks] == [round(n * 0.7) - round(n * 0.5), round(n * 0.9) - round(n * 0.7)]
    assert times[stream.base].max() <= times[stream.chunks[0]].min() and times[stream.chunks[0]].max() <= times[stream.chunks[1]].min()
    with pytest.raises(KgrecError, match="base \\+ chunks x chunk <= 1"):
        cut_stream(kg, base=0.8, chunk=0.1, chunks=3)


def test_the_past_is_a_graph_of_its_own(stream_graph):
    kg = load_graph(stream_graph)
    stream = cut_stream(kg, base=0.5, chunk=0.2, chunks=2)
    past = graph_of_rows(kg, stream.base, "past")
    seen_items = set(kg.nodes[ITEM]["id"].to_numpy()[kg.interactions["item"].to_numpy()[stream.base]])
    assert set(past.nodes[ITEM]["id"]) == seen_items and past.num_items < kg.num_items
    assert past.num_users == len(set(kg.interactions["user"].to_numpy()[stream.base]))
    assert {t: len(past.nodes[t]) for t in kg.node_types[2:]} == {t: len(kg.nodes[t]) for t in kg.node_types[2:]}  # every entity stays
    genre = next(et for et in past.knowledge_edge_types() if et[1] == "genre")
    assert past.data[genre].edge_index.size(1) == past.num_items  # only the films seen keep their genre edge
    users, items = past.nodes[USER]["id"].to_numpy(), past.nodes[ITEM]["id"].to_numpy()
    pairs = set(zip(users[past.interactions["user"]], items[past.interactions["item"]]))
    full_users, full_items = kg.nodes[USER]["id"].to_numpy(), kg.nodes[ITEM]["id"].to_numpy()
    inter = kg.interactions.iloc[stream.base]
    assert pairs == set(zip(full_users[inter["user"]], full_items[inter["item"]]))


@pytest.mark.slow
def test_the_protocol_writes_every_arm_per_chunk_and_the_forgetting(tmp_path, stream_graph, stream_helper):
    config = stream_helper.config(epochs=2)
    config.update.epochs = 1
    out = tmp_path / "out"
    results = run_incremental(stream_graph, config, out, base=0.5, chunk=0.2, chunks=2, log=lambda *_: None)
    stored = json.loads((out / "results.json").read_text())
    assert stored["chunks"] == json.loads(json.dumps(results["chunks"]))
    assert [c["chunk"] for c in stored["chunks"]] == [1, 2]
    for c in stored["chunks"]:
        assert set(c["arms"]) == set(ARMS)
        for arm, r in c["arms"].items():
            assert {"recall@20", "ndcg@20", "seconds"} <= set(r), arm
        assert c["arms"]["stale"]["seconds"] == 0.0 and c["arms"]["incremental"]["seconds"] > 0 and c["arms"]["retrain"]["seconds"] > 0
        assert {"new_users", "new_items", "new_users_pairs", "new_items_pairs", "pairs_scored"} <= set(c)
    first = stored["chunks"][0]["arms"]  # before any update every arm is the base run
    assert first["stale"]["ndcg@20"] == first["incremental"]["ndcg@20"] == first["retrain"]["ndcg@20"]
    assert "recent users" in stored["chunks"][1]["arms"]["incremental"]
    assert set(stored["forgetting"]["arms"]) == set(ARMS)
    assert {"ndcg_ratio_to_retrain", "update_seconds_over_retrain", "forgetting_ndcg_loss_vs_retrain"} <= set(stored["targets"])
    assert (out / "results.md").read_text().startswith("# Incremental updates") and (out / "incremental.png").stat().st_size > 0
    # the incremental arm is a chain of kgrec update runs, each naming its parent
    second = json.loads((out / "runs" / "incremental-2" / "update.json").read_text())
    assert second["parent"]["run"].endswith("incremental-1")
    chunk_log = pd.read_csv(out / "chunks" / "chunk-1.csv")
    assert list(chunk_log.columns) == ["user", "item", "event", "rating", "timestamp"]

    with pytest.raises(KgrecError, match="already there; add --resume"):
        run_incremental(stream_graph, config, out, base=0.5, chunk=0.2, chunks=2, log=lambda *_: None)
    again = run_incremental(stream_graph, config, out, base=0.5, chunk=0.2, chunks=2, resume=True, log=lambda *_: None)
    assert again["chunks"][1]["arms"]["retrain"]["seconds"] == results["chunks"][1]["arms"]["retrain"]["seconds"]  # reused, not retrained


def test_bench_incremental_refuses_a_folder_it_did_not_write(tmp_path, stream_graph, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    assert main(["bench", "incremental", "--graph", str(stream_graph), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a kgrec incremental work folder" in err[0]
    assert np.array_equal(sorted(p.name for p in out.iterdir()), ["notes.txt"])
