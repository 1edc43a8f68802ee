r"""Choose, on validation, how much of the item-item view to blend into the GNN's scores.

The two views score on different scales, so the blend is searched over a scale-free share
:math:`\alpha`: the ranking score is

.. math::
    s_{ui} = \mathbf{z}_u^\top \mathbf{z}_i + \beta\, (\mathbf{x}_u \mathbf{B})_i, \qquad
    \beta = \frac{\alpha}{1 - \alpha} \cdot \frac{\sigma_{\text{dot}}}{\sigma_{\text{ease}}},

which ranks like :math:`(1-\alpha)\,\text{dot}/\sigma_{\text{dot}} + \alpha\,\text{ease}/\sigma_{\text{ease}}`,
each view divided by the standard deviation of its scores over the validation users. The share
with the best validation metric wins (ties go to the smaller share); :math:`\alpha = 0` is
always a candidate, so a view that does not help is switched off. The test set is not touched.
"""

from __future__ import annotations

import torch

from kgrec.eval.metrics import full_ranking_metrics
from kgrec.graph.useritem import UserItemSets
from kgrec.models.base import Embeddings, Recommender

#: Shares of the item-item view tried on validation.
SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _score_std(score_fn, users: torch.Tensor, batch_size: int) -> float:
    """Standard deviation of every score of ``users`` (all items), accumulated in float64."""
    total = total_sq = count = 0.0
    for lo in range(0, users.numel(), batch_size):
        s = score_fn(users[lo : lo + batch_size]).double()
        total += float(s.sum())
        total_sq += float((s * s).sum())
        count += s.numel()
    mean = total / max(count, 1)
    return max(total_sq / max(count, 1) - mean * mean, 0.0) ** 0.5


def select_blend(
    model: Recommender,
    emb: Embeddings,
    valid: UserItemSets,
    train: UserItemSets,
    metric: str,
    ks,
    batch_size: int,
) -> dict:
    """Set ``model.item_item.blend`` to the validation-best share; return what was tried.

    Args:
        model: a trained recommender with an item-item view (its weights already selected).
        emb: its embeddings of the training graph (:meth:`Recommender.infer`).
        valid, train: validation truth and the training positives masked out of the ranking.
        metric: the selection metric, e.g. ``"ndcg@20"``.

    Returns:
        ``{"share", "blend", "valid": {...metrics at the chosen share}, "tried": {share: metric}}``.
    """
    view = model.item_item
    users = torch.nonzero(valid.row_counts() > 0).flatten()
    with view.remembering():  # the view's scores of these users are the same for every share: computed once
        dot_std = _score_std(lambda b: model.dot_scores(b, emb), users, batch_size)
        view_std = _score_std(view, users, batch_size)
        # a constant dot product (untrained, or all zero) ranks nothing: any positive weight then lets the view rank
        scale = (dot_std if dot_std > 0 else 1.0) / view_std if view_std > 0 else 0.0

        tried, best = {}, None
        for share in SHARES:
            view.blend.fill_(share / (1.0 - share) * scale)
            metrics = full_ranking_metrics(
                lambda b: model.full_scores(b, emb), valid, train, ks=ks, batch_size=batch_size
            )
            tried[share] = metrics[metric]
            if best is None or metrics[metric] > best[2][metric]:
                best = (share, float(view.blend), metrics)
    share, blend, metrics = best
    view.blend.fill_(blend)
    return {"share": share, "blend": blend, "valid": metrics, "tried": tried}


__all__ = ["SHARES", "select_blend"]
