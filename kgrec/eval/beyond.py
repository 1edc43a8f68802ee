"""Beyond recall and NDCG: the measures the field reports next to them, and who gains.

Computed on the test protocol (train and validation items masked, every item a candidate), for
the users who have test items:

* ``auc``: per user, the probability that a held-out item scores above an item the user never
  interacted with (every unobserved, unmasked item is a negative; ties count one half), averaged
  over users. It looks at the whole ranking, not only its top.
* ``coverage@K``: the share of the catalogue that appears in at least one user's top K.
* ``long_tail_share@K``: per user, the share of the top K that is *not* among the head items
  (the 20% most interacted-with in training, :data:`HEAD_SHARE`), averaged.
* ``novelty@K``: the mean self-information ``-log2(p_i)`` of recommended items, ``p_i`` the share
  of users who interacted with item ``i`` in training (at least one user counted, so an item
  nobody took gets the largest finite value) (Zhou et al., PNAS 2010).
* ``ild@K``: intra-list diversity by the knowledge graph: per user, the mean Jaccard distance
  between the entity sets (genres, people, ...) of each pair of items in the top K, averaged
  over users; pairs in which neither item has an entity are left out (no KG: not reported).

And the accuracy metrics broken down the ways the KG is expected to matter:

* ``by_history``: users grouped by their number of training items (:data:`HISTORY_BUCKETS`);
* ``by_popularity``: the held-out items split into head and long tail, each ranked against the
  full catalogue (recall@K on the tail = how often a held-out long-tail item is found).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from kgrec.eval.metrics import ScoreFn, _masked_scores, full_ranking_metrics, topk_items
from kgrec.graph.useritem import UserItemSets

#: Users by number of training items: (low, high) inclusive; None = no upper bound.
HISTORY_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 5), (6, 20), (21, None))
#: The head: this share of the items, the most interacted-with in training.
HEAD_SHARE = 0.2


def bucket_name(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


def item_popularity(train: UserItemSets) -> np.ndarray:
    """Training interactions per item (``[num_items]``, int64)."""
    _, items = train.pairs()
    return np.bincount(items.cpu().numpy(), minlength=train.num_items).astype(np.int64)


def head_items(popularity: np.ndarray, share: float = HEAD_SHARE) -> np.ndarray:
    """``[num_items]`` bool: the ``share`` most popular items (ties broken by item index)."""
    n_head = int(math.ceil(share * len(popularity)))
    order = np.lexsort((np.arange(len(popularity)), -popularity))
    head = np.zeros(len(popularity), dtype=bool)
    head[order[:n_head]] = True
    return head


def auc_per_user(score_fn: ScoreFn, truth: UserItemSets, exclude: UserItemSets | None, users: Tensor, batch_size: int = 1024) -> Tensor:
    """Per-user AUC (see the module docstring), for ``users`` (all of whom have truth items)."""
    out = []
    for batch in torch.split(users, batch_size):
        scores = score_fn(batch).float()
        device = scores.device
        batch_dev = batch.to(device)
        positive = truth.to(device).dense_rows(batch_dev)
        masked = _masked_scores(scores, batch_dev, exclude.to(device) if exclude is not None else None, truth.num_items)
        excluded = masked == -math.inf
        negatives = ~positive & ~excluded
        # each row's negative scores, sorted, with the rest pushed past the end as +inf
        neg_sorted = torch.where(negatives, scores, torch.full_like(scores, math.inf)).sort(dim=1).values
        below = torch.searchsorted(neg_sorted, scores.contiguous(), right=False)
        below_or_tie = torch.searchsorted(neg_sorted, scores.contiguous(), right=True)
        wins = (below.double() + 0.5 * (below_or_tie - below).double()) * positive
        n_pos = positive.sum(1).double()
        n_neg = negatives.sum(1).double()
        out.append((wins.sum(1) / (n_pos * n_neg).clamp_min(1)).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def item_entity_sets(kg) -> list[frozenset[int]]:
    """Per item position, the set of KG entity nodes it links to (either direction)."""
    from kgrec.graph.container import ITEM, USER

    offsets = kg.node_offsets()
    sets: list[set[int]] = [set() for _ in range(kg.num_items)]
    for (src, _rel, dst), store in kg.data.edge_items():
        if "edge_index" not in store:
            continue
        ei = store.edge_index.numpy()
        if src == ITEM and dst not in (USER, ITEM):
            for i, e in zip(ei[0].tolist(), (ei[1] + offsets[dst]).tolist()):
                sets[i].add(e)
    return [frozenset(s) for s in sets]


def intra_list_diversity(lists: np.ndarray, entities: list[frozenset[int]]) -> float:
    """Mean over users of the mean pairwise Jaccard distance of their list's entity sets."""
    per_user = []
    for row in lists:
        row = [i for i in row.tolist() if i >= 0]
        distances = []
        for a in range(len(row)):
            ea = entities[row[a]]
            for b in range(a + 1, len(row)):
                eb = entities[row[b]]
                union = len(ea | eb)
                if union:
                    distances.append(1.0 - len(ea & eb) / union)
        if distances:
            per_user.append(sum(distances) / len(distances))
    return float(np.mean(per_user)) if per_user else float("nan")


