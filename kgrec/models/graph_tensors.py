"""The training graph as flat tensors: what every encoder consumes.

The trainer turns a :class:`~kgrec.graph.container.KnowledgeGraph` minus the held-out
interactions into one :class:`GraphTensors`; mini-batch training propagates over
:class:`SampledSubgraph` blocks of it instead. Global node indices put users first
(``[0, num_users)``), then items (``[num_users, num_users + num_items)``), then entities, so the
dot-product head can slice users and items out of one embedding table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor


@dataclass
class GraphTensors:
    """Homogeneous view of a heterogeneous training graph.

    Attributes:
        num_users, num_items, num_nodes: sizes; entities are ``num_nodes - num_users - num_items``.
        edge_index: ``[2, E]`` message-passing edges (both directions, held-out pairs removed).
        edge_type: ``[E]`` relation id of each edge, in ``[0, num_relations)``.
        relation_names: name of each relation id (``"click"``, ``"rev_click"``, ``"genre"``...).
        node_type: ``[N]`` node-type id of each node (0 = user, 1 = item, 2.. = entity types).
        features: ``[N, F]`` BERT features (zero rows where ``has_text`` is False), or None.
        has_text: ``[N]`` which nodes have a description or label.
        kg_edge_index, kg_edge_type: forward knowledge edges (head, tail) and their relation
            ids, for the auxiliary link-prediction loss; empty when the graph has no RDF.
    """

    num_users: int
    num_items: int
    num_nodes: int
    edge_index: Tensor
    edge_type: Tensor
    relation_names: list[str]
    node_type: Tensor
    features: Tensor | None = None
    has_text: Tensor | None = None
    kg_edge_index: Tensor = field(default_factory=lambda: torch.empty(2, 0, dtype=torch.long))
    kg_edge_type: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)

    @property
    def num_node_types(self) -> int:
        return int(self.node_type.max()) + 1 if self.node_type.numel() else 0

    @property
    def feature_dim(self) -> int:
        return 0 if self.features is None else int(self.features.size(1))

    def to(self, device) -> "GraphTensors":
        def mv(t):
            return None if t is None else t.to(device)

        return replace(
            self,
            edge_index=mv(self.edge_index),
            edge_type=mv(self.edge_type),
            node_type=mv(self.node_type),
            features=mv(self.features),
            has_text=mv(self.has_text),
            kg_edge_index=mv(self.kg_edge_index),
            kg_edge_type=mv(self.kg_edge_type),
        )


@dataclass(frozen=True)
class SampledSubgraph:
    """The sampled neighbourhood of a batch of seeds, relabelled to local ids ``0..n-1``.

    Made by :mod:`kgrec.train.neighbor_sampler` and consumed by encoders that can propagate
    over a block (``Recommender.forward(g, block=...)``).

    Attributes:
        nodes: ``[n]`` global ids; ``nodes[:num_seeds]`` are the distinct seeds, then come the
            nodes first reached at hop 1, hop 2, ...
        edge_index: ``[2, m]`` local (source, target) pairs: messages flow from a sampled
            neighbour to the node it was sampled for, towards the seeds.
        edge_ids: ``[m]`` position of each edge in the CSR's ``col`` array, to look up the
            caller's per-edge weights.
        seed_index: ``[S]`` local id of every seed as passed in (duplicates allowed).
        num_seeds: number of distinct seeds.
        nodes_per_hop: ``[K + 1]`` counts of nodes first reached at hop 0 (the seeds), 1, ..., K;
            None when the backend does not report them (then the block cannot be trimmed).
        edges_per_hop: ``[K]`` counts of edges sampled at hop 1..K (their targets were first
            reached at hop ``k - 1``); None with ``nodes_per_hop``.
    """

    nodes: Tensor
    edge_index: Tensor
    edge_ids: Tensor
    seed_index: Tensor
    num_seeds: int
    nodes_per_hop: list[int] | None
    edges_per_hop: list[int] | None

    @property
    def num_nodes(self) -> int:
        return int(self.nodes.numel())

    @property
    def num_edges(self) -> int:
        return int(self.edge_ids.numel())
