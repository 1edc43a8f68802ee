"""Per-user item sets (training positives, held-out truth) as a compact CSR structure.

Used by negative sampling (is this item a positive of that user?), by full-ranking evaluation
(which items to mask, which are relevant) and by recommendation (which items to exclude).
Everything is a torch tensor so the same code runs on CPU and on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class UserItemSets:
    """A sparse user x item 0/1 matrix in CSR form, rows sorted, no duplicates.

    Attributes:
        indptr: ``[num_users + 1]`` row pointers.
        indices: ``[nnz]`` item indices, sorted within each row.
        num_users, num_items: the matrix shape.
    """

    indptr: Tensor
    indices: Tensor
    num_users: int
    num_items: int

    @classmethod
    def from_pairs(cls, users, items, num_users: int, num_items: int) -> "UserItemSets":
        users = torch.as_tensor(np.array(users), dtype=torch.long).reshape(-1)
        items = torch.as_tensor(np.array(items), dtype=torch.long).reshape(-1)
        if users.numel() != items.numel():
            raise ValueError("users and items must have the same length")
        if users.numel():
            if int(users.min()) < 0 or int(users.max()) >= num_users:
                raise ValueError("user index out of range")
            if int(items.min()) < 0 or int(items.max()) >= num_items:
                raise ValueError("item index out of range")
        keys = torch.unique(users * num_items + items)  # sorted, deduplicated
        rows = torch.div(keys, num_items, rounding_mode="floor")
        cols = keys - rows * num_items
        counts = torch.bincount(rows, minlength=num_users)
        indptr = torch.zeros(num_users + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(counts, 0)
        return cls(indptr, cols, num_users, num_items)

    @property
    def nnz(self) -> int:
        return int(self.indices.numel())

    def to(self, device) -> "UserItemSets":
        return UserItemSets(self.indptr.to(device), self.indices.to(device), self.num_users, self.num_items)

    def row_counts(self) -> Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def row(self, user: int) -> Tensor:
        return self.indices[self.indptr[user] : self.indptr[user + 1]]

    def pairs(self) -> tuple[Tensor, Tensor]:
        """All (user, item) pairs, users ascending."""
        users = torch.repeat_interleave(
            torch.arange(self.num_users, device=self.indptr.device), self.row_counts()
        )
        return users, self.indices

    def keys(self) -> Tensor:
        """Sorted ``user * num_items + item`` keys, for vectorised membership tests."""
        users, items = self.pairs()
        return users * self.num_items + items

    def contains(self, users: Tensor, items: Tensor, keys: Tensor | None = None) -> Tensor:
        """Boolean tensor: is ``items[j]`` in the set of ``users[j]``? Pass cached ``keys`` in loops."""
        keys = self.keys() if keys is None else keys
        if keys.numel() == 0:
            return torch.zeros_like(users, dtype=torch.bool)
        query = users * self.num_items + items
        pos = torch.searchsorted(keys, query).clamp_(max=keys.numel() - 1)
        return keys[pos] == query

    def dense_rows(self, users: Tensor) -> Tensor:
        """``[len(users), num_items]`` boolean mask of the given users' items."""
        users = users.to(self.indptr.device)
        starts, ends = self.indptr[users], self.indptr[users + 1]
        lengths = ends - starts
        row_ids = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), lengths)
        offsets = torch.arange(int(lengths.sum()), device=users.device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        cols = self.indices[torch.repeat_interleave(starts, lengths) + offsets]
        mask = torch.zeros(users.numel(), self.num_items, dtype=torch.bool, device=users.device)
        mask[row_ids, cols] = True
        return mask

    def union(self, other: "UserItemSets") -> "UserItemSets":
        u1, i1 = self.pairs()
        u2, i2 = other.pairs()
        return UserItemSets.from_pairs(
            torch.cat([u1, u2]).cpu(), torch.cat([i1, i2]).cpu(), self.num_users, self.num_items
        )
