"""AUC, coverage, long-tail share, novelty, ILD and the breakdowns (kgrec.eval.beyond), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgrec.eval.beyond import auc_per_user, evaluation_details, head_items, intra_list_diversity, list_measures
from kgrec.graph.useritem import UserItemSets


def _sets(pairs, users=2, items=5):
    u = np.array([p[0] for p in pairs], dtype=np.int64)
    i = np.array([p[1] for p in pairs], dtype=np.int64)
    return UserItemSets.from_pairs(u, i, users, items)


SCORES = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 2.0, 2.0, 0.0]])


def score_fn(users):
    return SCORES[users]


def test_auc_counts_wins_over_unobserved_unmasked_items_with_ties_as_half():
    truth = _sets([(0, 3), (1, 2)])
    exclude = _sets([(0, 0)])
    auc = auc_per_user(score_fn, truth, exclude, torch.tensor([0, 1]))
    # user 0: item 3 (2.0) against negatives 1, 2, 4 (item 0 masked): beats only item 4
    assert auc[0].item() == pytest.approx(1 / 3)
    # user 1: item 2 (2.0) against 0 (1.0, win), 1 and 3 (2.0, ties), 4 (0.0, win): (2 + 0.5 + 0.5) / 4
    assert auc[1].item() == pytest.approx(3 / 4)


def test_head_is_the_most_popular_fifth():
    assert head_items(np.array([5, 0, 9, 1, 1, 3, 0, 0, 0, 2])).nonzero()[0].tolist() == [0, 2]


def test_list_measures_by_hand():
    lists = np.array([[0, 1], [0, 2]])
    popularity = np.array([4, 1, 0, 0])
    head = np.array([True, False, False, False])
    entities = [frozenset({10}), frozenset({10, 11}), frozenset(), frozenset()]
    out = list_measures(lists, popularity, head, num_users=4, ks=[1, 2], entities=entities)
    assert out["coverage@1"] == 0.25 and out["coverage@2"] == 0.75
    assert out["long_tail_share@1"] == 0.0 and out["long_tail_share@2"] == 0.5
    # -log2(p): item 0 p = 1 -> 0; item 1 p = 1/4 -> 2; item 2 never taken, counted once -> 2
    assert out["novelty@2"] == pytest.approx((0 + 2 + 0 + 2) / 4)
    # user 0: 1 - |{10}| / |{10, 11}| = 0.5; user 1: 1 - 0 / 1 = 1.0
    assert out["ild@2"] == pytest.approx(0.75)
    assert math.isnan(intra_list_diversity(np.array([[2, 3]]), entities))  # no entity: left out


def test_details_break_down_by_history_and_by_popularity():
    train = _sets([(0, 0), (0, 1), (0, 4), (1, 0)], users=2, items=5)
    truth = _sets([(0, 2), (1, 1)])
    details = evaluation_details(score_fn, truth, train, train, ks=[1, 2])
    assert set(details["beyond"]) >= {"auc", "coverage@2", "long_tail_share@2", "novelty@2"}
    assert "ild@2" not in details["beyond"]  # no KG given
    assert details["by_history"]["1-5"]["num_users"] == 2 and details["by_history"]["6-20"]["num_users"] == 0
    # head = item 0 (the most popular fifth of 5 items): both held-out items are in the tail
    assert details["by_popularity"]["head"]["num_users"] == 0
    assert details["by_popularity"]["tail"]["num_users"] == 2
    # user 0 ranks items 2, 3 (0, 1, 4 masked): hit at 1; user 1 ranks 2, 3, 1 by 2.0 ties, 4
    assert details["by_popularity"]["tail"]["recall@1"] == pytest.approx(details["by_history"]["1-5"]["recall@1"])
