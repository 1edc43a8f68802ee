r"""CKE: collaborative knowledge-base embedding (Zhang et al., KDD 2016), on kgrec's contract.

`"Collaborative Knowledge Base Embedding for Recommender Systems"
<https://doi.org/10.1145/2939672.2939673>`_. An item's latent vector is an offset plus the
structural embedding of its knowledge-graph node,

.. math::
    \mathbf{e}_i = \boldsymbol{\eta}_i + \mathbf{v}_i, \qquad \hat{y}_{ui} = \mathbf{u}_u^\top \mathbf{e}_i,

trained jointly by the CF loss (BPR, or kgrec's sampled softmax) and TransR on the KG:

.. math::
    f_r(h, t) = \lVert \mathbf{M}_r \mathbf{v}_h + \mathbf{r} - \mathbf{M}_r \mathbf{v}_t \rVert_2^2,
    \qquad \mathcal{L}_{KG} = -\ln \sigma\big(f_r(h, t') - f_r(h, t)\big),

with one projection :math:`\mathbf{M}_r` and one vector :math:`\mathbf{r}` per relation, and
:math:`t'` a corrupted tail of the same node type. There is no propagation.

Where kgrec deviates, and why:

* the paper's textual and visual knowledge come from stacked denoising auto-encoders on bag of
  words and images; kgrec has BERT features instead, which enter :math:`\mathbf{v}` through the
  same trained projection as in every kgrec model (``model.use_text``; off reproduces the
  structural-only CKE that RecBole runs);
* the loss is kgrec's BPR form of TransR's margin loss (as RecBole's CKE), weighted by
  ``train.kg_loss_weight``, with the L2 penalty on the batch's embeddings of kgrec's GNNs;
* the entity and relation spaces have the same size (``model.dim``);
* ``train.kg_loss_weight = 0`` is allowed, as CKE's own ablation: the same model, start and
  training without TransR (an item is then :math:`\boldsymbol{\eta}_i + \mathbf{v}_i`, two free
  vectors: MF), which is what tells whether the knowledge pays;
* the ID embeddings start as RecBole's CKE starts them (Glorot/Xavier-normal per table,
  :meth:`CKERecommender.reset_embeddings`), not at kgrec's LightGCN default (normal, std 0.1):
  on ml-100k it ranks better on validation (NDCG@20 0.2608 against 0.2527, seed 2024; the
  steps of the choice are in ``experiments/ml-100k-cke.toml``).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.models.base import Embeddings
from kgrec.models.gnn import GraphRecommender
from kgrec.models.graph_tensors import GraphTensors, SampledSubgraph
from kgrec.models.losses import kg_link_loss, l2_regularisation
from kgrec.models.transr import transr_score


class _NoPropagation(nn.Module):
    """CKE's encoder: the layer-0 embeddings are the final ones."""

    def forward(self, x0: Tensor, g: GraphTensors) -> Tensor:
        return x0


class CKERecommender(GraphRecommender):
    """``model.encoder = "cke"``: MF with items tied to their TransR-trained KG embeddings."""

    needs_knowledge = True
    #: Score TransR on unit vectors (TransR's norm constraints, as RecBole's CKE enforces them).
    transr_normalize = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        dim = self.relation_embedding.embedding_dim
        num_relations = self.relation_embedding.num_embeddings
        self.item_offset = nn.Embedding(self.num_items, dim)  # eta_i
        self.relation_projection = nn.Parameter(torch.eye(dim).repeat(num_relations, 1, 1))  # M_r, identity at start
        self.reset_embeddings()

    @torch.no_grad()
    def reset_embeddings(self) -> None:
        """Glorot (Xavier) normal initialisation, ``std = sqrt(2 / (rows + dim))``, per table as
        RecBole's CKE has them: users; items (their structural rows and their offsets
        :math:`\\boldsymbol{\\eta}`); the other entities, whose table also holds the items' rows in
        RecBole; relation vectors (not DistMult's all-ones).

        Why not kgrec's std of 0.1 (on ml-100k this gives 0.03-0.04 for users and items, 0.008
        for entities): it is how the reference implementation starts, and it ranks better on
        validation (module docstring). On a tiny catalogue the Glorot std is larger than 0.1.
        """

        def glorot(table: Tensor, rows: int) -> None:
            table.normal_(0.0, math.sqrt(2.0 / (rows + table.shape[-1])))

        glorot(self.item_offset.weight, self.num_items)
        glorot(self.relation_embedding.weight, self.relation_embedding.num_embeddings)
        ids = self.node_input.id_embedding
        if ids is None:
            return
        users, items = self.num_users, self.num_items
        entities = ids.num_embeddings - users - items
        glorot(ids.weight[:users], users)
        glorot(ids.weight[users : users + items], items)
        glorot(ids.weight[users + items :], entities + items)

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        m, t = config.model, config.train
        if m.layers != 0:
            raise KgrecError(f'model.layers = {m.layers}: model.encoder = "cke" does not propagate; set model.layers = 0')
        if not m.use_kg:
            raise KgrecError('model.use_kg = false: model.encoder = "cke" is trained on the knowledge graph; keep use_kg = true')
        for key in ("dropout", "edge_dropout"):
            if getattr(m, key) > 0:
                raise KgrecError(f'model.{key} = {getattr(m, key)} has nothing to act on with model.encoder = "cke" (no propagation)')
        if t.contrast_weight > 0:
            raise KgrecError('train.contrast_weight needs propagation layers, which model.encoder = "cke" does not have')

    @classmethod
    def build_encoder(cls, config, g: GraphTensors) -> nn.Module:
        return _NoPropagation()

    def embeddings(self, out: tuple, g: GraphTensors, block: SampledSubgraph | None = None) -> Embeddings:
        """Final rows: users ``u``, items ``eta_i + v_i``, entities ``v``; layer 0 is ``v`` itself
        (no propagation), which is what TransR sees."""
        final, x0 = out[0], out[1]
        offset = torch.zeros_like(final)
        start = g.num_users
        offset[start : start + self.num_items] = self.item_offset.weight.to(final.dtype)
        return Embeddings(final + offset, x0, g.num_users, g.num_items)

    def kg_score(self, head_emb: Tensor, rel_ids: Tensor, tail_emb: Tensor) -> Tensor:
        """TransR's ``-f_r(h, t)`` (:func:`~kgrec.models.transr.transr_score`)."""
        return transr_score(self.relation_projection, self.relation_embedding, head_emb, rel_ids, tail_emb, normalize=self.transr_normalize)

    def loss(self, batch, emb: Embeddings):
        """The CF terms of kgrec's GNNs, an L2 penalty on the batch's item offsets, and TransR
        on the structural embeddings ``v`` (layer 0), not on ``eta + v``."""
        terms = super().loss(dataclasses.replace(batch, kg=None), emb)
        o = self.objective
        items = torch.cat([batch.positives.reshape(-1), batch.negatives.reshape(-1)])
        terms["reg"] = terms["reg"] + o.reg_weight * l2_regularisation(self.item_offset(items), batch_size=batch.size)
        if batch.kg is not None:
            kg = batch.kg
            terms["kg"] = o.kg_loss_weight * kg_link_loss(self.kg_score, emb.node0, kg.heads, kg.relations, kg.tails, kg.corrupted_tails)
        return terms


__all__ = ["CKERecommender"]
