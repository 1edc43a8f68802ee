"""Negative sampling for the CF loss (items) and the knowledge-graph loss (tails).

Everything is vectorised and runs on the device of its inputs with an explicit
:class:`torch.Generator`, so a run is reproducible from its seed. The generator must live on
that same device (``torch.Generator(device=users.device)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from kgrec.graph.useritem import UserItemSets
from kgrec.models.base import Batch, KgTriples


def sample_negative_items(
    users: Tensor,
    positives: UserItemSets,
    num_items: int,
    num_negatives: int,
    generator: torch.Generator,
    keys: Tensor | None = None,
    max_rounds: int = 10,
) -> Tensor:
    """Uniform negative items per user, never one of that user's training positives.

    Draws ``num_negatives`` items per user, then for up to ``max_rounds`` rounds replaces the
    draws that hit a positive by fresh uniform draws (rejection sampling: each accepted draw
    is uniform over the user's non-positive items). Replacements are drawn for the whole batch
    and merged with ``torch.where``, so no host-device synchronisation is needed to size them;
    the loop stops as soon as no collision is left, which for sparse data is after one round.

    Draws still on a positive after ``max_rounds`` (likely only for users who interacted with
    most of the catalogue: probability ``density ** (max_rounds + 1)``) are replaced by an
    exact draw: the k-th non-positive item of that user for a uniform k, found by binary search
    over the user's sorted positives. The result is therefore never a positive, except for a
    user whose every item is a positive, who keeps uniform draws (there is no negative to give).

    Args:
        users: ``[B]`` user indices (``[0, num_users)``).
        positives: the training positives (item indices in ``[0, num_items)``), on the
            device of ``users``.
        num_items: number of items to draw from.
        num_negatives: draws per user.
        generator: random generator on the device of ``users``.
        keys: ``positives.keys()``, cached by the caller across batches.
        max_rounds: bound on the rejection rounds before the exact fallback.

    Returns:
        ``[B, num_negatives]`` item indices (local, in ``[0, num_items)``).
    """
    if num_negatives <= 0:
        raise ValueError(f"num_negatives must be positive, got {num_negatives}")
    if num_items <= 0:
        raise ValueError(f"num_items must be positive, got {num_items}")
    keys = positives.keys() if keys is None else keys
    device = users.device
    shape = (users.numel(), num_negatives)
    expanded_users = users.reshape(-1, 1).expand(shape)
    items = torch.randint(num_items, shape, generator=generator, device=device)
    for _ in range(max_rounds):
        collision = positives.contains(expanded_users, items, keys)
        if not bool(collision.any()):
            return items
        redraw = torch.randint(num_items, shape, generator=generator, device=device)
        items = torch.where(collision, redraw, items)
    collision = positives.contains(expanded_users, items, keys)
    if bool(collision.any()):
        exact = _kth_non_positive(expanded_users, positives, num_items, generator)
        items = torch.where(collision, exact, items)
    return items


def _kth_non_positive(
    users: Tensor, positives: UserItemSets, num_items: int, generator: torch.Generator
) -> Tensor:
    """One uniform non-positive item per entry of ``users`` (any shape), without rejection.

    With a user's positives sorted, ``p_i - i`` counts the non-positive items before ``p_i``;
    the k-th non-positive (0-based) is ``k + #{i : p_i - i <= k}``. Users without any
    non-positive get an arbitrary item.
    """
    row_users, row_items = positives.pairs()
    rank_in_row = torch.arange(row_items.numel(), device=row_items.device) - positives.indptr[row_users]
    gap_keys = row_users * num_items + (row_items - rank_in_row)  # sorted: rows, then gaps
    free = num_items - positives.row_counts()[users]
    uniform = torch.rand(users.shape, generator=generator, device=users.device, dtype=torch.float64)
    k = (uniform * free.clamp(min=1)).long().clamp(max=(free - 1).clamp(min=0))
    before = torch.searchsorted(gap_keys, users * num_items + k, right=True) - positives.indptr[users]
    return (k + before).clamp(max=num_items - 1)


@dataclass(frozen=True)
class NodeTypeIndex:
    """Nodes grouped by node type, for drawing a random node of a given type.

    Attributes:
        order: ``[N]`` node indices sorted by type.
        offsets: ``[T]`` where each type's block starts in :attr:`order`.
        counts: ``[T]`` nodes per type.
        rank: ``[N]`` position of each node inside its type's block.
    """

    order: Tensor
    offsets: Tensor
    counts: Tensor
    rank: Tensor

    @classmethod
    def from_node_type(cls, node_type: Tensor) -> "NodeTypeIndex":
        order = torch.argsort(node_type, stable=True)
        num_types = int(node_type.max()) + 1 if node_type.numel() else 0
        counts = torch.bincount(node_type, minlength=num_types)
        offsets = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=order.device) - offsets[node_type[order]]
        return cls(order, offsets, counts, rank)


def sample_tail_negatives(
    tails: Tensor,
    node_type: Tensor,
    generator: torch.Generator,
    num_negatives: int | None = None,
    index: NodeTypeIndex | None = None,
) -> Tensor:
    """Corrupted tails for the KG loss: random nodes of the same type as each true tail.

    A corrupted tail is drawn uniformly among the *other* nodes of the tail's type (so a film's
    genre is replaced by another genre, never by a user). When the tail is the only node of its
    type there is no other: the tail itself is returned and that triple contributes a constant
    to the BPR loss.

    Args:
        tails: ``[B]`` global node indices of the true tails.
        node_type: ``[N]`` node-type id of every node (``GraphTensors.node_type``).
        generator: random generator on the device of ``tails``.
        num_negatives: None returns ``[B]``; an integer returns ``[B, num_negatives]``.
        index: ``NodeTypeIndex.from_node_type(node_type)``, cached by the caller.

    Returns:
        Global node indices, ``[B]`` or ``[B, num_negatives]``.
    """
    index = NodeTypeIndex.from_node_type(node_type) if index is None else index
    shape = tails.shape if num_negatives is None else (*tails.shape, num_negatives)
    types = node_type[tails]
    count, offset, rank = index.counts[types], index.offsets[types], index.rank[tails]
    if num_negatives is not None:
        count, offset, rank = count.unsqueeze(-1), offset.unsqueeze(-1), rank.unsqueeze(-1)
    others = (count - 1).clamp(min=1)
    uniform = torch.rand(shape, generator=generator, device=tails.device)
    draw = (uniform * others).long().clamp(max=others - 1)
    # Skip over the true tail's own slot: uniform over the other count - 1 nodes.
    draw = draw + (draw >= rank).long() * (count > 1).long()
    draw = torch.where(count > 1, draw, rank)
    return index.order[offset + draw]


def sample_kg_triples(
    kg_edge_index: Tensor,
    kg_edge_type: Tensor,
    node_type: Tensor,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    index: NodeTypeIndex | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A batch of knowledge edges for the KG loss, drawn uniformly with replacement.

    Returns:
        ``(heads, relations, tails, corrupted_tails)``, each ``[batch_size]`` on ``device``
        (corrupted tails from :func:`sample_tail_negatives`).
    """
    pick = torch.randint(kg_edge_index.size(1), (batch_size,), generator=generator, device=generator.device).to(device)
    heads, tails = kg_edge_index[0, pick], kg_edge_index[1, pick]
    return heads, kg_edge_type[pick], tails, sample_tail_negatives(tails, node_type, generator, index=index)


