"""On the bundled demo, by the command line: a run trained on the first days of the log, then
``kgrec update`` with the later days (new users, more interactions) and the catalogue's RDF;
the new run answers ``recommend``, ``evaluate`` and ``explain``, the parent is untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kgrec.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"


@pytest.mark.slow
def test_update_the_demo_run_with_its_later_days(tmp_path, capsys, stream_helper):
    log = pd.read_csv(DEMO / "interactions.csv", dtype=str).sort_values("timestamp", kind="stable")
    cut = int(len(log) * 0.6)
    log.iloc[:cut].to_csv(tmp_path / "first.csv", index=False)
    log.iloc[cut:].to_csv(tmp_path / "later.csv", index=False)
    graph, run, run2 = tmp_path / "graph", tmp_path / "run", tmp_path / "run2"
    ttl = str(DEMO / "items.ttl")
    assert main(["build", "--interactions", str(tmp_path / "first.csv"), "--rdf", ttl, "--out", str(graph)]) == 0
    (tmp_path / "exp.toml").write_text(
        "[model]\ndim = 32\nlayers = 2\nuse_text = false\nitem_item = \"ease\"\n"
        "[train]\nepochs = 10\nbatch_size = 1024\nlr = 0.01\nseed = 3\ndevice = \"cpu\"\n"
        "[coldstart]\ncontent = \"none\"\n[update]\nepochs = 2\n"
    )
    assert main(["train", "--graph", str(graph), "--config", str(tmp_path / "exp.toml"), "--run", str(run)]) == 0
    before = stream_helper.files_of(run)
    capsys.readouterr()

    assert main(["update", "--run", str(run), "--interactions", str(tmp_path / "later.csv"), "--rdf", ttl, "--out", str(run2)]) == 0
    printed = capsys.readouterr().out
    assert "Build report" in printed and "fine-tuned" in printed and "users added" in printed
    assert stream_helper.files_of(run) == before
    record = json.loads((run2 / "update.json").read_text())
    new_users = set(log.iloc[cut:]["user"]) - set(log.iloc[:cut]["user"])
    assert record["added"]["users"] == len(new_users) > 0
    assert record["report"]["counts"]["triples"]["dropped: already in the graph"] > 0  # the catalogue's old films

    user = sorted(new_users)[0]
    assert main(["recommend", "--run", str(run2), "--users", user, "--k", "5"]) == 0
    assert f"user {user}:" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(run2), "--format", "json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["ndcg@20"] == pytest.approx(json.loads((run2 / "results.json").read_text())["test"]["ndcg@20"], abs=1e-6)
    assert main(["explain", "--run", str(run2), "--user", user, "--k", "1", "--no-png"]) == 0
