r"""KGIN: knowledge graph-based intent network (Wang et al., WWW 2021), on kgrec's contract.

`"Learning Intents behind Interactions with Knowledge Graph for Recommendation"
<https://doi.org/10.1145/3442381.3450133>`_. A user's interactions are explained by :math:`P`
*intents*, each an attentive combination of the KG relations,

.. math::
    \mathbf{e}_p = \sum_{r \in \mathcal{R}} \alpha(r, p)\, \mathbf{e}_r, \qquad
    \alpha(r, p) = \operatorname{softmax}_{r}(w_{rp}).

Users aggregate their items through the intents, items and entities aggregate their
knowledge neighbours along relational paths:

.. math::
    \mathbf{e}_u^{(l+1)} = \frac{1}{|\mathcal{N}_u|} \sum_{(p, i) \in \mathcal{N}_u}
        \beta(u, p)\, \mathbf{e}_p \odot \mathbf{e}_i^{(l)}, \quad
    \beta(u, p) = \operatorname{softmax}_{p}\big(\mathbf{e}_p^\top \mathbf{e}_u^{(l)}\big), \qquad
    \mathbf{e}_i^{(l+1)} = \frac{1}{|\mathcal{N}_i|} \sum_{(r, v) \in \mathcal{N}_i} \mathbf{e}_r \odot \mathbf{e}_v^{(l)}.

Items receive no messages from users. The representation sums the layers,
:math:`\mathbf{e}^* = \mathbf{e}^{(0)} + \sum_l \hat{\mathbf{e}}^{(l)}` (each layer
L2-normalised, as in the authors' code), :math:`\hat y_{ui} = \mathbf{e}_u^{*\top}
\mathbf{e}_i^*`, and the loss adds to BPR the independence of the intents, the sum over intent
pairs of their distance correlation (Székely et al., 2007):

.. math::
    \mathcal{L}_{IND} = \sum_{p < p'} \operatorname{dCor}(\mathbf{e}_p, \mathbf{e}_{p'}).

Where kgrec deviates, and why:

* the user update keeps the authors' code's residual, :math:`\mathbf{e}_u^{(l+1)} =
  \bar{\mathbf{e}} \odot \sum_p \beta(u,p)\mathbf{e}_p + \bar{\mathbf{e}}` with
  :math:`\bar{\mathbf{e}}` the mean of the user's items (the formula above without it starts
  every user near zero, as :math:`\mathbf{e}_p` is a small vector at initialisation);
* the intents' distance correlation is taken between the intent vectors :math:`\mathbf{e}_p`
  (the paper's formula); the authors' code takes it between the rows of the attention logits
  :math:`w_{\cdot p}`;
* ``train.kg_loss_weight`` > 0 adds kgrec's DistMult loss on the knowledge edges (its own
  relation table); KGIN has none, and the faithful configuration sets it to 0;
* the paper's node dropout on the interaction graph is ``model.edge_dropout`` (dropped
  messages, renormalised means); node inputs are kgrec's (ID embedding and, with
  ``model.use_text``, projected BERT features; off is the paper's model); the L2 penalty is
  kgrec's, on the batch's layer-0 embeddings.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.models.base import Embeddings
from kgrec.models.gnn import GraphRecommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.propagation import PerGraphCache


@dataclasses.dataclass(frozen=True)
class _KginEdges:
    """The two edge sets KGIN propagates over."""

    item_src: Tensor  # [Eu] item -> user messages
    user_dst: Tensor
    kg_src: Tensor  # [Ek] knowledge messages between items and entities, both directions
    kg_dst: Tensor
    kg_type: Tensor
    kg_relations: Tensor  # relation ids that occur on knowledge edges (the intents mix these)


def distance_correlation(x: Tensor, y: Tensor) -> Tensor:
    """Sample distance correlation of two vectors, their entries taken as the samples."""

    def centred(v: Tensor) -> Tensor:
        d = (v.unsqueeze(0) - v.unsqueeze(1)).abs()
        return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()

    a, b = centred(x), centred(y)
    dcov_xy = (a * b).mean().clamp(min=0).sqrt()
    dcov_xx = (a * a).mean().sqrt()
    dcov_yy = (b * b).mean().sqrt()
    return dcov_xy / (dcov_xx * dcov_yy).sqrt().clamp(min=1e-10)


def _mean_by_target(messages: Tensor, dst: Tensor, num_nodes: int, weight: Tensor | None = None) -> Tensor:
    """``scatter_mean`` of (optionally weighted) messages; nodes without messages get zeros."""
    if weight is not None:
        messages = messages * weight.unsqueeze(-1)
        count = torch.zeros(num_nodes, dtype=messages.dtype, device=messages.device).index_add_(0, dst, weight)
    else:
        count = torch.bincount(dst, minlength=num_nodes).to(messages.dtype)
    total = messages.new_zeros(num_nodes, messages.size(-1)).index_add_(0, dst, messages)
    return total / count.clamp(min=1).unsqueeze(-1)


class KGINEncoder(nn.Module):
    """Intent-aware user aggregation and relational-path item aggregation; layers summed.

    Args:
        dim (int): embedding size.
        num_relations (int): relation ids of the graph.
        num_layers (int): propagation hops.
        intents (int): number of intents :math:`P`.
        dropout (float): message dropout on each layer's output.
        edge_dropout (float): fraction of interaction messages dropped per training pass.
    """

    def __init__(self, dim: int, num_relations: int, num_layers: int = 3, intents: int = 4, dropout: float = 0.1, edge_dropout: float = 0.0):
        super().__init__()
        self.num_layers = num_layers
        self.dropout = dropout
        self.edge_dropout = edge_dropout
        num_relations = max(num_relations, 1)
        self.relation = nn.Embedding(num_relations, dim)  # e_r
        nn.init.xavier_uniform_(self.relation.weight)
        self.intent_logits = nn.Parameter(torch.empty(intents, num_relations))  # w_rp
        nn.init.xavier_uniform_(self.intent_logits)
        self._edges = PerGraphCache(self._split_edges)

    @staticmethod
    def _split_edges(g: GraphTensors) -> _KginEdges:
        src, dst = g.edge_index
        ui = g.num_users + g.num_items
        to_user = dst < g.num_users
        knowledge = (src >= g.num_users) & (dst >= g.num_users) & ((src >= ui) | (dst >= ui))
        kg_type = g.edge_type[knowledge]
        return _KginEdges(src[to_user], dst[to_user], src[knowledge], dst[knowledge], kg_type, torch.unique(kg_type))

    def intents(self, edges: _KginEdges) -> Tensor:
        """``[P, d]`` the intent vectors, softmax-mixed from the knowledge relations."""
        logits = self.intent_logits[:, edges.kg_relations]
        return torch.softmax(logits, dim=-1) @ self.relation.weight[edges.kg_relations]

    def independence(self, g: GraphTensors) -> Tensor:
        """:math:`\\sum_{p < p'} \\operatorname{dCor}(\\mathbf{e}_p, \\mathbf{e}_{p'})` over ``g``'s knowledge relations."""
        edges = self._edges(g)
        if edges.kg_relations.numel() == 0:
            return self.relation.weight.new_zeros(())
        e = self.intents(edges)
        pairs = [distance_correlation(e[p], e[q]) for p in range(e.size(0)) for q in range(p + 1, e.size(0))]
        return torch.stack(pairs).sum() if pairs else e.new_zeros(())

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}, intents={self.intent_logits.size(0)}, dropout={self.dropout}, edge_dropout={self.edge_dropout}"

    def forward(self, x: Tensor, g: GraphTensors) -> Tensor:
        edges = self._edges(g)
        n, u = x.size(0), g.num_users
        intents = self.intents(edges) if edges.kg_relations.numel() else None
        keep = None
        if self.training and self.edge_dropout > 0:
            keep = (torch.rand(edges.item_src.numel(), device=x.device) >= self.edge_dropout).to(x.dtype)
        relation = self.relation(edges.kg_type).to(x.dtype)
        out, total = x, x
        for _ in range(self.num_layers):
            items_mean = _mean_by_target(out.index_select(0, edges.item_src), edges.user_dst, n, keep)[:u]
            if intents is not None:
                beta = torch.softmax(out[:u] @ intents.t().to(x.dtype), dim=-1)  # [U, P]
                users = items_mean * (beta @ intents.to(x.dtype)) + items_mean
            else:
                users = items_mean
            nodes = _mean_by_target(out.index_select(0, edges.kg_src) * relation, edges.kg_dst, n)
            out = torch.cat([users, nodes[u:]], dim=0)
            out = F.dropout(out, p=self.dropout, training=self.training)
            total = total + F.normalize(out, dim=-1)
        return total


