"""Item to item: "more like this" and "often taken together".

* :func:`similar_items` -- cosine similarity of the trained model's final item embeddings:
  what the model considers interchangeable (same audience, same knowledge neighbourhood).
  Works for cold items added without retraining, since they have embeddings too.
* :func:`bundle_items` -- association by **lift** over the training interactions,
  ``lift(i, j) = P(i and j) / (P(i) P(j)) = n_ij * U / (n_i * n_j)``: how much more often the
  two are taken by the same user than chance would have it. Raw co-occurrence counts would
  only rediscover the most popular items; lift corrects for popularity, and a minimum support
  (users who took both) keeps one-off coincidences out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from kgrec.errors import KgrecError


def similar_items(item_emb: Tensor, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` items whose embeddings are closest (cosine) to ``item``'s, itself excluded.

    Args:
        item_emb: ``[I, d]`` final item embeddings.
        item: position of the query item in ``item_emb``.

    Returns:
        ``(positions, cosines)``, best first.
    """
    if k < 1:
        raise KgrecError(f"k must be at least 1, got {k}")
    unit = torch.nn.functional.normalize(item_emb.float(), dim=-1)
    sims = unit @ unit[item]
    sims[item] = -float("inf")
    top = torch.topk(sims, min(k, sims.numel() - 1))
    return top.indices.cpu().numpy(), top.values.cpu().numpy()


def bundle_items(
    users: np.ndarray, items: np.ndarray, num_users: int, item: int, k: int = 10, min_support: int = 2
) -> pd.DataFrame:
    """Items most often taken together with ``item``, by lift.

    Args:
        users, items: the (user, item) pairs to count, e.g. the training interactions.
        num_users: number of users (``U`` in the lift).
        item: the query item.
        min_support: least number of users who took both.

    Returns:
        DataFrame with columns ``item``, ``together`` (users who took both), ``lift`` and
        ``confidence`` (``n_ij / n_i``: the share of the query item's users who took it),
        best lift first; empty when nobody took the item.
    """
    pairs = pd.DataFrame({"user": np.asarray(users), "item": np.asarray(items)}).drop_duplicates()
    takers = pairs.loc[pairs["item"] == item, "user"].unique()
    columns = ["item", "together", "lift", "confidence"]
    if len(takers) == 0:
        return pd.DataFrame(columns=columns)
    popularity = pairs["item"].value_counts()
    together = pairs.loc[pairs["user"].isin(takers) & (pairs["item"] != item), "item"].value_counts()
    together = together[together >= min_support]
    n_i = len(takers)
    frame = pd.DataFrame(
        {
            "item": together.index.to_numpy(),
            "together": together.to_numpy(),
            "lift": together.to_numpy() * num_users / (n_i * popularity.reindex(together.index).to_numpy()),
            "confidence": together.to_numpy() / n_i,
        }
    )
    return frame.sort_values(["lift", "together", "item"], ascending=[False, False, True]).head(k).reset_index(drop=True)
