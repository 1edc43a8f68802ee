"""The paired per-user comparison: hand-computed differences, intervals and p-values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kgrec.eval.paired import MIN_USERS, PER_USER_FILE, paired_difference, read_per_user, write_per_user


def test_paired_difference_by_hand():
    # 40 users; the other row is 0.1 better on half of them and equal on the rest
    a = pd.Series([0.5] * 40, index=range(40))
    b = pd.Series([0.6] * 20 + [0.5] * 20, index=range(40))
    r = paired_difference(a, b)
    d = [0.1] * 20 + [0.0] * 20
    mean = sum(d) / 40
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 39)
    assert r["users"] == 40
    assert r["difference"] == pytest.approx(0.05)
    assert r["relative"] == pytest.approx(0.1)
    assert r["ci_high"] - r["difference"] == pytest.approx(1.959964 * sd / math.sqrt(40), rel=1e-5)
    assert r["p_value"] == pytest.approx(math.erfc(0.05 / (sd * math.sqrt(2 / 40))))
    assert r["p_value"] < 0.001 and r["ci_low"] > 0


def test_no_difference_holds_zero_and_swapping_flips_the_sign():
    values = [0.1 * (i % 7) for i in range(100)]
    a = pd.Series(values)
    b = pd.Series(values[1:] + values[:1])  # the same values, other users
    r, s = paired_difference(a, b), paired_difference(b, a)
    assert r["ci_low"] < 0 < r["ci_high"] and r["p_value"] > 0.05
    assert s["difference"] == pytest.approx(-r["difference"])


def test_only_shared_users_count_and_too_few_give_none():
    a = pd.Series([0.2] * 100, index=range(100))
    b = pd.Series([0.3] * 100, index=range(50, 150))
    assert paired_difference(a, b)["users"] == 50
    assert paired_difference(a.iloc[: MIN_USERS - 1], a.iloc[: MIN_USERS - 1] + 0.1) is None


def test_identical_rows_differ_by_nothing():
    a = pd.Series([0.3] * 40)
    r = paired_difference(a, a)
    assert r["difference"] == 0 and r["p_value"] == 1.0


def test_per_user_files_round_trip_and_average_over_seeds(tmp_path):
    frame = pd.DataFrame({"user": [0, 1, 2], "ndcg@20": [0.1, 0.2, 0.3], "recall@20": [0.5, 0.5, 0.5], "hit@20": [1, 1, 1]})
    (tmp_path / "a").mkdir()
    write_per_user(frame, tmp_path / "a")
    frame2 = frame.assign(**{"ndcg@20": [0.3, 0.4, 0.5]})
    (tmp_path / "b").mkdir()
    write_per_user(frame2, tmp_path / "b")
    kept = pd.read_csv(tmp_path / "a" / PER_USER_FILE)
    assert list(kept.columns) == ["user", "recall@20", "ndcg@20"]  # hit@20 is not kept
    mean = read_per_user([tmp_path / "a", tmp_path / "b", tmp_path / "missing"], "ndcg@20")
    assert mean.tolist() == pytest.approx([0.2, 0.3, 0.4])
    assert read_per_user([tmp_path / "missing"], "ndcg@20") is None
    assert read_per_user([tmp_path / "a"], "mrr@20") is None
