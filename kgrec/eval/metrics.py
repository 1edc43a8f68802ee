"""Full-ranking evaluation: every item is a candidate, known positives are masked.

Sampled evaluation (rank the positive among 100 random negatives) inflates scores and can even
reorder models, so kgrec only ranks against the whole catalogue. The definitions are the
standard ones, the same as RecBole's, with binary relevance:

* ``recall@K``    = hits in the top K / number of truth items of the user
* ``precision@K`` = hits in the top K / K
* ``hit@K``       = 1 if there is at least one hit in the top K, else 0
* ``ndcg@K``      = DCG / IDCG, DCG = sum over hits of 1 / log2(rank + 1) (rank 1-based), and
  IDCG the DCG of a perfect list with ``min(|truth|, K)`` hits
* ``mrr@K``       = 1 / rank of the first hit in the top K, else 0

Each metric is computed per user and then averaged over the evaluated users.

Everything happens on the device of the scores that ``score_fn`` returns (a GPU when the model
lives there); only the per-user results travel to the CPU, once, at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from kgrec.errors import KgrecError
from kgrec.graph.useritem import UserItemSets

#: Scores all items for a batch of users: ``LongTensor [B] -> FloatTensor [B, num_items]``.
ScoreFn = Callable[[Tensor], Tensor]

METRIC_NAMES = ("recall", "precision", "hit", "ndcg", "mrr")

#: Below this many batches a progress bar is only noise.
_MIN_BATCHES_FOR_PROGRESS = 5


def full_ranking_metrics(
    score_fn: ScoreFn,
    truth: UserItemSets,
    exclude: UserItemSets | None,
    ks: Sequence[int] = (10, 20, 50),
    batch_size: int = 1024,
    users: Tensor | Sequence[int] | None = None,
    *,
    progress: bool | None = None,
    return_per_user: bool = False,
) -> dict[str, float] | tuple[dict[str, float], pd.DataFrame]:
    """Rank all items for each user and average recall, precision, hit, NDCG and MRR at each K.

    Args:
        score_fn: scores of all items for a batch of user indices (see :data:`ScoreFn`).
        truth: the held-out relevant items per user (the validation or test set).
        exclude: items never to recommend, usually the training positives (and, on test,
            the validation positives); they are set to ``-inf`` before the top-K. None: none.
        ks: cut-offs.
        batch_size: users scored at once; the results do not depend on it.
        users: evaluate only these users. Either way, users without any truth item are
            skipped, since recall is undefined for them.
        progress: show a progress bar over batches; None shows it only when there are
            many batches.
        return_per_user: also return a DataFrame with one row per evaluated user
            (column ``user`` plus one column per metric).

    Returns:
        ``{"recall@20": ..., "ndcg@20": ..., ..., "num_users": n}``, or that dict and the
        per-user DataFrame when ``return_per_user``. With no user to evaluate every metric is
        0.0 and ``num_users`` is 0.
    """
    ks = _check_ks(ks)
    eval_users = _users_with_truth(truth, users)
    columns: dict[str, list[Tensor]] = {_key(m, k): [] for k in ks for m in METRIC_NAMES}
    device_sets: dict[torch.device, tuple[UserItemSets, UserItemSets | None]] = {}

    for batch in _batches(eval_users, batch_size, progress, desc="evaluating"):
        scores = score_fn(batch)
        device = scores.device
        if device not in device_sets:  # move the CSR sets once, not a dense mask per batch
            device_sets[device] = (truth.to(device), exclude.to(device) if exclude is not None else None)
        truth_dev, exclude_dev = device_sets[device]
        batch_dev = batch.to(device)

        scores = _masked_scores(scores, batch_dev, exclude_dev, truth.num_items)
        top_scores, top_items = torch.topk(scores, k=min(max(ks), truth.num_items), dim=1)
        # A masked item can only reach the top K when fewer than K candidates remain; it was
        # not recommended, so it is never a hit.
        hits = truth_dev.dense_rows(batch_dev).gather(1, top_items) & (top_scores != -math.inf)
        num_truth = truth_dev.row_counts()[batch_dev].to(torch.float64)
        for name, values in _metrics_from_hits(hits, num_truth, ks).items():
            columns[name].append(values)

    per_user = {name: torch.cat(parts).cpu() if parts else torch.zeros(0, dtype=torch.float64)
                for name, parts in columns.items()}
    summary = {name: float(values.mean()) if values.numel() else 0.0 for name, values in per_user.items()}
    summary["num_users"] = int(eval_users.numel())
    if not return_per_user:
        return summary
    frame = pd.DataFrame({"user": eval_users.cpu().numpy(), **{n: v.numpy() for n, v in per_user.items()}})
    return summary, frame


def topk_items(
    score_fn: ScoreFn,
    users: Tensor | Sequence[int],
    exclude: UserItemSets | None,
    k: int,
    batch_size: int = 1024,
    *,
    progress: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` best items per user, excluded items removed, best first.

    Returns:
        ``(items, scores)``, both ``[len(users), k]`` and on the CPU; ``items`` is a LongTensor,
        ``scores`` float32. When fewer than ``k`` items are left for a user (a tiny catalogue,
        or most of it excluded) the missing slots hold item ``-1`` and score ``-inf``; callers
        drop them (``items >= 0``).
    """
    if k < 1:
        raise KgrecError(f"k must be at least 1, got {k}")
    users = torch.as_tensor(users, dtype=torch.long).reshape(-1).cpu()
    all_items, all_scores = [], []
    exclude_on: dict[torch.device, UserItemSets] = {}
    for batch in _batches(users, batch_size, progress, desc="recommending"):
        scores = score_fn(batch)
        num_items = scores.shape[1]
        exclude_dev = None
        if exclude is not None:
            if scores.device not in exclude_on:  # move the CSR set once, not per batch
                exclude_on[scores.device] = exclude.to(scores.device)
            exclude_dev = exclude_on[scores.device]
        scores = _masked_scores(scores, batch.to(scores.device), exclude_dev, num_items)
        top_scores, top_items = torch.topk(scores.float(), k=min(k, num_items), dim=1)
        missing = top_scores == -math.inf
        top_items = top_items.masked_fill(missing, -1)
        if k > num_items:  # pad so every batch has k columns
            pad = k - num_items
            top_items = torch.nn.functional.pad(top_items, (0, pad), value=-1)
            top_scores = torch.nn.functional.pad(top_scores, (0, pad), value=-math.inf)
        all_items.append(top_items.cpu())
        all_scores.append(top_scores.cpu())
    if not all_items:
        return torch.zeros(0, k, dtype=torch.long), torch.zeros(0, k, dtype=torch.float32)
    return torch.cat(all_items), torch.cat(all_scores)


