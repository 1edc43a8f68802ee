"""End to end through the command line on tiny data: build, train, evaluate, recommend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kgrec.cli.main import main

ROOT = Path(__file__).resolve().parents[1]

TTL_HEAD = """@prefix ex: <http://example.org/> .
@prefix schema: <http://schema.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """24 users with taste for one of two genres, 16 items, clicks and buys, RDF with genres."""
    folder = tmp_path_factory.mktemp("data")
    rows = []
    for u in range(24):
        genre = u % 2
        liked = [i for i in range(16) if i % 2 == genre]
        for j, i in enumerate(liked[: 5 + u % 3]):
            rows.append((f"u{u}", f"m{i}", "click" if j % 2 else "buy", 4, 1_600_000_000 + 3600 * j))
    pd.DataFrame(rows, columns=["user", "item", "event", "rating", "timestamp"]).to_csv(folder / "log.csv", index=False)
    lines = [TTL_HEAD]
    for i in range(16):
        g = "comedy" if i % 2 == 0 else "drama"
        lines.append(
            f'ex:m{i} rdfs:label "Movie {i}" ; schema:description "A {g} film number {i}." ; schema:genre ex:{g} .'
        )
    lines.append('ex:comedy a schema:Genre ; rdfs:label "Comedy" .')
    lines.append('ex:drama a schema:Genre ; rdfs:label "Drama" .')
    (folder / "items.ttl").write_text("\n".join(lines) + "\n")
    (folder / "exp.toml").write_text(
        "[model]\ndim = 16\nlayers = 2\n[train]\nepochs = 6\nbatch_size = 32\nlr = 0.01\npatience = 3\n"
        f'[text]\ncache_dir = "{folder / "textcache"}"\n'
    )
    return folder


@pytest.fixture(scope="module")
def trained_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("work")
    d = tiny_dataset
    assert main(["build", "--interactions", str(d / "log.csv"), "--rdf", str(d / "items.ttl"), "--out", str(out / "g")]) == 0
    assert main(["train", "--graph", str(out / "g"), "--config", str(d / "exp.toml"), "--run", str(out / "run")]) == 0
    return out


def test_run_folder_is_complete(trained_run):
    run = trained_run / "run"
    for name in ["config.toml", "run.json", "metrics.jsonl", "model.safetensors", "results.json"]:
        assert (run / name).is_file(), name
    for name in ["train.csv", "valid.csv", "test.csv"]:
        df = pd.read_csv(run / "split" / name, dtype=str)
        assert list(df.columns) == ["user", "item"]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) >= 1 and "valid_ndcg@20" in json.loads(lines[0])
    results = json.loads((run / "results.json").read_text())
    assert 1 <= results["best_epoch"] <= 6
    assert set(results["test"]) >= {"recall@10", "ndcg@20", "hit@50", "precision@10", "mrr@20"}


def test_evaluate_reproduces_training_test_metrics(trained_run, capsys):
    assert main(["evaluate", "--run", str(trained_run / "run"), "--json"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out[out.index("{") :])
    results = json.loads((trained_run / "run" / "results.json").read_text())
    for k, v in results["test"].items():
        assert metrics[k] == pytest.approx(v, abs=1e-6), k


@pytest.mark.slow
def test_recommendations_agree_with_the_independent_scorer(trained_run):
    run = trained_run / "run"
    recs_path = trained_run / "recs.csv"
    assert main(["recommend", "--run", str(run), "--users", "all", "--k", "50", "--out", str(recs_path)]) == 0
    recs = pd.read_csv(recs_path, dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "item", "rank", "score"]
    seen = pd.concat([pd.read_csv(run / "split" / f, dtype=str) for f in ("train.csv", "valid.csv")])
    assert recs.merge(seen, on=["user", "item"]).empty, "seen items must not be recommended"
    scored = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "score_recommendations.py"), "--recs", str(recs_path),
         "--test", str(run / "split" / "test.csv")],
        capture_output=True, text=True, check=True,
    )
    independent = json.loads(scored.stdout)
    results = json.loads((run / "results.json").read_text())
    for name in ["recall@20", "ndcg@20", "hit@10", "precision@10", "mrr@50"]:
        assert independent[name] == pytest.approx(results["test"][name], abs=1e-4), name


def test_recommend_named_users(trained_run, capsys):
    assert main(["recommend", "--run", str(trained_run / "run"), "--users", "u1,u2", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "user u1:" in out and "user u2:" in out


def test_unknown_user_is_a_clean_error(trained_run, capsys):
    assert main(["recommend", "--run", str(trained_run / "run"), "--users", "nobody", "--k", "3"]) == 2
    assert "unknown user id(s): nobody" in capsys.readouterr().err


@pytest.mark.slow
def test_errors_have_no_traceback(tmp_path):
    bad = tmp_path / "log.csv"
    bad.write_text("user,item\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kgrec", "build", "--interactions", str(bad), "--out", str(tmp_path / "g")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr
    assert not (tmp_path / "g").exists()


def test_build_from_a_recbole_folder(tmp_path, capsys):
    d = tmp_path / "rb"
    d.mkdir()
    (d / "toy.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t5\t1\n1\t11\t3\t2\n2\t10\t4\t3\n")
    (d / "toy.item").write_text("item_id:token\tmovie_title:token_seq\n10\tAlpha\n11\tBeta\n")
    (d / "toy.link").write_text("item_id:token\tentity_id:token\n10\tm.a\n11\tm.b\n")
    (d / "toy.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\nm.a\tfilm.genre\tm.g\nm.b\tfilm.genre\tm.g\n")
    assert main(["build", "--recbole", str(d), "--out", str(tmp_path / "g")]) == 0
    out = capsys.readouterr().out
    assert "Graph: 2 users, 2 items" in out
    assert "item -[" in out and "]-> entity: 2 edges" in out


def test_build_rating_split_gives_two_behaviours(tmp_path):
    (tmp_path / "log.csv").write_text("user,item,rating\na,1,5\na,2,2\nb,1,4\nb,3,\n")
    assert main(["build", "--interactions", str(tmp_path / "log.csv"), "--rating-split", "4", "--out", str(tmp_path / "g")]) == 0
    inter = pd.read_parquet(tmp_path / "g" / "interactions.parquet")
    assert sorted(inter["event"].unique()) == ["like", "rated"]
    assert (inter["event"] == "like").sum() == 2  # b's unrated row is dropped and counted
    assert "no rating (rating_split is set)" in (tmp_path / "g" / "report.txt").read_text()
