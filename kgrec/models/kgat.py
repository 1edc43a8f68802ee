r"""KGAT: knowledge graph attention network (Wang et al., KDD 2019), on kgrec's contract.

`"KGAT: Knowledge Graph Attention Network for Recommendation"
<https://doi.org/10.1145/3292500.3330989>`_. Users, items and entities form one collaborative
knowledge graph (CKG); every edge :math:`(h, r, t)` has a relation-aware attention

.. math::
    \pi(h, r, t) = (\mathbf{W}_r \mathbf{e}_t)^\top \tanh(\mathbf{W}_r \mathbf{e}_h + \mathbf{e}_r),
    \qquad \tilde\pi(h, r, t) = \operatorname{softmax}_{(r', t') \in \mathcal{N}_h} \pi(h, r', t'),

with the TransR projections :math:`\mathbf{W}_r` and relation vectors :math:`\mathbf{e}_r`, and
each layer aggregates the attended neighbourhood with the bi-interaction aggregator

.. math::
    \mathbf{e}_{\mathcal{N}_h} = \sum_{(r, t) \in \mathcal{N}_h} \tilde\pi(h, r, t)\, \mathbf{e}_t,
    \qquad \mathbf{e}_h^{(l+1)} = \operatorname{LeakyReLU}\big(\mathbf{W}_1(\mathbf{e}_h^{(l)} + \mathbf{e}_{\mathcal{N}_h})\big)
        + \operatorname{LeakyReLU}\big(\mathbf{W}_2(\mathbf{e}_h^{(l)} \odot \mathbf{e}_{\mathcal{N}_h})\big).

The final representation concatenates the layers, :math:`\mathbf{e}^* = \mathbf{e}^{(0)} \Vert
\hat{\mathbf{e}}^{(1)} \Vert \dots \Vert \hat{\mathbf{e}}^{(L)}` (each propagated layer
L2-normalised, as in the authors' code), and :math:`\hat y_{ui} = \mathbf{e}_u^{*\top}
\mathbf{e}_i^*`. The CF loss (BPR) is trained with TransR on the knowledge triples,
:math:`\mathcal{L}_{KG} = -\ln\sigma(f_r(h, t') - f_r(h, t))` on the layer-0 embeddings.

Where kgrec deviates, and why:

* none in the attention: as in the authors' code (and RecBole's), it is computed without
  gradient from the layer-0 embeddings and TransR parameters, once per training epoch (at
  every evaluation, and at every pass when a caller trains without ``start_epoch``);
* the CF and KG losses are summed in one step (``train.kg_loss_weight``) instead of alternating
  optimisers; RecBole's KGAT alternates, at twice the passes per epoch;
* TransR is trained on the knowledge triples only (as RecBole does), not also on the
  user-item "interact" triples as in the authors' code; the interaction relations' projections
  stay at their identity initialisation, so a user's items are weighted by
  :math:`\mathbf{e}_i^\top \tanh(\mathbf{e}_u + \mathbf{e}_r)`, the similarity of the two ends;
* every layer has ``model.dim`` channels (the paper uses 64, 32, 16); node inputs are kgrec's
  (ID embedding and, with ``model.use_text``, projected BERT features; off is the paper's model);
  the L2 penalty is kgrec's, on the batch's layer-0 embeddings.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import softmax

from kgrec.errors import KgrecError
from kgrec.models.base import Embeddings
from kgrec.models.gnn import GraphRecommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.losses import kg_link_loss
from kgrec.models.propagation import PerGraphCache, SparsePattern, message_edges, spmm
from kgrec.models.transr import transr_score


@dataclasses.dataclass(frozen=True)
class _RelationGroups:
    """A graph's message edges sorted by relation, so the attention is one matrix product per
    relation, and their sparsity pattern (row = target), so a layer is one sparse product."""

    src: Tensor  # [E] message source (t), grouped by relation
    dst: Tensor  # [E] message target (h), the node whose neighbourhood the softmax runs over
    relations: list[int]  # the relation ids present, in group order
    sizes: list[int]  # edges per group
    pattern: SparsePattern  # [N, N] target x source


class BiInteractionLayer(nn.Module):
    """One KGAT layer: the attended neighbourhood sum and the bi-interaction aggregator.

    ``attended`` is the ``[N, N]`` matrix of attention weights (row = the aggregating node) and
    its transpose (:meth:`SparsePattern.matrices`): :math:`\mathbf{e}_{\mathcal{N}}` is one
    sparse product, never an ``[edges, dim]`` tensor.
    """

    def __init__(self, dim: int, dropout: float = 0.0):
        super().__init__()
        self.sum_weight = nn.Linear(dim, dim)  # W_1
        self.product_weight = nn.Linear(dim, dim)  # W_2
        self.dropout = dropout
        nn.init.xavier_uniform_(self.sum_weight.weight)
        nn.init.xavier_uniform_(self.product_weight.weight)

    def forward(self, x: Tensor, attended: tuple[Tensor, Tensor]) -> Tensor:
        neighbours = spmm(attended[0], attended[1], x).to(x.dtype)
        out = F.leaky_relu(self.sum_weight(x + neighbours), 0.2) + F.leaky_relu(self.product_weight(x * neighbours), 0.2)
        return F.dropout(out, p=self.dropout, training=self.training)


class KGATEncoder(nn.Module):
    """Attentive bi-interaction propagation over the CKG; returns the concatenated layers.

    Owns the TransR parameters (``projection`` and ``relation``), which the attention and the
    model's KG loss share.

    Args:
        dim (int): embedding size of every layer.
        num_relations (int): relation ids of the graph (interactions and knowledge, both directions).
        num_layers (int): propagation layers :math:`L`.
        dropout (float): message dropout on each layer's output (the paper's 0.1).
        use_kg (bool): propagate over knowledge edges too; False keeps user-item edges only.
    """

    def __init__(self, dim: int, num_relations: int, num_layers: int = 1, dropout: float = 0.1, use_kg: bool = True):
        super().__init__()
        self.dim = dim
        self.num_layers = num_layers
        self.use_kg = use_kg
        num_relations = max(num_relations, 1)
        self.relation = nn.Embedding(num_relations, dim)  # e_r
        nn.init.normal_(self.relation.weight, std=0.01)
        self.projection = nn.Parameter(torch.eye(dim).repeat(num_relations, 1, 1))  # W_r, identity at start (as CKE)
        self.layers = nn.ModuleList(BiInteractionLayer(dim, dropout) for _ in range(num_layers))
        self._groups = PerGraphCache(self._group_edges)
        self._per_epoch = False  # set by start_epoch: the trainer refreshes the attention once per epoch
        self._epoch_attention: tuple[_RelationGroups, tuple[Tensor, Tensor]] | None = None

    def _group_edges(self, g: GraphTensors) -> _RelationGroups:
        edge_index, edge_type = message_edges(g, self.use_kg)
        order = torch.argsort(edge_type, stable=True)
        relations, sizes = torch.unique_consecutive(edge_type[order], return_counts=True)
        src, dst = edge_index[0, order], edge_index[1, order]
        pattern = SparsePattern.from_edges(dst, src, g.num_nodes, g.num_nodes)
        return _RelationGroups(src, dst, relations.tolist(), sizes.tolist(), pattern)

    def start_epoch(self) -> None:
        """Recompute the attention at the next training pass and keep it for the epoch (the
        authors' code and RecBole's refresh it once per epoch, too)."""
        self._per_epoch = True
        self._epoch_attention = None

    def attended(self, x0: Tensor, groups: _RelationGroups) -> tuple[Tensor, Tensor]:
        """The attention matrix of ``groups`` and its transpose: cached for a training epoch
        once :meth:`start_epoch` was called, computed afresh otherwise."""
        cached = self._epoch_attention
        if self.training and self._per_epoch and cached is not None and cached[0] is groups:
            return cached[1]
        alpha = self.attention(x0, groups, x0.size(0))
        matrices = groups.pattern.matrices(groups.pattern.entry_values(alpha))
        if self.training and self._per_epoch:
            self._epoch_attention = (groups, matrices)
        return matrices

    @torch.no_grad()
    def attention(self, x0: Tensor, groups: _RelationGroups, num_nodes: int) -> Tensor:
        """:math:`\\tilde\\pi` per edge of ``groups`` (no gradient, as in the authors' code)."""
        logits = []
        for rel, src, dst in zip(groups.relations, groups.src.split(groups.sizes), groups.dst.split(groups.sizes)):
            w = self.projection[rel].t().to(x0.dtype)
            head = x0.index_select(0, dst) @ w
            tail = x0.index_select(0, src) @ w
            logits.append((tail * torch.tanh(head + self.relation.weight[rel].to(x0.dtype))).sum(-1))
        if not logits:
            return x0.new_zeros(0)
        return softmax(torch.cat(logits).float(), groups.dst, num_nodes=num_nodes)

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}, use_kg={self.use_kg}"

    def forward(self, x: Tensor, g: GraphTensors) -> Tensor:
        """``x [N, d]`` -> ``[N, (L + 1) d]``: layer 0, then each normalised layer."""
        attended = self.attended(x, self._groups(g))
        out, parts = x, [x]
        for layer in self.layers:
            out = layer(out, attended)
            parts.append(F.normalize(out, dim=-1))
        return torch.cat(parts, dim=-1)


