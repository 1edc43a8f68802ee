"""A split as per-user item sets on a device: what training masks and evaluation scores against.

The three parts (train, valid, test) are :class:`~kgrec.graph.useritem.UserItemSets` over the
same catalogue. Masks follow the protocol: validation ranks with the training items masked,
test with training and validation items masked (:meth:`SplitSets.seen_at_test`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
from torch import Tensor

from kgrec.eval.metrics import full_ranking_metrics
from kgrec.eval.splits import Split
from kgrec.graph.useritem import UserItemSets


class Ranker(Protocol):
    """What evaluation needs of a model: ranking scores of users against the whole catalogue."""

    def full_scores(self, users: Tensor, emb: Any) -> Tensor: ...


@dataclass
class SplitSets:
    """A split as per-user item sets on the training (or inference) device."""

    train: UserItemSets
    valid: UserItemSets
    test: UserItemSets

    @classmethod
    def from_split(cls, split: Split, num_users: int, num_items: int, device) -> "SplitSets":
        """``num_items`` may exceed the split's items: items added after training are in no part."""

        def sets(df: pd.DataFrame) -> UserItemSets:
            return UserItemSets.from_pairs(df["user"].to_numpy(), df["item"].to_numpy(), num_users, num_items).to(device)

        return cls(sets(split.train), sets(split.valid), sets(split.test))

    def seen_at_test(self) -> UserItemSets:
        """Train and validation items: what a test ranking (and a recommendation) never shows."""
        return self.train.union(self.valid).to(self.train.indptr.device)

    def truth_and_mask(self, which: str) -> tuple[UserItemSets, UserItemSets]:
        """``(truth, masked)`` of the ``valid`` or ``test`` protocol."""
        if which == "valid":
            return self.valid, self.train
        if which == "test":
            return self.test, self.seen_at_test()
        raise ValueError(f"unknown evaluation set {which!r} (valid or test)")

    def evaluate(self, model: Ranker, emb: Any, which: str, ks: Sequence[int], batch_size: int, **options) -> dict[str, float]:
        """Full-ranking metrics of ``model`` (scoring with embeddings ``emb``) on ``valid`` or ``test``."""
        truth, masked = self.truth_and_mask(which)
        return full_ranking_metrics(lambda users: model.full_scores(users, emb), truth, masked, ks=ks, batch_size=batch_size, **options)


__all__ = ["Ranker", "SplitSets"]
