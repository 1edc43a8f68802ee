r"""kgrec's GNN recommenders: node inputs -> a message-passing encoder -> the dot-product head.

:class:`GraphRecommender` implements the model contract (:mod:`kgrec.models.base`) for every
encoder that maps layer-0 node embeddings to final ones over the collaborative knowledge
graph. Its training loss is the CF loss of the batch (BPR, or a sampled softmax over shared
negatives), LightGCN's L2 penalty on the batch's layer-0 embeddings, an auxiliary DistMult
link-prediction loss on knowledge edges and, optionally, NCL's structural-neighbour contrast.

The knowledge-graph score of a triple is DistMult's
:math:`\langle \mathbf{z}_h, \mathbf{r}, \mathbf{z}_t \rangle = \sum_k z_{h,k} r_k z_{t,k}`
(Yang et al., ICLR 2015), which reduces to the CF dot product when :math:`\mathbf{r} = 1`
(hence the all-ones initialisation of the relation embeddings).

A concrete model (:class:`~kgrec.models.lightgcn.LightGCNRecommender`,
:class:`~kgrec.models.relational.RelationalRecommender`) only says which encoder it builds and
which settings it accepts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.models.base import Batch, Embeddings, Recommender
from kgrec.models.graph_tensors import GraphTensors, SampledSubgraph
from kgrec.models.inputs import NodeInput
from kgrec.models.item_item import ItemItemView, check_settings
from kgrec.models.losses import (
    Objective,
    bpr_loss,
    kg_link_loss,
    l2_regularisation,
    sampled_softmax_loss,
    structural_contrast_loss,
)


class GraphRecommender(Recommender):
    """A GNN encoder with a dot-product collaborative-filtering head and a DistMult KG head.

    Args:
        node_input (NodeInput): layer-0 node representations.
        encoder (nn.Module): ``encoder(x0, g) -> [N, dim]``; with :attr:`supports_layers` also
            ``encoder(x0, g, return_layers=True) -> (final, layers)``, and with
            :attr:`supports_blocks` ``encoder.forward_block(x0, block, g, return_layers)``.
        num_users, num_items: sizes of the trained catalogue.
        num_relations (int): number of relation ids (size of :attr:`relation_embedding`).
        dim (int): embedding size.
        normalize (bool): L2-normalise the final embeddings, so the dot product is a cosine
            similarity (use with ``train.loss = "softmax"`` and a temperature around 0.1).
        objective (Objective): what :meth:`loss` is made of.
        item_item: an optional item-item view blended into the ranking scores.
    """

    #: The model has user intents (KGIN), so ``train.independence_weight`` means something.
    has_intents: bool = False

    def __init__(
        self,
        node_input: NodeInput,
        encoder: nn.Module,
        num_users: int,
        num_items: int,
        num_relations: int,
        dim: int,
        *,
        normalize: bool = False,
        objective: Objective | None = None,
        item_item: ItemItemView | None = None,
    ):
        super().__init__(num_users, num_items)
        self.normalize = normalize
        self.objective = objective or Objective()
        self.node_input = node_input
        self.encoder = encoder
        self.relation_embedding = nn.Embedding(max(num_relations, 1), dim)
        nn.init.ones_(self.relation_embedding.weight)
        self.item_item = item_item  # registered last: the parameters keep their order

    # ------------------------------------------------------------------ settings
    @classmethod
    def check_config(cls, config: ExperimentConfig) -> None:
        """Raise a :class:`KgrecError` naming the first ``[model]`` key this model cannot honour.

        The ranges every GNN shares; subclasses add what is specific to their encoder.
        """
        m = config.model
        if m.dim <= 0:
            raise KgrecError(f"model.dim = {m.dim} must be a positive number")
        if m.layers < 0:
            raise KgrecError(f"model.layers = {m.layers} must be 0 or more")
        if m.kg_min_degree < 1:
            raise KgrecError(f"model.kg_min_degree = {m.kg_min_degree} must be 1 or more")
        for key in ("dropout", "edge_dropout"):
            value = getattr(m, key)
            if not 0.0 <= value < 1.0:
                raise KgrecError(f"model.{key} = {value} must lie in [0, 1)")
        if not m.use_id and not m.use_text:
            raise KgrecError(
                "model.use_id and model.use_text are both false: nodes would have no input "
                "representation; enable at least one of them"
            )
        check_settings(m.item_item, m.item_item_l2)
        t = config.train
        if t.independence_weight < 0:
            raise KgrecError(f"train.independence_weight = {t.independence_weight} must be 0 or more")
        if t.independence_weight > 0 and not cls.has_intents:
            raise KgrecError(
                f"train.independence_weight = {t.independence_weight} is KGIN's intent independence; "
                f'model.encoder = {m.encoder!r} has no intents (use "kgin", or independence_weight = 0)'
            )
        cls.check_contrast(config)
        if t.sampler == "neighbor":
            if not cls.supports_blocks:
                raise KgrecError(
                    f'train.sampler = "neighbor" needs an encoder that propagates over sampled blocks; '
                    f'model.encoder = {m.encoder!r} does not (use "lightgcn", or train.sampler = "full")'
                )
            if m.edge_dropout > 0:
                raise KgrecError(
                    f'model.edge_dropout = {m.edge_dropout} must be 0 with train.sampler = "neighbor" '
                    "(neighbour sampling already leaves edges out)"
                )
            if len(t.fanouts) != m.layers:
                raise KgrecError(
                    f"train.fanouts = {t.fanouts} has {len(t.fanouts)} entries but model.layers = {m.layers}: "
                    "give one fanout per layer"
                )

    @classmethod
    def check_contrast(cls, config: ExperimentConfig) -> None:
        """``train.contrast_weight`` > 0 asks NCL's structural contrast, which needs per-layer embeddings."""
        m, t = config.model, config.train
        if t.contrast_weight > 0:
            if not cls.supports_layers:
                raise KgrecError(
                    f"train.contrast_weight = {t.contrast_weight} needs per-layer embeddings, which "
                    f"model.encoder = {m.encoder!r} does not have (use \"lightgcn\", or contrast_weight = 0)"
                )
            if t.contrast_layer > m.layers:
                raise KgrecError(
                    f"train.contrast_layer = {t.contrast_layer} needs at least that many model.layers (got {m.layers})"
                )

    @classmethod
    def build_encoder(cls, config: ExperimentConfig, g: GraphTensors) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: ExperimentConfig, g: GraphTensors, item_item: ItemItemView | None = None) -> "GraphRecommender":
        """The model ``config`` describes, sized for graph ``g`` (its nodes, features, relations)."""
        m = config.model
        node_input = NodeInput(g.num_nodes, m.dim, g.feature_dim, use_id=m.use_id, use_text=m.use_text)
        return cls(
            node_input,
            cls.build_encoder(config, g),
            g.num_users,
            g.num_items,
            g.num_relations,
            m.dim,
            normalize=m.normalize,
            objective=Objective.from_config(config.train),
            item_item=item_item,
        )

    # ------------------------------------------------------------------ encoding
    def forward(self, g: GraphTensors, layers: bool = False, block: SampledSubgraph | None = None):
        """Encode every node of ``g``, or the seeds of a sampled ``block`` of it.

        Returns:
            ``(final, layer0)`` -- ``[N, dim]`` each, or ``[seeds, dim]`` over a block -- and,
            with ``layers``, the list of per-layer embeddings as a third element.
        """
        per_layer = None
        if block is None:
            x0 = self.node_input(g)
            if layers:
                final, per_layer = self.encoder(x0, g, return_layers=True)
            else:
                final = self.encoder(x0, g)
        else:
            x0 = self.node_input(g, nodes=block.nodes)
            out = self.encoder.forward_block(x0, block, g, return_layers=layers)
            final, per_layer = out if layers else (out, None)
            x0 = x0[: block.num_seeds]
        if self.normalize:  # cosine geometry: scores in [-1, 1], to pair with a softmax temperature
            final = nn.functional.normalize(final, dim=-1)
        return (final, x0) if per_layer is None else (final, x0, per_layer)

    def embeddings(self, out: tuple, g: GraphTensors, block: SampledSubgraph | None = None) -> Embeddings:
        final, x0 = out[0], out[1]
        layers = out[2] if len(out) > 2 else None
        local = None
        if block is not None:  # global node -> row of the block's distinct seeds
            local = torch.full((g.num_nodes,), -1, dtype=torch.long, device=final.device)
            local[block.nodes[: block.num_seeds]] = torch.arange(block.num_seeds, device=final.device)
        return Embeddings(final, x0, g.num_users, g.num_items, layers=layers, local=local)

    def sampling_csr(self, g: GraphTensors) -> tuple[Tensor, Tensor]:
        """The CSR graph (``rowptr``, ``col``) that sampled blocks are drawn from."""
        if not self.supports_blocks:
            raise KgrecError(f"{type(self).__name__} does not propagate over sampled blocks")
        return self.encoder.sampling_csr(g)

    # ------------------------------------------------------------------ training
    def kg_score(self, head_emb: Tensor, rel_ids: Tensor, tail_emb: Tensor) -> Tensor:
        """DistMult scores ``<h, r, t>``: ``[B, d], [B], [B, d] -> [B]``, or ``[B, n, d] -> [B, n]``."""
        return self.dot(head_emb * self.relation_embedding(rel_ids), tail_emb)

    def loss(self, batch: Batch, emb: Embeddings) -> dict[str, Tensor]:
        """``cf`` (BPR or sampled softmax), ``reg`` (L2 on layer 0), ``kg`` and ``contrast``, weighted."""
        o = self.objective
        u = emb.user(batch.users)
        pos_scores = (u * emb.item(batch.positives)).sum(-1)
        if o.loss == "softmax":  # negatives shared by the batch: one [B, n] product
            neg_scores = u @ emb.item(batch.negatives).T
            if batch.accidental is not None:
                neg_scores = neg_scores.float().masked_fill(batch.accidental, float("-inf"))
            cf = sampled_softmax_loss(pos_scores.float(), neg_scores, o.temperature)
        else:
            neg_scores = torch.einsum("bd,bnd->bn", u, emb.item(batch.negatives))
            cf = bpr_loss(pos_scores.float(), neg_scores.float())
        terms = {"cf": cf}
        dim = emb.layer0.size(-1)
        terms["reg"] = o.reg_weight * l2_regularisation(
            emb.user0(batch.users), emb.item0(batch.positives), emb.item0(batch.negatives).reshape(-1, dim), batch_size=batch.size
        )
        if batch.kg is not None:
            kg = batch.kg
            terms["kg"] = o.kg_loss_weight * kg_link_loss(self.kg_score, emb.node, kg.heads, kg.relations, kg.tails, kg.corrupted_tails)
        if o.contrast_weight > 0:
            contrast = self.contrast(batch, emb)
            if contrast is not None:
                terms["contrast"] = o.contrast_weight * contrast
        return terms

    def contrast(self, batch: Batch, emb: Embeddings) -> Tensor | None:
        """The unweighted contrastive term: NCL's structural contrast for the batch's distinct
        users and items (equal weights). A model with contrastive views of its own overrides it."""
        o = self.objective
        users = torch.unique(batch.users)
        items = torch.unique(batch.positives) + emb.num_users
        return structural_contrast_loss(
            emb.layer(o.contrast_layer, users), emb.layer(0, users), o.contrast_temperature
        ) + structural_contrast_loss(emb.layer(o.contrast_layer, items), emb.layer(0, items), o.contrast_temperature)

    # ------------------------------------------------------------------ new nodes
    @property
    def uses_text(self) -> bool:
        return self.node_input.uses_text

    @torch.inference_mode()
    def layer0(self, g: GraphTensors) -> Tensor:
        self.eval()
        return self.node_input(g).float()

    @torch.inference_mode()
    def propagate(self, g: GraphTensors, x0: Tensor) -> Tensor:
        if x0.size(0) != g.num_nodes:
            raise KgrecError(f"{x0.size(0)} layer-0 rows for a graph of {g.num_nodes} nodes")
        self.eval()
        out = self.encoder(x0, g).float()
        if self.normalize:
            out = nn.functional.normalize(out, dim=-1)
        return out

    @torch.inference_mode()
    def text_input(self, features: Tensor) -> Tensor:
        projection = self.node_input.text_projection
        if projection is None:
            return torch.zeros(features.size(0), self.node_input.dim, device=features.device)
        return projection(features.to(projection.weight)).float()

    @torch.inference_mode()
    def mean_id(self, start: int, stop: int) -> Tensor:
        ids = self.node_input.id_embedding
        if ids is None or stop <= start:
            return torch.zeros(self.node_input.dim)
        return ids.weight[start:stop].float().mean(dim=0)


__all__ = ["GraphRecommender"]
