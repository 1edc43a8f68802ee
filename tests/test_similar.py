"""Item to item: embedding cosine ("more like this") and lift ("often taken together")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.similar import bundle_items, similar_items


def test_similar_items_by_cosine_excludes_the_item_itself():
    emb = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    pos, sims = similar_items(emb, 0, k=3)
    assert pos.tolist() == [1, 2, 3]  # scale does not matter, direction does
    assert sims[0] == pytest.approx(10 / np.sqrt(101)) and sims[2] == pytest.approx(-1.0)
    with pytest.raises(KgrecError):
        similar_items(emb, 0, k=0)


def test_bundles_by_lift_with_minimum_support():
    # 10 users; item 0 is taken by users 0-3. lift = together * 10 / (4 * popularity):
    # item 3 by users 0-1 only (2 * 10 / 8 = 2.5); item 1 by users 0-5 (4 * 10 / 24 = 1.67);
    # item 2 by everyone (lift 1); item 4 by user 0 only (support 1: below the minimum).
    pairs = [(u, 0) for u in range(4)] + [(u, 1) for u in range(6)] + [(u, 2) for u in range(10)]
    pairs += [(0, 3), (1, 3), (0, 4), (0, 0)]  # a duplicate pair counts once
    users, items = np.array(pairs).T
    frame = bundle_items(users, items, num_users=10, item=0, k=5, min_support=2)
    assert frame["item"].tolist() == [3, 1, 2]
    assert frame["lift"].tolist() == pytest.approx([2.5, 40 / 24, 1.0])
    assert frame["together"].tolist() == [2, 4, 4]
    assert frame["confidence"].tolist() == pytest.approx([0.5, 1.0, 1.0])
    assert bundle_items(users, items, num_users=10, item=4, min_support=1)["item"].tolist()[0] in (0, 3)
    assert bundle_items(users, items, num_users=10, item=99).empty
