"""The in-memory graph every stage after ingestion works on.

A :class:`KnowledgeGraph` is a PyG :class:`~torch_geometric.data.HeteroData` plus what a
researcher needs to get back to their own world: original user and item ids, IRIs, labels,
descriptions, and the raw interaction table (with ratings and timestamps, for temporal
splits).

Node types: ``"user"``, ``"item"`` and one type per entity kind (``"entity"`` unless the RDF
says otherwise through ``rdf:type``). Edge types:

* one per behaviour, ``("user", event, "item")``, with its reverse ``("item", "rev_" + event, "user")``;
* one per RDF predicate, ``(src_type, relation, dst_type)``, with its reverse
  ``(dst_type, "rev_" + relation, src_type)``.

Relation names are short, sanitised local names of the predicate IRI; :attr:`relations` maps
each back to its IRI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd
from torch_geometric.data import HeteroData

USER = "user"
ITEM = "item"
REVERSE_PREFIX = "rev_"


@dataclass
class KnowledgeGraph:
    """A built kgrec graph.

    Attributes:
        data: the heterogeneous graph (all behaviour and knowledge edges, both directions).
        nodes: node type -> DataFrame with one row per node index and columns ``id``
            (original user/item id, or the entity's IRI / key), ``label`` and ``text``
            (the description used for BERT features; None when the node has no text).
        interactions: one row per (user, item, event) edge: columns ``user``, ``item``
            (integer node indices), ``event``, ``rating``, ``timestamp``; and ``scene`` when
            the log had scenes (then one row per (user, item, event, scene)).
        relations: relation name -> predicate IRI for knowledge edge types.
        behaviours: the event names, in a stable order.
        manifest: what :mod:`kgrec.graph.store` writes as ``manifest.json``.
        statements: the RDF's own classes and literals about the graph's nodes, as written
            (columns of :data:`kgrec.ingest.knowledge.ORIGINAL_COLUMNS`; subjects are node
            IRIs), which exports give back beside kgrec's vocabulary; None when there are none.
    """

    data: HeteroData
    nodes: dict[str, pd.DataFrame]
    interactions: pd.DataFrame
    relations: dict[str, str] = field(default_factory=dict)
    behaviours: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    statements: pd.DataFrame | None = None

    @property
    def num_users(self) -> int:
        return len(self.nodes[USER])

    @property
    def num_items(self) -> int:
        return len(self.nodes[ITEM])

    @property
    def node_types(self) -> list[str]:
        """User, item, then the entity types in sorted order: the homogeneous layout order."""
        rest = sorted(t for t in self.nodes if t not in (USER, ITEM))
        return [USER, ITEM] + rest

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.nodes[USER]["id"].tolist())}

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.nodes[ITEM]["id"].tolist())}

    @property
    def scenes(self) -> list[str]:
        """The scenes of the interaction log, sorted ([] when the log had no scene column)."""
        if "scene" not in self.interactions:
            return []
        return sorted(self.interactions["scene"].astype(str).unique().tolist())

    def behaviour_edge_types(self) -> list[tuple[str, str, str]]:
        return [(USER, b, ITEM) for b in self.behaviours]

    def knowledge_edge_types(self) -> list[tuple[str, str, str]]:
        """Forward knowledge edge types (the reverses are left out)."""
        return [
            et
            for et in self.data.edge_types
            if et[1] in self.relations and not (et[0] == USER and et[2] == ITEM)
        ]

    def node_offsets(self) -> dict[str, int]:
        """Start of each node type in the homogeneous index space (users first, then items)."""
        offsets, start = {}, 0
        for t in self.node_types:
            offsets[t] = start
            start += len(self.nodes[t])
        return offsets

    @property
    def num_nodes(self) -> int:
        return sum(len(df) for df in self.nodes.values())

    def summary(self) -> str:
        lines = [f"Graph: {self.num_users:,} users, {self.num_items:,} items"]
        for t in self.node_types[2:]:
            lines.append(f"  {t}: {len(self.nodes[t]):,} nodes")
        for et in self.data.edge_types:
            if not et[1].startswith(REVERSE_PREFIX):
                lines.append(f"  {et[0]} -[{et[1]}]-> {et[2]}: {self.data[et].edge_index.size(1):,} edges")
        described = sum(int(df["text"].notna().sum()) for df in self.nodes.values())
        labelled = sum(int((df["text"].notna() | df["label"].notna()).sum()) for df in self.nodes.values())
        lines.append(f"  nodes with a description: {described:,}; with a label or description: {labelled:,} of {self.num_nodes:,}")
        return "\n".join(lines)
