r"""The model contract: what every kgrec recommender answers, whatever its encoder.

A model is one :class:`Recommender` subclass in a module of its own plus an entry in
:data:`kgrec.models.registry.MODELS`. Training, evaluation, the trained-run object, the
exports and the benchmarks only ever use the members defined here (RecBole's
``calculate_loss`` / ``full_sort_predict`` and PyG's ``get_embedding`` / ``recommend``, in
kgrec's words):

=====================================  ===================================================
``model(g)`` / ``model(g, block=b)``   the raw forward pass: a tuple of tensors, what
                                       DistributedDataParallel sees and all-reduces for
``model.embeddings(out, g, block)``    that tuple as :class:`Embeddings`, looked up by node
``model.encode(g)``                    both at once, over the whole graph (training mode
                                       as set by the caller)
``model.infer(g)``                     :meth:`encode` in evaluation and inference mode,
                                       float32: what every ranking starts from
``model.loss(batch, emb)``             every training term of one :class:`Batch`, named
                                       and weighted; the trainer sums them
``model.start_epoch()``                called before each training epoch (a no-op unless
                                       the model refreshes something per epoch)
``model.full_scores(users, emb)``      ``[B, items]`` ranking scores: the dot product of
                                       the final embeddings plus, with an item-item view,
                                       its blended scores
``model.scores(users, items, emb)``    scores of aligned (user, item) pairs
``model.vector_scores(v, emb, liked)`` ``[items]`` scores of a new user's vector
=====================================  ===================================================

Full-graph training calls ``model.embeddings(replica(g), g)``, mini-batch training
``model.embeddings(replica(g, block=sub), g, sub)`` over a sampled block (models with
:attr:`Recommender.supports_blocks`), and both then call the same :meth:`Recommender.loss`.
Under torchrun ``replica`` is the DDP wrapper of the model, so its gradients are averaged
across processes; in one process it is the model itself.

The CF head is the dot product :math:`\hat{y}_{ui} = \mathbf{z}_u^\top \mathbf{z}_i`; a model
whose head differs overrides :meth:`Recommender.scores` and :meth:`Recommender.full_scores`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.models.graph_tensors import GraphTensors, SampledSubgraph
from kgrec.models.item_item import ItemItemView


@dataclass
class KgTriples:
    """A batch of knowledge edges for an auxiliary link-prediction loss (global node indices).

    Attributes:
        heads, relations, tails: ``[K]`` the sampled triples.
        corrupted_tails: ``[K]`` (or ``[K, n]``) tails of the same node type as the true ones.
    """

    heads: Tensor
    relations: Tensor
    tails: Tensor
    corrupted_tails: Tensor


@dataclass
class Batch:
    """One training step's examples, drawn before the forward pass (:class:`kgrec.train.sampling.BatchSampler`).

    Attributes:
        users: ``[B]`` user indices.
        positives: ``[B]`` item positions (``[0, num_items)``) the users interacted with.
        negatives: ``[B, n]`` per-user negatives (BPR) or ``[n]`` negatives shared by the batch
            (sampled softmax), item positions.
        accidental: with shared negatives, ``[B, n]`` True where a negative is in fact one of
            that user's training positives (masked out of its softmax); None otherwise.
        kg: knowledge triples for the auxiliary loss, or None when there is none.
    """

    users: Tensor
    positives: Tensor
    negatives: Tensor
    accidental: Tensor | None = None
    kg: KgTriples | None = None

    @property
    def size(self) -> int:
        return int(self.users.numel())

    def nodes(self, num_users: int) -> Tensor:
        """Every global node the losses read: the seeds of a sampled block."""
        parts = [self.users, num_users + self.positives, num_users + self.negatives.reshape(-1)]
        if self.kg is not None:
            parts += [self.kg.heads, self.kg.tails, self.kg.corrupted_tails.reshape(-1)]
        return torch.cat(parts)


@dataclass
class Embeddings:
    """Node embeddings of one forward pass, looked up by user, item or global node index.

    Over the whole graph the rows are the global nodes (users first, then items, then
    entities, then any nodes added after training); over a sampled block they are the block's
    distinct seeds and :attr:`local` maps a global node to its row.

    Attributes:
        final: ``[R, d]`` the encoder's output, what the CF head scores.
        layer0: ``[R, d]`` the input embeddings (for the L2 regulariser and inductive use).
        num_users, num_items: sizes of the user and item blocks of the graph.
        layers: per-layer embeddings ``[X^(0), ..., X^(K)]`` (each ``[R, d]``) when asked for.
        local: ``[N]`` global node -> row, for a sampled block; None when rows are global nodes.
        item_nodes: global nodes of the catalogue when it is not ``[U, U + I)``: items added
            after training live after the entities. None: the trained items.
    """

    final: Tensor
    layer0: Tensor
    num_users: int
    num_items: int
    layers: list[Tensor] | None = None
    local: Tensor | None = None
    item_nodes: Tensor | None = None
    _tables: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.local is None:  # user and item blocks as views, sliced once per pass
            u, i = self.num_users, self.num_items
            if self.item_nodes is None:
                items, items0 = self.final[u : u + i], self.layer0[u : u + i]
            else:
                items, items0 = self.final[self.item_nodes], self.layer0[self.item_nodes]
            self._tables.update(users=self.final[:u], items=items, users0=self.layer0[:u], items0=items0)

    @property
    def catalogue_size(self) -> int:
        """Number of rankable items (trained ones plus any added after training)."""
        return self.num_items if self.item_nodes is None else int(self.item_nodes.numel())

    def _rows(self, table: Tensor, nodes: Tensor) -> Tensor:
        return table[self.local[nodes]]

    def user(self, users: Tensor) -> Tensor:
        """Final embeddings of users (any shape of indices)."""
        if self.local is None:
            return self._tables["users"][users]
        return self._rows(self.final, users)

    def item(self, items: Tensor) -> Tensor:
        """Final embeddings of items (positions in the catalogue)."""
        if self.local is None:
            return self._tables["items"][items]
        return self._rows(self.final, self.num_users + items)

    def node(self, nodes: Tensor) -> Tensor:
        """Final embeddings of global nodes."""
        return self.final[nodes] if self.local is None else self._rows(self.final, nodes)

    def node0(self, nodes: Tensor) -> Tensor:
        """Layer-0 embeddings of global nodes."""
        return self.layer0[nodes] if self.local is None else self._rows(self.layer0, nodes)

    def user0(self, users: Tensor) -> Tensor:
        """Layer-0 embeddings of users."""
        if self.local is None:
            return self._tables["users0"][users]
        return self._rows(self.layer0, users)

    def item0(self, items: Tensor) -> Tensor:
        """Layer-0 embeddings of items."""
        if self.local is None:
            return self._tables["items0"][items]
        return self._rows(self.layer0, self.num_users + items)

    def layer(self, k: int, nodes: Tensor) -> Tensor:
        """Layer-``k`` embeddings of global nodes (the pass must have kept its layers)."""
        if self.layers is None:
            raise KgrecError("this forward pass kept no per-layer embeddings")
        table = self.layers[k]
        return table[nodes] if self.local is None else self._rows(table, nodes)

    def user_table(self) -> Tensor:
        """``[U, d]`` every user's final embedding (whole-graph passes only)."""
        self._need_whole("user_table")
        return self._tables["users"]

    def item_table(self) -> Tensor:
        """``[I, d]`` every catalogue item's final embedding (whole-graph passes only)."""
        self._need_whole("item_table")
        return self._tables["items"]

    def _need_whole(self, what: str) -> None:
        if self.local is not None:
            raise KgrecError(f"{what} needs embeddings of the whole graph, not of a sampled block")


