"""The training graph as flat tensors: what every encoder consumes.

The trainer turns a :class:`~kgrec.graph.container.KnowledgeGraph` minus the held-out
interactions into one :class:`GraphTensors`. Global node indices put users first
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
