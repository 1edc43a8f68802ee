"""Full-ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.eval.metrics import full_ranking_metrics, topk_items
from kgrec.graph.useritem import UserItemSets

NUM_ITEMS = 6
# Item scores chosen so that the ranking is [3, 0, 1, 2, 4, 5] for every user.
RANKING = [3, 0, 1, 2, 4, 5]
FIXED_SCORES = torch.tensor([5.0, 3.0, 2.0, 6.0, 1.0, 0.0])


def fixed_score_fn(users: torch.Tensor) -> torch.Tensor:
    return FIXED_SCORES.expand(users.numel(), NUM_ITEMS).clone()


def sets(rows: dict[int, list[int]], num_users: int = 3, num_items: int = NUM_ITEMS) -> UserItemSets:
    users = [u for u, items in rows.items() for _ in items]
    items = [i for items in rows.values() for i in items]
    return UserItemSets.from_pairs(users, items, num_users, num_items)


def test_fixed_scores_rank_as_intended():
    assert torch.argsort(FIXED_SCORES, descending=True).tolist() == RANKING


def test_hand_computed_single_user():
    # truth {1, 3}: item 3 at rank 1 (hit), item 0 at rank 2 (miss), item 1 at rank 3 (hit)
    truth = sets({0: [1, 3]})
    m = full_ranking_metrics(fixed_score_fn, truth, None, ks=(1, 2, 3))
    assert m["num_users"] == 1
    ideal2 = 1 + 1 / math.log2(3)
    assert m["recall@1"] == pytest.approx(0.5)
    assert m["precision@1"] == pytest.approx(1.0)
    assert m["ndcg@1"] == pytest.approx(1.0)
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["precision@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx(1 / ideal2)
    assert m["recall@3"] == pytest.approx(1.0)
    assert m["precision@3"] == pytest.approx(2 / 3)
    assert m["hit@3"] == 1.0
    assert m["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / ideal2)  # 0.91972...
    assert m["ndcg@3"] == pytest.approx(0.9197207891481876)
    assert m["mrr@3"] == pytest.approx(1.0)


def test_late_hit_and_mrr():
    # truth {5}: item 5 is ranked last (6th)
    truth = sets({0: [5]})
    m = full_ranking_metrics(fixed_score_fn, truth, None, ks=(3, 6))
    assert m["hit@3"] == 0.0 and m["ndcg@3"] == 0.0 and m["mrr@3"] == 0.0 and m["recall@3"] == 0.0
    assert m["recall@6"] == pytest.approx(1.0)
    assert m["precision@6"] == pytest.approx(1 / 6)
    assert m["ndcg@6"] == pytest.approx(1 / math.log2(7))
    assert m["mrr@6"] == pytest.approx(1 / 6)


def test_idcg_uses_min_of_truth_size_and_k():
    # 4 truth items, k = 2, both top-2 items are hits -> perfect NDCG although recall is 0.5
    truth = sets({0: [3, 0, 2, 5]})
    m = full_ranking_metrics(fixed_score_fn, truth, None, ks=(2,))
    assert m["ndcg@2"] == pytest.approx(1.0)
    assert m["recall@2"] == pytest.approx(0.5)


def test_average_over_users_and_users_without_truth_are_skipped():
    truth = sets({0: [1, 3], 2: [5]})  # user 1 has no truth
    m, per_user = full_ranking_metrics(fixed_score_fn, truth, None, ks=(3,), return_per_user=True)
    assert m["num_users"] == 2
    assert per_user["user"].tolist() == [0, 2]
    assert per_user["recall@3"].tolist() == pytest.approx([1.0, 0.0])
    assert m["recall@3"] == pytest.approx(0.5)
    assert m["ndcg@3"] == pytest.approx(0.9197207891481876 / 2)
    assert set(per_user.columns) >= {"ndcg@3", "hit@3", "precision@3", "mrr@3"}


def test_user_subset():
    truth = sets({0: [1, 3], 2: [5]})
    m = full_ranking_metrics(fixed_score_fn, truth, None, ks=(3,), users=[1, 2])
    assert m["num_users"] == 1  # user 1 has no truth
    assert m["recall@3"] == 0.0


def test_exclusion_masks_training_items():
    # excluding item 0 moves item 1 up to rank 2: hits at ranks 1 and 2 -> perfect
    truth = sets({0: [1, 3]})
    exclude = sets({0: [0]})
    m = full_ranking_metrics(fixed_score_fn, truth, exclude, ks=(2, 3))
    assert m["ndcg@2"] == pytest.approx(1.0)
    assert m["mrr@2"] == pytest.approx(1.0)
    assert m["recall@2"] == pytest.approx(1.0)


def test_excluded_item_never_counts_as_hit_even_when_k_exceeds_candidates():
    truth = sets({0: [1]})
    exclude = sets({0: [1]})
    m = full_ranking_metrics(fixed_score_fn, truth, exclude, ks=(10,))
    assert m["recall@10"] == 0.0 and m["hit@10"] == 0.0


def test_k_larger_than_catalogue_divides_precision_by_k():
    truth = sets({0: [5]})
    m = full_ranking_metrics(fixed_score_fn, truth, None, ks=(10,))
    assert m["precision@10"] == pytest.approx(0.1)
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(7))


def test_score_fn_output_is_not_modified():
    cached = torch.rand(3, NUM_ITEMS)
    before = cached.clone()
    full_ranking_metrics(lambda users: cached[users], sets({0: [1]}), sets({0: [2]}), ks=(2,))
    assert torch.equal(cached, before)


def random_problem(num_users=50, num_items=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(num_users, num_items, generator=gen)
    pairs = torch.rand(num_users, num_items, generator=gen)
    truth_mask, exclude_mask = pairs < 0.1, (pairs >= 0.1) & (pairs < 0.4)
    truth = UserItemSets.from_pairs(*truth_mask.nonzero().T, num_users, num_items)
    exclude = UserItemSets.from_pairs(*exclude_mask.nonzero().T, num_users, num_items)
    return scores, truth, exclude


@pytest.mark.parametrize("batch_size", [1, 7, 1024])
def test_batch_size_invariance(batch_size):
    scores, truth, exclude = random_problem()
    reference = full_ranking_metrics(lambda u: scores[u], truth, exclude, ks=(5, 10), batch_size=50)
    result = full_ranking_metrics(lambda u: scores[u], truth, exclude, ks=(5, 10), batch_size=batch_size)
    assert result == pytest.approx(reference, abs=1e-12)


def test_matches_brute_force_per_user():
    scores, truth, exclude = random_problem(num_users=20, seed=3)
    _, per_user = full_ranking_metrics(lambda u: scores[u], truth, exclude, ks=(10,), return_per_user=True)
    assert len(per_user) == 20
    for index, user in per_user["user"].items():
        relevant = set(truth.row(user).tolist())
        masked = scores[user].clone()
        masked[exclude.row(user)] = -math.inf
        ranked = torch.argsort(masked, descending=True)[:10].tolist()
        gains = [1 / math.log2(rank + 1) for rank, item in enumerate(ranked, start=1) if item in relevant]
        ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), 10) + 1))
        assert per_user.loc[index, "ndcg@10"] == pytest.approx(sum(gains) / ideal)
        assert per_user.loc[index, "recall@10"] == pytest.approx(len(gains) / len(relevant))


def test_nan_scores_raise():
    with pytest.raises(KgrecError, match="NaN"):
        full_ranking_metrics(lambda u: torch.full((u.numel(), NUM_ITEMS), math.nan), sets({0: [1]}), None)


def test_no_users_gives_zeros():
    m = full_ranking_metrics(fixed_score_fn, sets({}), None, ks=(5,))
    assert m["num_users"] == 0 and m["ndcg@5"] == 0.0


def test_topk_items_masks_and_pads():
    exclude = sets({0: [3, 1], 1: [0, 1, 2, 3, 4]})
    items, scores = topk_items(fixed_score_fn, [0, 1, 2], exclude, k=8, batch_size=2)
    assert items.shape == (3, 8) and scores.shape == (3, 8)
    assert items[0].tolist() == [0, 2, 4, 5, -1, -1, -1, -1]
    assert items[1].tolist() == [5] + [-1] * 7
    assert items[2].tolist() == RANKING + [-1, -1]
    assert torch.isinf(scores[1, 1:]).all() and scores[1, 0] == 0.0
    assert scores[0, :4].tolist() == [5.0, 2.0, 1.0, 0.0]


def test_topk_items_without_exclusions():
    items, _ = topk_items(fixed_score_fn, torch.tensor([0]), None, k=3)
    assert items.tolist() == [RANKING[:3]]


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))],
)
def test_scores_on_any_device_and_half_precision(device):
    scores, truth, exclude = random_problem(seed=5)
    reference = full_ranking_metrics(lambda u: scores[u], truth, exclude, ks=(5,))
    on_device = scores.to(device)
    result = full_ranking_metrics(lambda u: on_device[u.to(device)], truth, exclude, ks=(5,))
    assert result == pytest.approx(reference, abs=1e-12)
    half = full_ranking_metrics(lambda u: on_device[u.to(device)].half(), truth, exclude, ks=(5,))
    assert half["num_users"] == reference["num_users"]  # runs; ties from rounding may move values