# --------------------------------------------------------------------------- helpers
def _key(metric: str, k: int) -> str:
    return f"{metric}@{k}"


def _check_ks(ks: Sequence[int]) -> list[int]:
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise KgrecError(f"cut-offs ks must be positive integers, got {list(ks)}")
    return ks


def _users_with_truth(truth: UserItemSets, users: Tensor | Sequence[int] | None) -> Tensor:
    """The users to evaluate (CPU LongTensor, ascending): given or all, minus those with no truth."""
    has_truth = truth.row_counts().cpu() > 0
    if users is None:
        return torch.nonzero(has_truth).reshape(-1)
    users = torch.as_tensor(users, dtype=torch.long).reshape(-1).cpu()
    if users.numel() and (int(users.min()) < 0 or int(users.max()) >= truth.num_users):
        raise ValueError(f"user indices must lie in [0, {truth.num_users})")
    return users[has_truth[users]]


def _batches(users: Tensor, batch_size: int, progress: bool | None, desc: str):
    if batch_size < 1:
        raise KgrecError(f"batch_size must be at least 1, got {batch_size}")
    batches = torch.split(users, batch_size)
    show = progress if progress is not None else len(batches) >= _MIN_BATCHES_FOR_PROGRESS
    return tqdm(batches, desc=desc, unit="batch", disable=None if show else True, leave=False)  # None: off when not a terminal


def _masked_scores(scores: Tensor, users: Tensor, exclude: UserItemSets | None, num_items: int) -> Tensor:
    """Check the score matrix and set excluded items to -inf (a copy: the caller's tensor stays)."""
    if scores.dim() != 2 or scores.shape != (users.numel(), num_items):
        raise ValueError(f"score_fn returned shape {tuple(scores.shape)}, expected ({users.numel()}, {num_items})")
    if torch.isnan(scores).any():
        raise KgrecError("the model produced NaN scores (did training diverge? try a lower learning rate)")
    if exclude is None:
        return scores
    if exclude.num_items != num_items:
        raise ValueError(f"exclude has {exclude.num_items} items, scores have {num_items}")
    return scores.masked_fill(exclude.dense_rows(users), -math.inf)


def _metrics_from_hits(hits: Tensor, num_truth: Tensor, ks: list[int]) -> dict[str, Tensor]:
    """Per-user metrics (float64) from the ``[B, K]`` hit matrix of the ranked lists."""
    hits = hits.to(torch.float64)
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64, device=hits.device)
    gains = 1.0 / torch.log2(ranks + 1.0)
    # ideal_dcg[j] = DCG of a perfect list with j hits; j may exceed the columns of `hits` when
    # the catalogue is smaller than K, hence the arange up to max(ks).
    all_ranks = torch.arange(1, max(ks) + 1, dtype=torch.float64, device=hits.device)
    ideal_dcg = torch.cat([torch.zeros(1, dtype=torch.float64, device=hits.device),
                           torch.cumsum(1.0 / torch.log2(all_ranks + 1.0), 0)])
    has_hit = hits.any(dim=1)
    first_hit_rank = torch.where(has_hit, hits.argmax(dim=1).to(torch.float64) + 1.0, math.inf)

    out = {}
    for k in ks:
        top = hits[:, :k]
        num_hits = top.sum(dim=1)
        ideal = ideal_dcg[torch.clamp(num_truth, max=k).long()]
        out[_key("recall", k)] = num_hits / num_truth
        out[_key("precision", k)] = num_hits / k
        out[_key("hit", k)] = (num_hits > 0).to(torch.float64)
        out[_key("ndcg", k)] = (top * gains[: top.shape[1]]).sum(dim=1) / ideal
        out[_key("mrr", k)] = torch.where(first_hit_rank <= k, 1.0 / first_hit_rank, 0.0)
    return out
