r"""KGCL: knowledge graph contrastive learning (Yang et al., SIGIR 2022), on kgrec's contract.

`"Knowledge Graph Contrastive Learning for Recommendation" <https://doi.org/10.1145/3477495.3532009>`_.
An item starts from its ID embedding plus its knowledge neighbours, weighted by a
relation-aware attention,

.. math::
    \mathbf{x}_i = \mathbf{e}_i + \sum_{(r, v) \in \mathcal{N}_i} \alpha(i, r, v)\, \mathbf{e}_v, \qquad
    \alpha(i, r, v) = \operatorname{softmax}_{(r, v)}\Big(\operatorname{LeakyReLU}\big(
        (\mathbf{W} [\mathbf{e}_i \Vert \mathbf{e}_v])^\top \mathbf{e}_r\big)\Big),

and LightGCN propagates users and these items over the interaction graph (no knowledge edges
in the propagation). The knowledge also *guides the augmentation*: two views of the KG, each
dropping ``model.kg_view_dropout`` of its edges, give every item two knowledge-aware vectors;
their cosine is the item's *KG structure consistency* :math:`c_i`. Items whose knowledge is
consistent are kept, the others more often dropped, from two views of the interaction graph:

.. math::
    w_i = \operatorname{minmax}(e^{c_i}) \vee 0.3, \qquad
    p_i = \min\Big(0.95,\ (1 - p_{drop})\, \frac{w_i}{\bar w}\Big), \qquad
    \text{item } i \text{ (all its interactions) kept with probability } p_i,

with :math:`p_{drop}` = ``model.edge_dropout``. View :math:`k` propagates over interaction
view :math:`k` with items from KG view :math:`k`; an InfoNCE term pulls each batch user's (and
item's) two view vectors together against those of every other user (item) in view 2,

.. math::
    \mathcal{L}_{CL} = -\sum_{u \in \mathcal{B}} \log
        \frac{\exp(s(\mathbf{z}'_u, \mathbf{z}''_u)/\tau)}{\sum_{v} \exp(s(\mathbf{z}'_u, \mathbf{z}''_v)/\tau)}
        \; + \; (\text{the same over items}),

weighted by ``train.contrast_weight`` with :math:`\tau` = ``train.contrast_temperature``. The
knowledge embeddings are also trained by TransE, :math:`-\lVert \mathbf{e}_h + \mathbf{e}_r -
\mathbf{e}_t \rVert^2` (``train.kg_loss_weight``), and the recommendation loss is BPR.

Where kgrec deviates, and why:

* the views are drawn afresh at every step, not once per epoch (the authors' code): kgrec's
  contract has no epoch hook, and fresher views are the intent of the augmentation;
* the attention runs over every knowledge neighbour of an item, not a fixed-size sample of
  them; the CF and KG losses are summed in one step instead of alternating;
* node inputs are kgrec's (ID embedding and, with ``model.use_text``, projected BERT features;
  off is the paper's model); the L2 penalty is kgrec's, on the batch's layer-0 embeddings; the
  authors' optional random mixing of the interaction views is left out.
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
from kgrec.models.propagation import NormalisedAdjacency, PerGraphCache, message_edges, symmetric_spmm


@dataclasses.dataclass(frozen=True)
class _KgclGraph:
    """What KGCL propagates over, built once per graph."""

    kg_src: Tensor  # [Ek] entity -> item knowledge messages
    kg_dst: Tensor
    kg_type: Tensor
    interactions: NormalisedAdjacency  # the user-item graph
    full: Tensor  # its normalised adjacency
    pair_item: Tensor  # [num_pairs] item (global node) of every user-item pair
    items: Tensor  # the items with interactions (global nodes), sorted


@dataclasses.dataclass
class ViewEmbeddings(Embeddings):
    """:class:`Embeddings` of a training pass, with the two augmented views' final rows."""

    views: tuple[Tensor, Tensor] | None = None


def info_nce(anchor: Tensor, positive: Tensor, candidates: Tensor, temperature: float) -> Tensor:
    """Mean over rows of ``-log softmax`` of ``cos(anchor, positive)`` among ``cos(anchor, candidates)``."""
    a, p, c = (F.normalize(t, dim=-1) for t in (anchor, positive, candidates))
    pos = (a * p).sum(-1) / temperature
    return (torch.logsumexp(a @ c.t() / temperature, dim=-1) - pos).mean()