#: Above this many ``batch x items`` cells accidental positives are found by key look-up.
DENSE_MASK_LIMIT = 1 << 24


class BatchSampler:
    """Draws a training step's :class:`~kgrec.models.base.Batch` from its (user, positive) pairs.

    Per-user uniform negatives for BPR; for the sampled softmax one set of ``num_negatives``
    items shared by the batch (as many as the catalogue: every item once, the full softmax),
    with the accidental positives marked so the loss can mask them; and, with a knowledge-edge
    loss, a batch of knowledge triples with corrupted tails. Everything is drawn from
    ``generator`` before the forward pass, in that order, so a CPU run is reproducible from its
    seed whichever encoder runs after it.

    Args:
        g: the training graph (its knowledge edges and node types).
        train: the training positives, on the training device.
        train_config: ``[train]`` (loss, num_negatives, kg_loss_weight, kg_batch_size).
        generator: the sampling generator, on the training device.
    """

    def __init__(self, g, train: UserItemSets, train_config, generator: torch.Generator):
        self.g = g
        self.train = train
        self.keys = train.keys()
        self.loss = train_config.loss
        self.num_negatives = train_config.num_negatives
        self.kg_batch_size = train_config.kg_batch_size
        self.with_kg = train_config.kg_loss_weight > 0 and g.kg_edge_index.size(1) > 0
        self.tail_index = NodeTypeIndex.from_node_type(g.node_type)
        self.generator = generator

    def __call__(self, users: Tensor, positives: Tensor) -> Batch:
        g, generator = self.g, self.generator
        accidental = None
        if self.loss == "softmax":
            negatives = self.shared_negatives(users.device)
            accidental = self.accidental_positives(users, negatives)
        else:
            negatives = sample_negative_items(users, self.train, g.num_items, self.num_negatives, generator, keys=self.keys)
        kg = None
        if self.with_kg:
            kg = KgTriples(*sample_kg_triples(
                g.kg_edge_index, g.kg_edge_type, g.node_type, self.kg_batch_size, generator, users.device, self.tail_index
            ))  # fmt: skip
        return Batch(users, positives, negatives, accidental, kg)

    def shared_negatives(self, device: torch.device) -> Tensor:
        """``[n]`` negatives for the whole batch; every item once when ``n`` covers the catalogue."""
        num_items = self.g.num_items
        if self.num_negatives >= num_items:  # the exact (full) softmax, no sampling noise
            return torch.arange(num_items, device=device)
        return torch.randint(num_items, (self.num_negatives,), generator=self.generator, device=self.generator.device).to(device)

    def accidental_positives(self, users: Tensor, negatives: Tensor) -> Tensor:
        """``[B, n]``: which shared negatives are a training positive of each user."""
        if users.numel() * self.g.num_items <= DENSE_MASK_LIMIT:  # small catalogue: one dense row per user
            return self.train.dense_rows(users)[:, negatives]  # cheaper than n * B key look-ups
        # large catalogue: B * n sorted-key look-ups, no [B, items] mask and no host sync
        return self.train.contains(users.unsqueeze(1), negatives.unsqueeze(0), keys=self.keys)
