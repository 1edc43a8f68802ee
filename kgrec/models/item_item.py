r"""A linear item-item view of the training history, blended into the GNN's dot-product scores.

Why: on dense data sets a closed-form item-item model is a strong collaborative filter of its
own, and it makes different mistakes than an embedding model (it keeps every co-occurrence,
where a 64-dimensional embedding keeps a low-rank summary). On MovieLens-100K, EASE alone ranks
about as well as kgrec's GNN, and their blend ranks better than either (see the README). The
GNN is trained exactly as without the view; the blend weight is chosen afterwards on
validation (:func:`kgrec.train.blend.select_blend`), and it is 0 when the view does not help.

The view is EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019):

.. math::
    \mathbf{P} = (\mathbf{X}^\top \mathbf{X} + \lambda \mathbf{I})^{-1}, \qquad
    B_{ij} = -P_{ij} / P_{jj} \ (i \ne j), \qquad B_{jj} = 0,

the ridge regression of every item's column on all the others with a zero diagonal, and the
score of user :math:`u` for item :math:`j` is :math:`(\mathbf{x}_u \mathbf{B})_j`, the sum of
``B[i, j]`` over the user's training items ``i``. It is still a dot product -- of the user's
history with a column of ``B`` -- so the blended score is the dot product of the concatenated
views. ``B`` costs an ``[items, items]`` matrix and one Cholesky inversion, hence the limit of
:data:`MAX_ITEMS` items.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.graph.useritem import UserItemSets

#: Largest catalogue for the item-item view: ``B`` and the Gram matrix are ``items x items``
#: (20,000 items: 3.2 GB each in float64, and an inversion of minutes on a few cores).
MAX_ITEMS = 20_000

#: Users per block when the Gram matrix is accumulated from dense history rows.
_GRAM_BLOCK = 4096

#: :meth:`ItemItemView.remembering` keeps scores only up to this many users x items cells
#: (128 MiB of float32); beyond, every ranking computes them again.
MEMO_CELLS = 1 << 25


#: The names ``model.item_item`` accepts.
KINDS = ("none", "ease")


def check_settings(kind: str, l2: float, num_items: int | None = None) -> None:
    """Raise a :class:`KgrecError` naming the ``model.item_item*`` key that is wrong: an unknown
    kind, an L2 that is not positive or (with ``num_items``) a catalogue over :data:`MAX_ITEMS`."""
    if kind.lower() not in KINDS:
        raise KgrecError(f"model.item_item = {kind!r} is not one of: {', '.join(KINDS)}")
    if not l2 > 0:
        raise KgrecError(f"model.item_item_l2 must be positive, got {l2}")
    if kind.lower() != "none" and num_items is not None and num_items > MAX_ITEMS:
        raise KgrecError(
            f"model.item_item = {kind!r} needs an items x items matrix; {num_items:,} items is more than "
            f"the {MAX_ITEMS:,} it allows (set model.item_item = \"none\" for this catalogue)"
        )


def ease_weights(history: UserItemSets, l2: float) -> Tensor:
    """EASE's item-item weights ``B [items, items]`` (float32, zero diagonal) from ``history``.

    Computed in float64 on the history's device: the Gram matrix is accumulated over blocks of
    users' dense rows (no ``[users, items]`` matrix), then inverted through its Cholesky factor
    (it is symmetric positive definite for any ``l2 > 0``).

    Raises:
        KgrecError: ``l2`` not positive, or a catalogue larger than :data:`MAX_ITEMS`.
    """
    check_settings("ease", l2, history.num_items)
    n = history.num_items
    device = history.indptr.device
    gram = torch.zeros(n, n, dtype=torch.float64, device=device)
    for lo in range(0, history.num_users, _GRAM_BLOCK):
        users = torch.arange(lo, min(lo + _GRAM_BLOCK, history.num_users), device=device)
        rows = history.dense_rows(users).to(torch.float64)
        gram += rows.T @ rows
    gram.diagonal().add_(l2)
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(gram))
    weights = -inverse / inverse.diagonal()  # column j divided by P_jj
    weights.fill_diagonal_(0.0)
    return weights.to(torch.float32)


class ItemItemView(nn.Module):
    """EASE scores of the training history, with the blend weight that joins them to the GNN's.

    ``blend`` is a (persistent) buffer: it is saved with the model's weights, so a loaded run
    ranks exactly as it was evaluated. ``weights`` is *not* saved -- it is a deterministic
    function of the training split and ``l2``, recomputed when the run is loaded -- and it is
    not a buffer either, so DistributedDataParallel does not broadcast an ``items x items``
    matrix at every step.

    Args:
        weights: ``[items, items]`` EASE weights (:func:`ease_weights`).
        history: the training positives the user scores are computed from.
    """

    def __init__(self, weights: Tensor, history: UserItemSets):
        super().__init__()
        if weights.shape != (history.num_items, history.num_items):
            raise ValueError(f"weights {tuple(weights.shape)} do not match {history.num_items} items")
        self.weights = weights
        self.history = history.to(weights.device)
        self.register_buffer("blend", torch.zeros((), dtype=torch.float32))
        self._memo: dict[bytes, Tensor] | None = None

    @classmethod
    def fit(cls, history: UserItemSets, l2: float) -> "ItemItemView":
        return cls(ease_weights(history, l2), history)

    def _apply(self, fn, recurse: bool = True):
        """Move (or cast) the unregistered ``weights`` and the history with the module."""
        super()._apply(fn, recurse)
        self.weights = fn(self.weights)
        self.history = self.history.to(self.weights.device)
        return self

    @property
    def num_items(self) -> int:
        return self.history.num_items

    def forward(self, users: Tensor) -> Tensor:
        """``[len(users), items]`` EASE scores of the given users' training histories."""
        key = users.cpu().numpy().tobytes() if self._memo is not None else None
        if key is not None and key in self._memo:
            return self._memo[key]
        rows = self.history.dense_rows(users.to(self.weights.device))
        scores = rows.to(self.weights.dtype) @ self.weights
        if key is not None and sum(t.numel() for t in self._memo.values()) + scores.numel() <= MEMO_CELLS:
            self._memo[key] = scores
        return scores

    @contextmanager
    def remembering(self):
        """Within it, a batch of users asked for again gets the scores computed the first time.

        The view's scores of a user change only with the history and the weights, which are
        fixed once the view is fitted; rankings that try blend weights on the same users (the
        blend selection, an update's passes) then compute them once instead of once per
        ranking. The scores are the very same tensors, so rankings do not change. Up to
        :data:`MEMO_CELLS` cells are kept.
        """
        if self._memo is not None:  # already remembering (an enclosing ranking loop): keep its scores
            yield self
            return
        self._memo = {}
        try:
            yield self
        finally:
            self._memo = None

    def for_items(self, items: Tensor) -> Tensor:
        """``[items]`` EASE scores of a new user whose history is ``items`` (item positions)."""
        items = torch.as_tensor(items, dtype=torch.long, device=self.weights.device)
        return self.weights[torch.unique(items)].sum(0)


def build_item_item(kind: str, history: UserItemSets, l2: float) -> ItemItemView | None:
    """The view that ``model.item_item`` names (``"none"``: no view)."""
    check_settings(kind, l2, history.num_items)
    return None if kind.lower() == "none" else ItemItemView.fit(history, l2)


__all__ = ["KINDS", "MAX_ITEMS", "ItemItemView", "build_item_item", "check_settings", "ease_weights"]