class KGATRecommender(GraphRecommender):
    """``model.encoder = "kgat"``: KGAT's attentive propagation, dot-product head and TransR loss."""

    needs_knowledge = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.relation_embedding  # DistMult's table: KGAT's e_r (the encoder's) serve TransR and the attention

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        m, t = config.model, config.train
        if m.layers < 1:
            raise KgrecError(f'model.layers = {m.layers}: model.encoder = "kgat" propagates; give it 1 or more layers')
        if m.normalize:
            raise KgrecError('model.normalize = true: model.encoder = "kgat" concatenates its layers, already normalised; set it false')
        if m.edge_dropout > 0:
            raise KgrecError(f'model.edge_dropout = {m.edge_dropout}: model.encoder = "kgat" has message dropout only (model.dropout); set it 0')
        if t.kg_loss_weight <= 0 and m.use_kg:
            raise KgrecError('train.kg_loss_weight = 0: model.encoder = "kgat" trains its attention parameters by TransR; give it a weight > 0')

    @classmethod
    def build_encoder(cls, config, g: GraphTensors) -> nn.Module:
        m = config.model
        return KGATEncoder(m.dim, g.num_relations, num_layers=m.layers, dropout=m.dropout, use_kg=m.use_kg)

    def start_epoch(self) -> None:
        self.encoder.start_epoch()

    def kg_score(self, head_emb: Tensor, rel_ids: Tensor, tail_emb: Tensor) -> Tensor:
        """TransR's ``-f_r(h, t)`` with the encoder's projections and relation vectors."""
        return transr_score(self.encoder.projection, self.encoder.relation, head_emb, rel_ids, tail_emb)

    def loss(self, batch, emb: Embeddings):
        """kgrec's CF and L2 terms, and TransR on the layer-0 embeddings of the knowledge triples."""
        terms = super().loss(dataclasses.replace(batch, kg=None), emb)
        if batch.kg is not None:
            kg = batch.kg
            terms["kg"] = self.objective.kg_loss_weight * kg_link_loss(self.kg_score, emb.node0, kg.heads, kg.relations, kg.tails, kg.corrupted_tails)
        return terms


__all__ = ["KGATEncoder", "KGATRecommender"]
