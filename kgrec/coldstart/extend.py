"""Add nodes to a trained graph and embed them with the trained encoder, without retraining.

A GNN's weights do not depend on the number of nodes: LightGCN has none at all and the
relational encoder's are per relation. What a node owns is its layer-0 input (an ID embedding
plus the projection of its text). A new node (a cold item with a description and RDF links, a
cold user with a few liked items) therefore gets an embedding by

1. giving it a layer-0 vector built from what the model already learnt (the text projection of
   its description, plus a zero or mean ID embedding: it has no ID of its own);
2. appending it, with its edges in both directions, to the training graph;
3. running the trained encoder over the extended graph (``model.propagate``, part of the model
   contract for inductive models: :mod:`kgrec.models.base`).

This is the inductive use of a message-passing model (as in GraphSAGE or PinSage). Old nodes'
embeddings move slightly too (the new edges change degrees and neighbourhoods), which is
correct: an entity that gained a film now also speaks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.graph.container import REVERSE_PREFIX
from kgrec.models.graph_tensors import GraphTensors


def reverse_relation(name: str) -> str:
    """``"genre"`` <-> ``"rev_genre"``: the name of the other direction of an edge."""
    return name[len(REVERSE_PREFIX) :] if name.startswith(REVERSE_PREFIX) else REVERSE_PREFIX + name


@dataclass
class NewEdges:
    """Edges between new nodes and the graph, one direction given (the reverse is added).

    Attributes:
        source, target: global node indices (new nodes are numbered from ``g.num_nodes``).
        relation: relation name of each ``source -> target`` edge, one of ``g.relation_names``.
    """

    source: list[int]
    target: list[int]
    relation: list[str]

    def __len__(self) -> int:
        return len(self.source)


def extend_graph(
    g: GraphTensors,
    node_type: Tensor,
    edges: NewEdges,
    features: Tensor | None = None,
    has_text: Tensor | None = None,
) -> GraphTensors:
    """A copy of ``g`` with ``len(node_type)`` new nodes appended and ``edges`` added both ways.

    Users and items keep their global indices; the new nodes go after the entities, so the
    slice ``[num_users, num_users + num_items)`` still holds exactly the trained items (callers
    keep track of where the new ones are). ``kg_edge_*`` (the training targets) are unchanged.

    Raises:
        KgrecError: an edge names an unknown relation or a node outside the extended graph.
    """
    m = int(node_type.numel())
    n_total = g.num_nodes + m
    rel_id = {name: k for k, name in enumerate(g.relation_names)}
    device = g.edge_index.device
    src, dst, typ = [], [], []
    for s, t, r in zip(edges.source, edges.target, edges.relation):
        back = reverse_relation(r)
        if r not in rel_id or back not in rel_id:
            raise KgrecError(f"relation {r!r} is not in the trained graph (known: {', '.join(g.relation_names)})")
        if not (0 <= s < n_total and 0 <= t < n_total):
            raise KgrecError(f"edge {s} -> {t} names a node outside the graph ({n_total} nodes)")
        src += [s, t]
        dst += [t, s]
        typ += [rel_id[r], rel_id[back]]
    new_index = torch.tensor([src, dst], dtype=torch.long, device=device).reshape(2, -1)
    new_types = torch.tensor(typ, dtype=torch.long, device=device)

    feats, text = g.features, g.has_text
    if g.features is not None:
        extra = features if features is not None else g.features.new_zeros(m, g.features.size(1))
        feats = torch.cat([g.features, extra.to(g.features)])
        flags = has_text if has_text is not None else torch.zeros(m, dtype=torch.bool)
        text = torch.cat([g.has_text, flags.to(g.has_text.device)]) if g.has_text is not None else None
    return replace(
        g,
        num_nodes=n_total,
        edge_index=torch.cat([g.edge_index, new_index], dim=1),
        edge_type=torch.cat([g.edge_type, new_types]),
        node_type=torch.cat([g.node_type, node_type.to(g.node_type)]),
        features=feats,
        has_text=text,
    )
