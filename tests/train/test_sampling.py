"""Negative sampling: avoids positives, uniform over the rest, reproducible by seed."""

from __future__ import annotations

import pytest
import torch

from kgrec.graph.useritem import UserItemSets
from kgrec.train.sampling import NodeTypeIndex, sample_negative_items, sample_tail_negatives


def _random_sets(num_users: int, num_items: int, density: float, seed: int = 0) -> UserItemSets:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(num_users, num_items, generator=gen) < density
    users, items = mask.nonzero(as_tuple=True)
    return UserItemSets.from_pairs(users, items, num_users, num_items)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "num_users,num_items,density,num_neg", [(5, 7, 0.3, 1), (50, 40, 0.1, 4), (20, 300, 0.02, 16)]
)
def test_never_returns_a_positive(num_users, num_items, density, num_neg):
    positives = _random_sets(num_users, num_items, density)
    users = torch.arange(num_users).repeat(20)
    neg = sample_negative_items(users, positives, num_items, num_neg, _gen())
    assert neg.shape == (users.numel(), num_neg) and neg.dtype == torch.long
    assert neg.min() >= 0 and neg.max() < num_items
    assert not positives.contains(users.unsqueeze(1).expand_as(neg), neg).any()


@pytest.mark.parametrize("max_rounds", [0, 1, 10])
def test_dense_users_never_get_a_positive_whatever_the_rounds(max_rounds):
    positives = _random_sets(10, 20, 0.8, seed=3)
    assert (positives.row_counts() < 20).all()
    users = torch.arange(10).repeat(50)
    neg = sample_negative_items(users, positives, 20, 2, _gen(), keys=positives.keys(), max_rounds=max_rounds)
    assert not positives.contains(users.unsqueeze(1).expand_as(neg), neg).any()


def test_user_with_every_item_positive_gets_draws_anyway():
    positives = UserItemSets.from_pairs([0, 0, 0, 1], [0, 1, 2, 0], 2, 3)
    neg = sample_negative_items(torch.tensor([0, 1]), positives, 3, 5, _gen(), max_rounds=3)
    assert neg.shape == (2, 5) and neg.max() < 3
    assert not positives.contains(torch.ones(5, dtype=torch.long), neg[1]).any()


@pytest.mark.parametrize("max_rounds", [0, 2, 10])
def test_uniform_over_the_non_positives(max_rounds):
    # Half the catalogue is positive: with few rounds the exact fallback does most of the work.
    positives = UserItemSets.from_pairs([0] * 5, [0, 2, 4, 6, 8], 1, 10)
    users = torch.zeros(20000, dtype=torch.long)
    neg = sample_negative_items(users, positives, 10, 1, _gen(1), max_rounds=max_rounds)
    counts = torch.bincount(neg.flatten(), minlength=10)
    assert counts[[0, 2, 4, 6, 8]].sum() == 0
    expected = 20000 / 5
    chi2 = float(((counts[[1, 3, 5, 7, 9]] - expected) ** 2 / expected).sum())
    assert chi2 < 18.5  # chi-square, 4 degrees of freedom, p = 0.001


def test_deterministic_by_seed():
    positives = _random_sets(30, 50, 0.2)
    users = torch.randint(0, 30, (100,), generator=_gen(9))
    a = sample_negative_items(users, positives, 50, 3, _gen(5))
    b = sample_negative_items(users, positives, 50, 3, _gen(5))
    c = sample_negative_items(users, positives, 50, 3, _gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_invalid_arguments():
    positives = _random_sets(2, 3, 0.2)
    with pytest.raises(ValueError):
        sample_negative_items(torch.tensor([0]), positives, 3, 0, _gen())


NODE_TYPE = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])  # type 3 has a single node


def test_node_type_index():
    index = NodeTypeIndex.from_node_type(NODE_TYPE)
    assert index.counts.tolist() == [3, 2, 4, 1]
    assert index.offsets.tolist() == [0, 3, 5, 9]
    for node in range(NODE_TYPE.numel()):
        t = NODE_TYPE[node]
        assert index.order[index.offsets[t] + index.rank[node]] == node


@pytest.mark.parametrize("num_neg", [None, 4])
def test_tail_negatives_share_the_type_and_differ_from_the_tail(num_neg):
    tails = torch.tensor([0, 3, 4, 5, 8, 1] * 50)
    neg = sample_tail_negatives(tails, NODE_TYPE, _gen(), num_negatives=num_neg)
    expected_shape = tails.shape if num_neg is None else (tails.numel(), num_neg)
    assert neg.shape == expected_shape
    t = tails if num_neg is None else tails.unsqueeze(1).expand_as(neg)
    assert torch.equal(NODE_TYPE[neg], NODE_TYPE[t])
    assert not (neg == t).any()


def test_tail_alone_in_its_type_is_returned_itself():
    neg = sample_tail_negatives(torch.tensor([9, 9]), NODE_TYPE, _gen())
    assert neg.tolist() == [9, 9]


def test_tail_negatives_uniform_and_seeded():
    tails = torch.full((12000,), 6)  # type 2: nodes 5..8, so 5, 7, 8 each about 4000
    index = NodeTypeIndex.from_node_type(NODE_TYPE)
    neg = sample_tail_negatives(tails, NODE_TYPE, _gen(2), index=index)
    counts = torch.bincount(neg, minlength=10)[[5, 7, 8]].double()
    assert counts.sum() == 12000
    assert float(((counts - 4000) ** 2 / 4000).sum()) < 13.9  # chi-square, 2 dof, p = 0.001
    again = sample_tail_negatives(tails, NODE_TYPE, _gen(2), index=index)
    assert torch.equal(neg, again)


def test_exact_fallback_covers_every_non_positive():
    # user 0: positives at both ends and in a run; user 1: none; user 2: all but item 4.
    positives = UserItemSets.from_pairs(
        [0, 0, 0, 0] + [2] * 9, [0, 1, 5, 9] + [0, 1, 2, 3, 5, 6, 7, 8, 9], 3, 10
    )
    users = torch.tensor([0, 1, 2]).repeat(400)
    neg = sample_negative_items(users, positives, 10, 1, _gen(4), max_rounds=0).squeeze(1)
    assert set(neg[users == 0].tolist()) == {2, 3, 4, 6, 7, 8}
    assert set(neg[users == 1].tolist()) == set(range(10))
    assert set(neg[users == 2].tolist()) == {4}
