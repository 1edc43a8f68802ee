"""The recommender: node inputs -> GNN encoder -> dot-product CF head (+ a DistMult KG head)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from kgrec.config import ModelConfig
from kgrec.errors import KgrecError
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.inputs import NodeInput
from kgrec.models.item_item import ItemItemView
from kgrec.models.item_item import check_settings as check_item_item
from kgrec.models.lightgcn import KGLightGCN
from kgrec.models.relational import RelationalEncoder


class Recommender(nn.Module):
    r"""A GNN encoder with a dot-product collaborative-filtering head.

    The CF score of user :math:`u` and item :math:`i` is
    :math:`\hat{y}_{ui} = \mathbf{z}_u^\top \mathbf{z}_i` over the encoder's final embeddings;
    the auxiliary knowledge-graph score of a triple is DistMult's
    :math:`\langle \mathbf{z}_h, \mathbf{r}, \mathbf{z}_t \rangle = \sum_k z_{h,k} r_k z_{t,k}`
    (Yang et al., ICLR 2015), which reduces to the CF dot product when :math:`\mathbf{r} = 1`
    (hence the all-ones initialisation of the relation embeddings).

    Args:
        node_input (NodeInput): layer-0 node representations.
        encoder (nn.Module): ``encoder(x0, g) -> [N, dim]`` (:class:`KGLightGCN` or
            :class:`RelationalEncoder`).
        num_relations (int): number of relation ids (size of :attr:`relation_embedding`).
        dim (int): embedding size.
        normalize (bool): L2-normalise the final embeddings, so the dot product is a cosine
            similarity (use with ``train.loss = "softmax"`` and a temperature around 0.1).

    Attributes:
        item_item: an optional linear item-item view (:class:`~kgrec.models.item_item.ItemItemView`)
            whose scores :meth:`rank_scores` adds, times its ``blend`` weight, to the dot
            products. Training never sees it; :func:`kgrec.train.blend.select_blend` sets the
            weight on validation after training.
    """

    item_item: ItemItemView | None

    def __init__(self, node_input: NodeInput, encoder: nn.Module, num_relations: int, dim: int, normalize: bool = False):
        super().__init__()
        self.normalize = normalize
        self.node_input = node_input
        self.encoder = encoder
        self.relation_embedding = nn.Embedding(max(num_relations, 1), dim)
        nn.init.ones_(self.relation_embedding.weight)
        self.item_item = None

    def forward(self, g: GraphTensors, return_layers: bool = False):
        """Encode every node of ``g``.

        Returns:
            ``(final [N, dim], layer0 [N, dim])``: the encoder output for scoring and the
            input embeddings for the L2 regulariser; with ``return_layers`` (lightgcn encoder
            only) also the list of per-layer embeddings, as a third element.
        """
        layer0 = self.node_input(g)
        layers = None
        if return_layers:
            if not isinstance(self.encoder, KGLightGCN):
                raise KgrecError("train.contrast_weight > 0 needs model.encoder = \"lightgcn\" (per-layer embeddings)")
            final, layers = self.encoder(layer0, g, return_layers=True)
        else:
            final = self.encoder(layer0, g)
        if self.normalize:  # cosine geometry: scores in [-1, 1], to pair with a softmax temperature
            final = nn.functional.normalize(final, dim=-1)
        return (final, layer0, layers) if return_layers else (final, layer0)

    @staticmethod
    def user_item(emb: Tensor, g: GraphTensors) -> tuple[Tensor, Tensor]:
        """Slice ``(users [U, dim], items [I, dim])`` out of a node embedding table."""
        return emb[: g.num_users], emb[g.num_users : g.num_users + g.num_items]

    @staticmethod
    def score(user_emb: Tensor, item_emb: Tensor) -> Tensor:
        """Dot-product CF scores of aligned rows.

        ``user_emb [B, d]`` with ``item_emb [B, d]`` gives ``[B]``; with ``item_emb [B, n, d]``
        (several candidates per user, e.g. negatives) it gives ``[B, n]``.
        """
        if item_emb.dim() == user_emb.dim() + 1:
            user_emb = user_emb.unsqueeze(-2)
        return (user_emb * item_emb).sum(dim=-1)

    @staticmethod
    def full_scores(user_emb: Tensor, item_emb: Tensor) -> Tensor:
        """Scores of every user row against every item row: ``[B, d] x [I, d] -> [B, I]``."""
        return user_emb @ item_emb.t()

    def rank_scores(self, user_emb: Tensor, item_emb: Tensor, users: Tensor) -> Tensor:
        """Ranking scores of ``users`` against every item row: ``[B, I]``.

        The dot products of the final embeddings plus, with an item-item view of non-zero
        blend weight, that weight times the view's scores. Items beyond the view's catalogue
        (cold items added after training) have no history and get the dot product alone.
        """
        scores = self.full_scores(user_emb[users.to(user_emb.device)], item_emb)
        view = self.item_item
        if view is not None and float(view.blend) != 0.0:
            prior = view(users).to(scores.device, scores.dtype)
            scores[:, : prior.size(1)] += view.blend.to(scores.device) * prior
        return scores

    def vector_scores(self, vector: Tensor, item_emb: Tensor, liked: list[int] | None = None) -> Tensor:
        """``[I]`` ranking scores for a new user: the embedding ``vector`` against every item,
        plus the blended item-item view of the ``liked`` item positions (when there is one)."""
        scores = item_emb @ vector.to(item_emb.device)
        view = self.item_item
        if liked and view is not None and float(view.blend) != 0.0:
            known = [p for p in liked if p < view.num_items]
            if known:
                prior = view.for_items(torch.as_tensor(known)).to(scores.device, scores.dtype)
                scores[: prior.numel()] += view.blend.to(scores.device) * prior
        return scores

    def kg_score(self, head_emb: Tensor, rel_ids: Tensor, tail_emb: Tensor) -> Tensor:
        """DistMult scores ``<h, r, t>``: ``[B, d], [B], [B, d] -> [B]``, or ``[B, n, d] -> [B, n]``."""
        return self.score(head_emb * self.relation_embedding(rel_ids), tail_emb)


#: Encoder names accepted in ``[model] encoder`` and what they build.
ENCODERS: dict[str, str] = {
    "lightgcn": "lightgcn",
    "relational": "relational",
    "rgcn": "relational",
    "rgat": "relational",
    "kgat": "relational",
}


def _lightgcn(config: ModelConfig, g: GraphTensors) -> nn.Module:
    return KGLightGCN(config.layers, edge_dropout=config.edge_dropout, use_kg=config.use_kg)


def _relational(config: ModelConfig, g: GraphTensors) -> nn.Module:
    return RelationalEncoder(
        config.dim,
        g.num_relations,
        num_layers=config.layers,
        heads=config.heads,
        dropout=config.dropout,
        edge_dropout=config.edge_dropout,
        use_kg=config.use_kg,
    )


_BUILDERS: dict[str, Callable[[ModelConfig, GraphTensors], nn.Module]] = {
    "lightgcn": _lightgcn,
    "relational": _relational,
}


def validate_model_config(config: ModelConfig, num_items: int | None = None) -> None:
    """Raise a :class:`KgrecError` naming the key of the first invalid ``[model]`` setting.

    Called before a run folder is started, so that a bad setting leaves nothing behind; with
    ``num_items`` it also checks that the catalogue fits the item-item view.
    """
    if ENCODERS.get(config.encoder.lower()) is None:
        raise KgrecError(
            f"unknown model.encoder {config.encoder!r} (known: {', '.join(sorted(ENCODERS))})"
        )
    if config.dim <= 0:
        raise KgrecError(f"model.dim must be positive, got {config.dim}")
    if config.layers < 0:
        raise KgrecError(f"model.layers must be >= 0, got {config.layers}")
    for key in ("dropout", "edge_dropout"):
        value = getattr(config, key)
        if not 0.0 <= value < 1.0:
            raise KgrecError(f"model.{key} must be in [0, 1), got {value}")
    check_item_item(config.item_item, config.item_item_l2, num_items)
    if ENCODERS.get(config.encoder.lower()) == "relational":
        if config.heads <= 0 or config.dim % config.heads != 0:
            raise KgrecError(
                f"model.heads must be a positive divisor of model.dim ({config.dim}), "
                f"got {config.heads}"
            )


def build_model(config: ModelConfig, g: GraphTensors) -> Recommender:
    """Build the recommender that ``config`` describes, sized for graph ``g``.

    Args:
        config: the ``[model]`` section of an experiment config.
        g: the training graph (its node count, feature width and relations size the model).

    Raises:
        KgrecError: unknown encoder name or an invalid setting, named by its key.
    """
    validate_model_config(config)
    kind = ENCODERS[config.encoder.lower()]
    node_input = NodeInput(
        g.num_nodes, config.dim, g.feature_dim, use_id=config.use_id, use_text=config.use_text
    )
    encoder = _BUILDERS[kind](config, g)
    return Recommender(node_input, encoder, g.num_relations, config.dim, normalize=config.normalize)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (for the run log)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ENCODERS", "Recommender", "build_model", "count_parameters", "validate_model_config"]
