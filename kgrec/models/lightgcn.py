"""LightGCN propagation over the collaborative knowledge graph, over the whole graph or a
sampled block of it."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.models.gnn import GraphRecommender
from kgrec.models.graph_tensors import GraphTensors, SampledSubgraph
from kgrec.models.propagation import NormalisedAdjacency, PerGraphCache, message_edges, symmetric_spmm


class KGLightGCN(nn.Module):
    r"""LightGCN from `"LightGCN: Simplifying and Powering Graph Convolution Network for
    Recommendation" <https://arxiv.org/abs/2002.02126>`_ (He et al., SIGIR 2020), run over the
    collaborative knowledge graph: users, items and entities in one homogeneous graph, with
    user-item and knowledge edges treated alike.

    Each layer has no weights and no nonlinearity:

    .. math::
        \mathbf{X}^{(k+1)} = \mathbf{D}^{-1/2} \mathbf{A} \mathbf{D}^{-1/2} \mathbf{X}^{(k)},
        \qquad
        \mathbf{X} = \frac{1}{K+1} \sum_{k=0}^{K} \mathbf{X}^{(k)},

    where :math:`\mathbf{A}` is the symmetric adjacency over all edges (parallel edges count
    with their multiplicity) and :math:`\mathbf{D}` its degree matrix; isolated nodes keep
    only their layer-0 share.

    The normalised adjacency is built once per graph (on the graph's device, in float32) and
    cached; each layer is what :class:`torch_geometric.nn.LGConv` computes with a
    pre-normalised adjacency (``A_hat @ x``), done by :func:`symmetric_spmm` so that the
    backward pass reuses the symmetric matrix instead of transposing it every step (no
    torch-sparse needed). Propagation always runs in float32, also under autocast, because
    half-precision sparse products are unreliable.

    Args:
        num_layers (int): number of propagation layers :math:`K` (0 returns the input).
        edge_dropout (float): in training mode, the fraction of node pairs whose edges (both
            directions) are removed for this forward pass before re-normalising
            (as in NGCF / SGL). 0 disables it.
        use_kg (bool): propagate over knowledge edges too; False keeps user-item edges only.
    """

    def __init__(self, num_layers: int = 3, edge_dropout: float = 0.0, use_kg: bool = True):
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if not 0.0 <= edge_dropout < 1.0:
            raise ValueError(f"edge_dropout must be in [0, 1), got {edge_dropout}")
        self.num_layers = num_layers
        self.edge_dropout = edge_dropout
        self.use_kg = use_kg
        self._adjacency = PerGraphCache(self._build_adjacency)
        self._block_coefficients = PerGraphCache(self._build_block_coefficients)

    def _build_adjacency(self, g: GraphTensors) -> tuple[NormalisedAdjacency, Tensor]:
        edge_index, _ = message_edges(g, self.use_kg)
        structure = NormalisedAdjacency.from_edge_index(edge_index, g.num_nodes)
        return structure, structure.normalised()

    def _build_block_coefficients(self, g: GraphTensors) -> tuple[Tensor, Tensor]:
        """The normalised adjacency's values and every row's length (its number of neighbours)."""
        _, adj = self._adjacency(g)
        rowptr = adj.crow_indices()
        return adj.values(), (rowptr[1:] - rowptr[:-1]).float()

    def adjacency(self, g: GraphTensors) -> Tensor:
        """The normalised adjacency for this forward pass (with edge dropout when training)."""
        structure, full = self._adjacency(g)
        if not (self.training and self.edge_dropout > 0):
            return full
        keep = torch.rand(structure.num_pairs, device=full.device) >= self.edge_dropout
        return structure.normalised(keep)

    def forward(self, x: Tensor, g: GraphTensors, return_layers: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Propagate layer-0 embeddings ``x [N, d]`` over ``g``; returns ``[N, d]`` float32.

        With ``return_layers`` it returns ``(mean, [X^(0), ..., X^(K)])``: the per-layer
        embeddings feed the structural-neighbour contrast (``train.contrast_weight``).
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = x.float()
            layers = [out]
            if self.num_layers > 0:
                adj = self.adjacency(g)
                for _ in range(self.num_layers):
                    out = symmetric_spmm(adj, out)
                    layers.append(out)
            total = layers[0]
            for layer in layers[1:]:
                total = total + layer
            mean = total / len(layers) if len(layers) > 1 else total
            return (mean, layers) if return_layers else mean

    # ------------------------------------------------------------------ sampled blocks
    def sampling_csr(self, g: GraphTensors) -> tuple[Tensor, Tensor]:
        """``(rowptr, col)`` of the graph a neighbour sampler draws blocks from.

        The encoder's own normalised adjacency (built once per graph and cached): its CSR
        structure is the graph to sample, its values the coefficients of sampled edges, so
        mini-batch training adds no second copy of the graph.
        """
        _, adj = self._adjacency(g)
        return adj.crow_indices(), adj.col_indices()

    def _block_weights(self, g: GraphTensors, sub: SampledSubgraph) -> Tensor:
        """Full-graph coefficient of every sampled edge times ``n_i / s_i`` of its target."""
        coefficient, row_length = self._block_coefficients(g)
        target = sub.edge_index[1]
        sampled = torch.bincount(target, minlength=sub.num_nodes).float()
        scale = row_length[sub.nodes] / sampled.clamp(min=1)
        return coefficient[sub.edge_ids] * scale[target]

    def forward_block(
        self, x0: Tensor, sub: SampledSubgraph, g: GraphTensors, return_layers: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The seeds' layer average after ``K`` layers over a sampled block, in float32.

        ``x0`` holds the layer-0 rows of ``sub.nodes``. Sampled edges keep the full graph's
        coefficients ``1/sqrt(d_i d_j)`` and a node's sampled sum is scaled by (its neighbours /
        those sampled): each layer is an unbiased estimate of full propagation, and with fanouts
        covering every degree the result equals it (see :mod:`kgrec.train.step`).

        With per-hop counts, layer ``l`` computes outputs only for nodes within ``K - l`` hops
        of a seed, from the edges into them: with edges sorted by target (kgrec's sampler emits
        them so) both are prefixes, because nodes are numbered by hop. Without the counts every
        layer covers the whole block. Each layer is one sparse CSR product, so no
        ``[edges, dim]`` message tensor is ever materialised. With ``return_layers`` it also
        returns every layer's rows of the seeds.
        """
        if self.training and self.edge_dropout > 0:
            raise ValueError("edge dropout is not supported over sampled blocks (sampling already drops edges)")
        with torch.autocast(device_type=x0.device.type, enabled=False):
            x = x0.float()
            k, s = self.num_layers, sub.num_seeds
            total = x[:s]
            layers = [total]
            if k > 0:
                weight = self._block_weights(g, sub)
                src, dst = sub.edge_index
                if sub.num_edges > 1 and not bool((dst[1:] >= dst[:-1]).all()):  # PyG promises no order
                    order = torch.argsort(dst, stable=True)
                    src, dst, weight = src[order], dst[order], weight[order]
                crow = torch.zeros(sub.num_nodes + 1, dtype=torch.long, device=x.device)
                crow[1:] = torch.cumsum(torch.bincount(dst, minlength=sub.num_nodes), 0)
                trim = sub.nodes_per_hop is not None and len(sub.nodes_per_hop) == k + 1
                for layer in range(1, k + 1):
                    outputs = sum(sub.nodes_per_hop[: k - layer + 1]) if trim else sub.num_nodes
                    edges = int(crow[outputs])
                    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
                        warnings.simplefilter("ignore", UserWarning)
                        block = torch.sparse_csr_tensor(
                            crow[: outputs + 1], src[:edges], weight[:edges], (outputs, x.size(0)), check_invariants=False
                        )
                    x = block @ x
                    total = total + x[:s]
                    layers.append(x[:s])
                total = total / (k + 1)
            return (total, layers) if return_layers else total

    def extra_repr(self) -> str:
        return (
            f"num_layers={self.num_layers}, edge_dropout={self.edge_dropout}, "
            f"use_kg={self.use_kg}"
        )


class LightGCNRecommender(GraphRecommender):
    """``model.encoder = "lightgcn"``: :class:`KGLightGCN` propagation under kgrec's GNN head.

    Weightless layers over users, items and knowledge entities (one homogeneous graph), the
    mean of the layers as the final embedding. It can propagate over sampled blocks
    (``train.sampler = "neighbor"``) and keep its per-layer embeddings (NCL's contrast).
    ``model.dropout`` and ``model.heads`` belong to the relational encoder: LightGCN has no
    layer weights, so a dropout is refused (``model.edge_dropout`` drops edges instead).
    """

    supports_blocks = True
    supports_layers = True

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.model.dropout > 0:
            raise KgrecError(
                f"model.dropout = {config.model.dropout} has nothing to act on with model.encoder = \"lightgcn\" "
                "(its layers have no weights); use model.edge_dropout, or the \"relational\" encoder"
            )

    @classmethod
    def build_encoder(cls, config, g: GraphTensors) -> nn.Module:
        return KGLightGCN(config.model.layers, edge_dropout=config.model.edge_dropout, use_kg=config.model.use_kg)
