"""The independent scorer (experiments/score_recommendations.py), and its agreement with kgrec."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from kgrec.eval.metrics import full_ranking_metrics, topk_items
from kgrec.graph.useritem import UserItemSets

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "score_recommendations.py"


def load_scorer():
    spec = importlib.util.spec_from_file_location("score_recommendations", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scorer = load_scorer()


def run_scorer(tmp_path, recs: str, test: str, ks="1,3", capsys=None):
    (tmp_path / "recs.csv").write_text(recs)
    (tmp_path / "test.csv").write_text(test)
    code = scorer.main(["--recs", str(tmp_path / "recs.csv"), "--test", str(tmp_path / "test.csv"), "--ks", ks])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else err)


def test_scorer_imports_no_kgrec():
    source = SCRIPT.read_text()
    assert "import kgrec" not in source and "from kgrec" not in source


def test_hand_computed_example(tmp_path, capsys):
    # user a: ranking 3, 0, 1 with truth {1, 3}; user b: no recommendations at all
    recs = "user,item,rank,score\na,1,3,0.1\na,3,1,0.9\na,0,2,0.5\n"
    test = "user,item\na,1\na,3\nb,9\n"
    code, result = run_scorer(tmp_path, recs, test, capsys=capsys)
    assert code == 0
    assert result["num_users"] == 2
    ndcg3 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert result["ndcg@3"] == pytest.approx(ndcg3 / 2)
    assert result["recall@1"] == pytest.approx(0.25)
    assert result["precision@3"] == pytest.approx((2 / 3) / 2)
    assert result["hit@3"] == pytest.approx(0.5)
    assert result["mrr@3"] == pytest.approx(0.5)


def test_ids_are_strings(tmp_path, capsys):
    code, result = run_scorer(tmp_path, "user,item,rank,score\n007,01,1,1.0\n", "user,item\n007,1\n", capsys=capsys)
    assert code == 0 and result["hit@1"] == 0.0


def test_bad_rank_is_reported(tmp_path, capsys):
    code, err = run_scorer(tmp_path, "user,item,rank,score\na,1,first,1.0\n", "user,item\na,1\n", capsys=capsys)
    assert code == 2 and "line 2" in err and "first" in err
    code, err = run_scorer(tmp_path, "user,item,rank,score\na,1,1,1\na,2,1,1\n", "user,item\na,1\n", capsys=capsys)
    assert code == 2 and "same rank twice" in err


@pytest.mark.slow
def test_command_line(tmp_path):
    (tmp_path / "recs.csv").write_text("user,item,rank,score\nu,i,1,2.0\n")
    (tmp_path / "test.csv").write_text("user,item\nu,i\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--recs", str(tmp_path / "recs.csv"), "--test", str(tmp_path / "test.csv")],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(done.stdout)
    assert result["ndcg@10"] == 1.0 and result["precision@50"] == pytest.approx(0.02)


def test_agrees_with_kgrec_on_random_scores(tmp_path, capsys):
    num_users, num_items, ks = 40, 80, (10, 20, 50)
    gen = torch.Generator().manual_seed(11)
    scores = torch.rand(num_users, num_items, generator=gen)
    draw = torch.rand(num_users, num_items, generator=gen)
    truth = UserItemSets.from_pairs(*(draw < 0.08).nonzero().T, num_users, num_items)
    train = UserItemSets.from_pairs(*((draw >= 0.08) & (draw < 0.5)).nonzero().T, num_users, num_items)
    user_ids = [f"u{u:03d}" for u in range(num_users)]
    item_ids = [f"{i:04d}" for i in range(num_items)]

    expected = full_ranking_metrics(lambda u: scores[u], truth, train, ks=ks, batch_size=16)

    users = torch.arange(num_users)
    items, item_scores = topk_items(lambda u: scores[u], users, train, k=max(ks), batch_size=16)
    rows = [
        (user_ids[u], item_ids[int(items[u, r])], r + 1, float(item_scores[u, r]))
        for u in range(num_users) for r in range(items.shape[1]) if items[u, r] >= 0
    ]
    pd.DataFrame(rows, columns=["user", "item", "rank", "score"]).to_csv(tmp_path / "recs.csv", index=False)
    test_users, test_items = truth.pairs()
    pd.DataFrame({"user": [user_ids[u] for u in test_users.tolist()],
                  "item": [item_ids[i] for i in test_items.tolist()]}).to_csv(tmp_path / "test.csv", index=False)

    code = scorer.main(["--recs", str(tmp_path / "recs.csv"), "--test", str(tmp_path / "test.csv"),
                        "--ks", ",".join(map(str, ks))])
    assert code == 0
    independent = json.loads(capsys.readouterr().out)
    assert independent["num_users"] == expected["num_users"] > 30
    assert set(independent) == set(expected)
    for key, value in expected.items():
        assert independent[key] == pytest.approx(value, abs=1e-9), key