def list_measures(lists: np.ndarray, popularity: np.ndarray, head: np.ndarray, num_users: int, ks: Sequence[int], entities: list[frozenset[int]] | None) -> dict[str, float]:
    """coverage, long-tail share, novelty (and ILD with ``entities``) of top-K ``lists`` at each K."""
    info = -np.log2(np.maximum(popularity, 1) / max(num_users, 1))
    out: dict[str, float] = {}
    has_entities = entities is not None and any(entities)
    for k in ks:
        top = lists[:, :k]
        valid = top >= 0
        items = top[valid]
        out[f"coverage@{k}"] = float(len(np.unique(items)) / len(popularity)) if len(popularity) else 0.0
        tail = np.where(valid, ~head[np.maximum(top, 0)], False)
        per_user = tail.sum(1) / np.maximum(valid.sum(1), 1)
        out[f"long_tail_share@{k}"] = float(per_user.mean()) if len(per_user) else 0.0
        out[f"novelty@{k}"] = float(info[items].mean()) if len(items) else 0.0
        if has_entities:
            out[f"ild@{k}"] = intra_list_diversity(top, entities)
    return out


def _subset(sets: UserItemSets, keep_items: np.ndarray) -> UserItemSets:
    users, items = (t.cpu().numpy() for t in sets.pairs())
    keep = keep_items[items]
    return UserItemSets.from_pairs(users[keep], items[keep], sets.num_users, sets.num_items)


def evaluation_details(
    score_fn: ScoreFn,
    truth: UserItemSets,
    exclude: UserItemSets,
    train: UserItemSets,
    ks: Sequence[int],
    batch_size: int = 1024,
    entities: list[frozenset[int]] | None = None,
    per_user: pd.DataFrame | None = None,
) -> dict:
    """``{"beyond": {...}, "by_history": {...}, "by_popularity": {...}}`` for one held-out set.

    Args:
        score_fn: ``[B] -> [B, items]`` ranking scores (what recommend ranks by).
        truth, exclude: the held-out items and the masked ones (the test protocol).
        train: the training positives (history lengths, item popularity).
        entities: per item, its KG entity nodes (:func:`item_entity_sets`) for ILD; None: no ILD.
        per_user: the per-user metrics of this very ranking, when the caller has them already
            (``full_ranking_metrics(..., return_per_user=True)``); computed otherwise.
    """
    ks = sorted(set(int(k) for k in ks))
    truth, exclude, train = truth.to("cpu"), exclude.to("cpu"), train.to("cpu")
    if per_user is None:
        _, per_user = full_ranking_metrics(score_fn, truth, exclude, ks=ks, batch_size=batch_size, progress=False, return_per_user=True)
    users = torch.as_tensor(per_user["user"].to_numpy().copy(), dtype=torch.long)
    popularity = item_popularity(train)
    head = head_items(popularity)
    beyond = {"auc": float(auc_per_user(score_fn, truth, exclude, users, batch_size).mean()) if len(users) else 0.0}
    lists, _ = topk_items(score_fn, users, exclude, max(ks), batch_size, progress=False)
    beyond.update(list_measures(lists.numpy(), popularity, head, train.num_users, ks, entities))

    history = train.row_counts().cpu().numpy()[per_user["user"].to_numpy()]
    metric_cols = [c for c in per_user.columns if c != "user"]
    by_history = {}
    for low, high in HISTORY_BUCKETS:
        rows = (history >= low) & (history <= (high if high is not None else np.iinfo(np.int64).max))
        group = per_user.loc[rows, metric_cols]
        by_history[bucket_name(low, high)] = {**{c: float(group[c].mean()) if len(group) else 0.0 for c in metric_cols}, "num_users": int(rows.sum())}
    zero = int((history == 0).sum())
    if zero:
        by_history["0"] = {**{c: float(per_user.loc[history == 0, c].mean()) for c in metric_cols}, "num_users": zero}

    by_popularity = {}
    for name, keep in (("head", head), ("tail", ~head)):
        part = full_ranking_metrics(score_fn, _subset(truth, keep), exclude, ks=ks, batch_size=batch_size, progress=False)
        by_popularity[name] = {**part, "num_items": int(keep.sum())}
    return {"beyond": beyond, "by_history": by_history, "by_popularity": by_popularity}


__all__ = [
    "HEAD_SHARE",
    "HISTORY_BUCKETS",
    "auc_per_user",
    "evaluation_details",
    "head_items",
    "item_entity_sets",
    "item_popularity",
    "list_measures",
]