class Recommender(nn.Module):
    """The contract of every kgrec model (see the module docstring for who calls what).

    Subclasses implement :meth:`forward`, :meth:`embeddings` and :meth:`loss`; the dot-product
    head, the item-item blend and the inference helpers are shared.

    Args:
        num_users, num_items: sizes of the trained catalogue.
        item_item: an optional linear item-item view (:class:`~kgrec.models.item_item.ItemItemView`),
            given when the model is built; its blend weight is chosen on validation after
            training (:func:`kgrec.train.blend.select_blend`) and saved with the weights.

    Attributes:
        supports_blocks: the model can propagate over a sampled block (``train.sampler =
            "neighbor"``).
        supports_layers: ``forward(g, layers=True)`` returns per-layer embeddings (for the
            structural-neighbour contrast).
        needs_knowledge: the model learns from knowledge edges; a graph without any is refused
            before training (:func:`kgrec.experiment.check_for_graph`).
    """

    supports_blocks: bool = False
    supports_layers: bool = False
    needs_knowledge: bool = False

    def __init__(self, num_users: int, num_items: int, item_item: ItemItemView | None = None):
        super().__init__()
        self.num_users = num_users
        self.num_items = num_items
        self.item_item = item_item

    # ------------------------------------------------------------------ encoding
    def embeddings(self, out: tuple, g: GraphTensors, block: SampledSubgraph | None = None) -> Embeddings:
        """The raw output of :meth:`forward` as :class:`Embeddings`."""
        raise NotImplementedError

    def encode(self, g: GraphTensors, *, layers: bool = False) -> Embeddings:
        """Embeddings of every node of ``g`` (in whatever mode the model is in)."""
        return self.embeddings(self(g, layers=layers), g)

    def infer(self, g: GraphTensors) -> Embeddings:
        """Embeddings of every node of ``g`` for ranking: evaluation mode, no autograd, float32."""
        self.eval()
        with torch.inference_mode():
            emb = self.encode(g)
        return Embeddings(emb.final.float(), emb.layer0.float(), emb.num_users, emb.num_items)

    # ------------------------------------------------------------------ training
    def start_epoch(self) -> None:
        """Called by the trainer before every training epoch, in every process. A model that
        refreshes something once per epoch (KGAT's attention) does it here; by default nothing."""

    def loss(self, batch: Batch, emb: Embeddings) -> dict[str, Tensor]:
        """Every weighted training term of ``batch``; the trainer back-propagates their sum."""
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring
    @staticmethod
    def dot(user_emb: Tensor, item_emb: Tensor) -> Tensor:
        """Dot products of aligned rows: ``[B, d] x [B, d] -> [B]``, ``[B, d] x [B, n, d] -> [B, n]``."""
        if item_emb.dim() == user_emb.dim() + 1:
            user_emb = user_emb.unsqueeze(-2)
        return (user_emb * item_emb).sum(dim=-1)

    def scores(self, users: Tensor, items: Tensor, emb: Embeddings) -> Tensor:
        """CF scores of aligned (user, item) pairs (``items`` may carry an extra candidate axis)."""
        return self.dot(emb.user(users), emb.item(items))

    def dot_scores(self, users: Tensor, emb: Embeddings) -> Tensor:
        """``[B, items]`` dot products of ``users`` with every catalogue item (no item-item view)."""
        user_emb = emb.user_table()
        return user_emb[users.to(user_emb.device)] @ emb.item_table().t()

    def blends_item_item(self) -> bool:
        """Whether ranking adds the item-item view (there is one and its weight is not 0)."""
        return self.item_item is not None and float(self.item_item.blend) != 0.0

    def full_scores(self, users: Tensor, emb: Embeddings) -> Tensor:
        """``[B, items]`` ranking scores of ``users`` against the whole catalogue.

        The dot products plus, with an item-item view of non-zero blend weight, that weight
        times the view's scores. Items beyond the view's catalogue (items added after training)
        have no history there and get the dot product alone.
        """
        scores = self.dot_scores(users, emb)
        if self.blends_item_item():
            view = self.item_item
            prior = view(users).to(scores.device, scores.dtype)
            scores[:, : prior.size(1)] += view.blend.to(scores.device) * prior
        return scores

    def vector_scores(self, vector: Tensor, emb: Embeddings, liked: list[int] | None = None) -> Tensor:
        """``[items]`` ranking scores for a new user: its embedding ``vector`` against every item,
        plus the blended item-item view of the ``liked`` item positions (when there is one)."""
        item_emb = emb.item_table()
        scores = item_emb @ vector.to(item_emb.device)
        if liked and self.blends_item_item():
            view = self.item_item
            known = [p for p in liked if p < view.num_items]
            if known:
                prior = view.for_items(torch.as_tensor(known)).to(scores.device, scores.dtype)
                scores[: prior.numel()] += view.blend.to(scores.device) * prior
        return scores

    # ------------------------------------------------------------------ new nodes
    @property
    def uses_text(self) -> bool:
        """Whether the model reads text features (new nodes then need theirs encoded)."""
        return False

    def layer0(self, g: GraphTensors) -> Tensor:
        """The trained layer-0 embeddings of the nodes of ``g`` (inductive models only)."""
        raise KgrecError(f"{type(self).__name__} cannot embed nodes it was not trained on")

    def propagate(self, g: GraphTensors, x0: Tensor) -> Tensor:
        """Final embeddings of ``g`` (which may hold nodes added after training) from layer-0 rows."""
        raise KgrecError(f"{type(self).__name__} cannot embed nodes it was not trained on")

    def text_input(self, features: Tensor) -> Tensor:
        """Layer-0 contribution of text features ``[m, F]`` for new nodes (zeros without text)."""
        raise KgrecError(f"{type(self).__name__} cannot embed nodes it was not trained on")

    def mean_id(self, start: int, stop: int) -> Tensor:
        """Mean trained ID embedding of nodes ``[start, stop)`` (zeros without ID embeddings)."""
        raise KgrecError(f"{type(self).__name__} cannot embed nodes it was not trained on")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (for the run log)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["Batch", "Embeddings", "KgTriples", "Recommender", "count_parameters"]
