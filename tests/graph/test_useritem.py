import pytest
import torch

from kgrec.graph.useritem import UserItemSets


@pytest.fixture
def sets():
    return UserItemSets.from_pairs([0, 0, 2, 2, 2, 0], [3, 1, 0, 4, 4, 3], num_users=3, num_items=5)


def test_csr_is_sorted_and_deduplicated(sets):
    assert sets.nnz == 4
    assert sets.row(0).tolist() == [1, 3]
    assert sets.row(1).tolist() == []
    assert sets.row(2).tolist() == [0, 4]
    assert sets.row_counts().tolist() == [2, 0, 2]


def test_contains(sets):
    users = torch.tensor([0, 0, 1, 2, 2])
    items = torch.tensor([1, 2, 1, 4, 3])
    assert sets.contains(users, items).tolist() == [True, False, False, True, False]


def test_dense_rows(sets):
    mask = sets.dense_rows(torch.tensor([2, 1, 0]))
    expected = torch.zeros(3, 5, dtype=torch.bool)
    expected[0, [0, 4]] = True
    expected[2, [1, 3]] = True
    assert torch.equal(mask, expected)


def test_union_and_pairs(sets):
    other = UserItemSets.from_pairs([1, 0], [2, 1], 3, 5)
    both = sets.union(other)
    assert both.nnz == 5
    u, i = both.pairs()
    assert list(zip(u.tolist(), i.tolist())) == [(0, 1), (0, 3), (1, 2), (2, 0), (2, 4)]


def test_out_of_range():
    with pytest.raises(ValueError):
        UserItemSets.from_pairs([5], [0], 3, 5)
