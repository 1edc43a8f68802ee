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
from kgrec.models.propagation import PerGraphCache, SparsePattern, spmm


@dataclasses.dataclass(frozen=True)
class _KginEdges:
    """The two edge sets KGIN propagates over, as sparse patterns built once per graph.

    A user's update is a mean over its items: one ``[U, N]`` sparse product. An item's (or
    entity's) update :math:`\frac{1}{|\mathcal{N}_i|}\sum_{(r, v)} \mathbf{e}_r \odot \mathbf{e}_v`
    is grouped by (target, relation) pair: one ``[pairs, N]`` sparse product gives each pair's
    mean neighbour, which is multiplied by its relation vector and added to its target. Only
    ``[pairs, dim]`` tensors are made, never ``[edges, dim]`` ones.
    """

    user_dst: Tensor  # [Eu] user of every item -> user message
    users: SparsePattern  # [U, N] user x item
    knowledge: SparsePattern  # [pairs, N] (target, relation) pair x source
    knowledge_mean: tuple[Tensor, Tensor]  # its matrix of 1 / |N_target| and the transpose
    pair_target: Tensor  # [pairs] target node of each pair
    pair_relation: Tensor  # [pairs] relation id of each pair


def _knowledge_edges(g: GraphTensors) -> Tensor:
    """``[E]`` True on ``g``'s knowledge edges: both ends items or entities, one an entity."""
    src, dst = g.edge_index
    u, ui = g.num_users, g.num_users + g.num_items
    return (src >= u) & (dst >= u) & ((src >= ui) | (dst >= ui))


def knowledge_relations(g: GraphTensors) -> Tensor:
    """The relation ids on ``g``'s knowledge edges: what KGIN's intents mix."""
    return torch.unique(g.edge_type[_knowledge_edges(g)])


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


class KGINEncoder(nn.Module):
    """Intent-aware user aggregation and relational-path item aggregation; layers summed.

    Args:
        dim (int): embedding size.
        num_relations (int): relation ids of the graph.
        kg_relations: the relation ids on the graph's knowledge edges (:func:`knowledge_relations`).
        num_layers (int): propagation hops.
        intents (int): number of intents :math:`P`.
        dropout (float): message dropout on each layer's output.
        edge_dropout (float): fraction of interaction messages dropped per training pass.
    """

    def __init__(
        self, dim: int, num_relations: int, kg_relations, num_layers: int = 3, intents: int = 4, dropout: float = 0.1, edge_dropout: float = 0.0
    ):
        super().__init__()
        self.num_layers = num_layers
        self.dropout = dropout
        self.edge_dropout = edge_dropout
        num_relations = max(num_relations, 1)
        self.relation = nn.Embedding(num_relations, dim)  # e_r
        nn.init.xavier_uniform_(self.relation.weight)
        self.intent_logits = nn.Parameter(torch.empty(intents, num_relations))  # w_rp
        nn.init.xavier_uniform_(self.intent_logits)
        # the relations the intents mix: those on knowledge edges of the training graph, fixed at
        # build time (a graph with added items has no new relations), not saved with the weights
        self.register_buffer("kg_relations", torch.as_tensor(kg_relations, dtype=torch.long), persistent=False)
        self._edges = PerGraphCache(self._split_edges)

    @staticmethod
    def _split_edges(g: GraphTensors) -> _KginEdges:
        src, dst = g.edge_index
        n, u = g.num_nodes, g.num_users
        to_user = dst < u
        users = SparsePattern.from_edges(dst[to_user], src[to_user], u, n)
        knowledge = _knowledge_edges(g)
        k_src, k_dst, k_type = src[knowledge], dst[knowledge], g.edge_type[knowledge]
        num_relations = max(g.num_relations, 1)
        pair_keys, pair = torch.unique(k_dst * num_relations + k_type, return_inverse=True)
        pattern = SparsePattern.from_edges(pair, k_src, int(pair_keys.numel()), n)
        degree = torch.bincount(k_dst, minlength=n).clamp(min=1).float()
        mean = pattern.matrices(pattern.entry_values(1.0 / degree[k_dst]))
        return _KginEdges(
            dst[to_user], users, pattern, mean, torch.div(pair_keys, num_relations, rounding_mode="floor"),
            pair_keys % num_relations,
        )

    def _user_mean(self, edges: _KginEdges, x: Tensor) -> tuple[Tensor, Tensor]:
        """The ``[U, N]`` mean-over-items matrix (and transpose), with node dropout in training."""
        keep = torch.ones(edges.user_dst.numel(), device=x.device)
        if self.training and self.edge_dropout > 0:
            keep = (torch.rand(keep.numel(), device=x.device) >= self.edge_dropout).float()
        count = torch.zeros(edges.users.num_rows, device=x.device).index_add_(0, edges.user_dst, keep)
        return edges.users.matrices(edges.users.entry_values(keep / count.clamp(min=1)[edges.user_dst]))

    def intents(self) -> Tensor:
        """``[P, d]`` the intent vectors, softmax-mixed from the knowledge relations."""
        logits = self.intent_logits[:, self.kg_relations]
        return torch.softmax(logits, dim=-1) @ self.relation.weight[self.kg_relations]

    def independence(self) -> Tensor:
        """:math:`\\sum_{p < p'} \\operatorname{dCor}(\\mathbf{e}_p, \\mathbf{e}_{p'})`."""
        if self.kg_relations.numel() == 0:
            return self.relation.weight.new_zeros(())
        e = self.intents()
        pairs = [distance_correlation(e[p], e[q]) for p in range(e.size(0)) for q in range(p + 1, e.size(0))]
        return torch.stack(pairs).sum() if pairs else e.new_zeros(())

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}, intents={self.intent_logits.size(0)}, dropout={self.dropout}, edge_dropout={self.edge_dropout}"

    def forward(self, x: Tensor, g: GraphTensors) -> Tensor:
        edges = self._edges(g)
        u = g.num_users
        x = x.float()  # sparse products run in float32, also under autocast
        intents = self.intents().float() if self.kg_relations.numel() else None
        user_mean = self._user_mean(edges, x)
        relation = self.relation(edges.pair_relation).float()
        out, total = x, x
        for _ in range(self.num_layers):
            items_mean = spmm(*user_mean, out)
            if intents is not None:
                beta = torch.softmax(out[:u] @ intents.t(), dim=-1)  # [U, P]
                users = items_mean * (beta @ intents) + items_mean
            else:
                users = items_mean
            per_pair = spmm(*edges.knowledge_mean, out) * relation
            nodes = out.new_zeros(out.shape).index_add(0, edges.pair_target, per_pair)
            out = torch.cat([users, nodes[u:]], dim=0)
            out = F.dropout(out, p=self.dropout, training=self.training)
            total = total + F.normalize(out, dim=-1)
        return total


class KGINRecommender(GraphRecommender):
    """``model.encoder = "kgin"``: intents over relations, relational paths, the independence term."""

    needs_knowledge = True
    has_intents = True

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        m = config.model
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
        return KGINEncoder(
            m.dim, g.num_relations, knowledge_relations(g), num_layers=m.layers, intents=m.intents, dropout=m.dropout, edge_dropout=m.edge_dropout
        )

    def loss(self, batch, emb: Embeddings):
        """kgrec's CF and L2 terms (and its optional DistMult KG loss) plus the intents' independence."""
        terms = super().loss(batch, emb)
        if self.objective.independence_weight > 0:
            terms["independence"] = self.objective.independence_weight * self.encoder.independence()
        return terms


__all__ = ["KGINEncoder", "KGINRecommender", "distance_correlation"]