class KGCLEncoder(nn.Module):
    """Knowledge-aware item inputs, LightGCN over interactions, and KG-guided augmented views.

    Args:
        dim (int): embedding size.
        num_relations (int): relation ids of the graph.
        num_layers (int): LightGCN layers over the interaction graph.
        kg_view_dropout (float): fraction of knowledge edges each KG view drops.
        ui_dropout (float): mean fraction of items each interaction view drops.
    """

    def __init__(self, dim: int, num_relations: int, num_layers: int = 2, kg_view_dropout: float = 0.5, ui_dropout: float = 0.1):
        super().__init__()
        self.num_layers = num_layers
        self.kg_view_dropout = kg_view_dropout
        self.ui_dropout = ui_dropout
        self.relation = nn.Embedding(max(num_relations, 1), dim)  # e_r (attention and TransE)
        nn.init.normal_(self.relation.weight, std=0.1)
        self.attention = nn.Linear(2 * dim, dim, bias=False)  # W
        self._graph = PerGraphCache(self._build)

    @staticmethod
    def _build(g: GraphTensors) -> _KgclGraph:
        src, dst = g.edge_index
        ui = g.num_users + g.num_items
        to_item = (dst >= g.num_users) & (dst < ui) & (src >= ui)
        edge_index, _ = message_edges(g, use_kg=False)
        structure = NormalisedAdjacency.from_edge_index(edge_index, g.num_nodes)
        pair_item = torch.zeros(structure.num_pairs, dtype=torch.long, device=edge_index.device)
        pair_item[structure.pair_id] = torch.maximum(structure.row, structure.col_indices)
        return _KgclGraph(
            src[to_item], dst[to_item], g.edge_type[to_item], structure, structure.normalised(), pair_item, torch.unique(pair_item)
        )

    def item_inputs(self, x: Tensor, graph: _KgclGraph, keep: Tensor | None = None) -> Tensor:
        """``x`` with every item replaced by ``e_i + sum alpha e_v`` over its (kept) knowledge edges."""
        src, dst, rel = graph.kg_src, graph.kg_dst, graph.kg_type
        if keep is not None:
            src, dst, rel = src[keep], dst[keep], rel[keep]
        if src.numel() == 0:
            return x
        # W [e_i || e_v] = W_1 e_i + W_2 e_v: two products over nodes, not one over edges
        w = self.attention.weight.to(x.dtype)
        d = x.size(-1)
        logits = ((x @ w[:, :d].t()).index_select(0, dst) + (x @ w[:, d:].t()).index_select(0, src)) * self.relation(rel).to(x.dtype)
        logits = logits.sum(-1)
        alpha = softmax(F.leaky_relu(logits, 0.2).float(), dst, num_nodes=x.size(0)).to(x.dtype)
        return x.index_add(0, dst, x.index_select(0, src) * alpha.unsqueeze(-1))

    def _propagate(self, x: Tensor, adj: Tensor) -> Tensor:
        """LightGCN's layer mean, in float32 also under autocast (half-precision sparse products are unreliable)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = total = x.float()
            for _ in range(self.num_layers):
                out = symmetric_spmm(adj, out)
                total = total + out
            return total / (self.num_layers + 1)

    def _item_keep_probability(self, view1: Tensor, view2: Tensor, graph: _KgclGraph) -> Tensor:
        """``p_i`` for every node (only item rows matter), from the two KG views' consistency."""
        items = graph.items
        c = torch.exp(F.cosine_similarity(view1[items], view2[items], dim=-1))
        w = (c - c.min()) / (c.max() - c.min()).clamp(min=1e-12)
        w = w.clamp(min=0.3)
        p = ((1 - self.ui_dropout) * w / w.mean()).clamp(max=0.95)
        out = torch.ones(view1.size(0), dtype=p.dtype, device=p.device)
        out[items] = p
        return out

    def forward(self, x: Tensor, g: GraphTensors, views: bool = False):
        """``x [N, d]`` -> ``[N, d]``; with ``views`` also the two augmented views' ``[N, d]``."""
        graph = self._graph(g)
        main = self._propagate(self.item_inputs(x, graph), graph.full)
        if not views:
            return main
        e = graph.kg_src.numel()
        keep1 = torch.rand(e, device=x.device) >= self.kg_view_dropout
        keep2 = torch.rand(e, device=x.device) >= self.kg_view_dropout
        items1, items2 = self.item_inputs(x, graph, keep1), self.item_inputs(x, graph, keep2)
        with torch.no_grad():
            p = self._item_keep_probability(items1, items2, graph)
        out = []
        for items in (items1, items2):
            kept_items = torch.bernoulli(p).bool()  # an item is kept or dropped with all its interactions
            out.append(self._propagate(items, graph.interactions.normalised(kept_items[graph.pair_item])))
        return main, out[0], out[1]

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}, kg_view_dropout={self.kg_view_dropout}, ui_dropout={self.ui_dropout}"


