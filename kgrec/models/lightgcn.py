"""LightGCN propagation over the collaborative knowledge graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.models.graph_tensors import GraphTensors
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

    def _build_adjacency(self, g: GraphTensors) -> tuple[NormalisedAdjacency, Tensor]:
        edge_index, _ = message_edges(g, self.use_kg)
        structure = NormalisedAdjacency.from_edge_index(edge_index, g.num_nodes)
        return structure, structure.normalised()

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

    def extra_repr(self) -> str:
        return (
            f"num_layers={self.num_layers}, edge_dropout={self.edge_dropout}, "
            f"use_kg={self.use_kg}"
        )
