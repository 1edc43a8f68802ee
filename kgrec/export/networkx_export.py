"""GraphML and GEXF through networkx: for Gephi, Cytoscape, yEd and networkx itself.

The graph is a directed multigraph (a user can click and buy the same item; an item can be
linked to the same entity by two predicates). Node keys are ``"type:id"`` (unique across
types: MovieLens user ``1`` and item ``1`` are different nodes). Attributes:

* nodes: ``type``, ``original_id`` (the user/item id or entity IRI; not ``id``, which GEXF
  reserves for the node key), ``iri``, ``label`` and ``description`` where known, and with a
  run ``embedding`` (the learned vector as space-separated numbers: neither format has vectors);
* edges: ``relation``, ``kind`` (behaviour, knowledge, recommendation), ``predicate`` (IRI,
  knowledge edges), ``rating`` and ``timestamp`` (behaviours that have them), ``rank`` and
  ``score`` (recommendations).

Absent values are left out rather than written as empty strings or NaN.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from kgrec.export.subgraph import ExportTables
from kgrec.io import atomic_path


def embedding_strings(tables: ExportTables) -> list[str | None]:
    """Each node's embedding as space-separated numbers (6 significant digits), or None."""
    if tables.embeddings is None:
        return [None] * tables.num_nodes
    mask = tables.has_embedding()
    out: list[str | None] = [None] * tables.num_nodes
    for row in np.flatnonzero(mask):
        out[row] = " ".join(f"{x:.6g}" for x in tables.embeddings[row])
    return out


def _records(df: pd.DataFrame, casts: dict[str, type]) -> list[dict]:
    """Row dicts without the null entries, values cast to plain Python types."""
    columns = {c: df[c].to_numpy(dtype=object) for c in casts}
    present = {c: df[c].notna().to_numpy() for c in casts}
    records = []
    for i in range(len(df)):
        records.append({c: casts[c](columns[c][i]) for c in casts if present[c][i]})
    return records


def to_networkx(tables: ExportTables) -> nx.MultiDiGraph:
    """The export tables as a networkx ``MultiDiGraph`` keyed by ``"type:id"``."""
    nodes = tables.nodes.rename(columns={"id": "original_id"})
    nodes = nodes.assign(embedding=embedding_strings(tables))
    node_attrs = _records(
        nodes, {"type": str, "original_id": str, "iri": str, "label": str, "description": str, "embedding": str}
    )
    keys = nodes["key"].to_numpy(dtype=object)
    g = nx.MultiDiGraph(name=tables.name, relations=json.dumps(tables.relations, sort_keys=True))
    g.add_nodes_from(zip(keys, node_attrs))

    edges = tables.edges
    edge_attrs = _records(
        edges,
        {"relation": str, "kind": str, "predicate": str, "rating": float, "timestamp": float, "rank": int, "score": float},
    )
    g.add_edges_from(zip(keys[edges["source"].to_numpy()], keys[edges["target"].to_numpy()], edge_attrs))
    return g


def write_graphml(tables: ExportTables, path: Path) -> Path:
    """Write GraphML (attribute types declared: string, double, int)."""
    g = to_networkx(tables)
    with atomic_path(Path(path), ".graphml") as tmp:
        nx.write_graphml(g, tmp, encoding="utf-8")
    return Path(path)


def write_gexf(tables: ExportTables, path: Path) -> Path:
    """Write GEXF 1.2 (Gephi's format); node labels become GEXF labels."""
    g = to_networkx(tables)
    # GEXF's graph-level attributes are fixed by the format; keep only what it can say.
    g.graph = {}
    with atomic_path(Path(path), ".gexf") as tmp:
        nx.write_gexf(g, tmp, encoding="utf-8")
    return Path(path)