class KGCLRecommender(GraphRecommender):
    """``model.encoder = "kgcl"``: knowledge-aware items, LightGCN, KG-guided contrastive views, TransE."""

    needs_knowledge = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.relation_embedding  # the encoder's e_r serve the attention and TransE

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        m = config.model
        if not m.use_kg:
            raise KgrecError('model.use_kg = false: model.encoder = "kgcl" draws its items and views from the knowledge graph; keep use_kg = true')
        if m.normalize:
            raise KgrecError('model.normalize = true: model.encoder = "kgcl" scores LightGCN\'s dot product; set it false')
        if not 0.0 <= m.kg_view_dropout < 1.0:
            raise KgrecError(f"model.kg_view_dropout = {m.kg_view_dropout} must lie in [0, 1)")

    @classmethod
    def check_contrast(cls, config) -> None:
        """KGCL's contrast is between its own views: it needs no per-layer embeddings (the
        weight's and temperature's ranges are checked with the rest of ``[train]``)."""

    @classmethod
    def build_encoder(cls, config, g: GraphTensors) -> nn.Module:
        m = config.model
        return KGCLEncoder(m.dim, g.num_relations, num_layers=m.layers, kg_view_dropout=m.kg_view_dropout, ui_dropout=m.edge_dropout)

    def forward(self, g: GraphTensors, layers: bool = False, block=None):
        """``(final, layer0)``; in training with a contrast weight also the two views' final rows."""
        if block is not None:
            raise KgrecError('model.encoder = "kgcl" propagates over the whole graph only')
        x0 = self.node_input(g)
        if self.training and self.objective.contrast_weight > 0:
            final, view1, view2 = self.encoder(x0, g, views=True)
            return final, x0, view1, view2
        return self.encoder(x0, g), x0

    def embeddings(self, out: tuple, g: GraphTensors, block=None) -> Embeddings:
        views = (out[2], out[3]) if len(out) > 3 else None
        return ViewEmbeddings(out[0], out[1], g.num_users, g.num_items, views=views)

    def kg_score(self, head_emb: Tensor, rel_ids: Tensor, tail_emb: Tensor) -> Tensor:
        """TransE's ``-||h + r - t||^2`` (``[B, d] -> [B]``, or a ``[B, n, d]`` tail -> ``[B, n]``)."""
        r = self.encoder.relation(rel_ids).to(head_emb.dtype)
        moved = head_emb + r
        if tail_emb.dim() == 3:
            moved = moved.unsqueeze(1)
        return -(moved - tail_emb).pow(2).sum(-1)

    def contrast(self, batch, emb: Embeddings) -> Tensor | None:
        """KGCL's InfoNCE between the two views, for the batch's distinct users and items."""
        views = getattr(emb, "views", None)
        if views is None:
            return None
        v1, v2 = views
        o, u, i = self.objective, emb.num_users, emb.num_items
        users = torch.unique(batch.users)
        items = torch.unique(batch.positives) + u
        return info_nce(v1[users], v2[users], v2[:u], o.contrast_temperature) + info_nce(
            v1[items], v2[items], v2[u : u + i], o.contrast_temperature
        )

    def loss(self, batch, emb: Embeddings):
        """kgrec's CF, L2 and contrast terms, and TransE on the layer-0 knowledge embeddings."""
        terms = super().loss(dataclasses.replace(batch, kg=None), emb)
        o = self.objective
        if batch.kg is not None:
            kg = batch.kg
            terms["kg"] = o.kg_loss_weight * kg_link_loss(self.kg_score, emb.node0, kg.heads, kg.relations, kg.tails, kg.corrupted_tails)
        return terms


__all__ = ["KGCLEncoder", "KGCLRecommender", "info_nce"]