class KGINRecommender(GraphRecommender):
    """``model.encoder = "kgin"``: intents over relations, relational paths, the independence term."""

    needs_knowledge = True
    has_intents = True

    def __init__(self, *args, independence_weight: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.independence_weight = independence_weight
        self._graph: GraphTensors | None = None  # the graph of the last forward, for the independence term

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        m, t = config.model, config.train
        if m.layers < 1:
            raise KgrecError(f'model.layers = {m.layers}: model.encoder = "kgin" propagates; give it 1 or more layers')
        if not m.use_kg:
            raise KgrecError('model.use_kg = false: model.encoder = "kgin" propagates over the knowledge graph; keep use_kg = true')
        if m.intents < 1:
            raise KgrecError(f"model.intents = {m.intents} must be 1 or more")
        if m.normalize:
            raise KgrecError('model.normalize = true: model.encoder = "kgin" sums normalised layers; set it false')

    @classmethod
    def build_encoder(cls, config, g: GraphTensors) -> nn.Module:
        m = config.model
        return KGINEncoder(m.dim, g.num_relations, num_layers=m.layers, intents=m.intents, dropout=m.dropout, edge_dropout=m.edge_dropout)

    @classmethod
    def from_config(cls, config, g: GraphTensors, item_item=None) -> "KGINRecommender":
        model = super().from_config(config, g, item_item)
        model.independence_weight = config.train.independence_weight
        return model

    def forward(self, g: GraphTensors, layers: bool = False, block=None):
        self._graph = g
        return super().forward(g, layers, block)

    def loss(self, batch, emb: Embeddings):
        """kgrec's CF and L2 terms (and its optional DistMult KG loss) plus the intents' independence."""
        terms = super().loss(batch, emb)
        if self.independence_weight > 0:
            terms["independence"] = self.independence_weight * self.encoder.independence(self._graph)
        return terms


__all__ = ["KGINEncoder", "KGINRecommender", "distance_correlation"]
