"""What an export writes: the graph (or a filtered part of it) as a node table and an edge table.

Every writer in :mod:`kgrec.export` reads one :class:`ExportTables`, so the filters, the node
identities and a run's outputs (embeddings, top-K lists) are decided once, here, and every
format carries the same nodes and edges.

* **Nodes** are numbered ``0..N-1`` in export order (users, items, then entity types, each by
  node index); edges refer to these positions, so writers map them to their own identifiers
  with one array lookup instead of a loop.
* **Edges** are the forward edges only: one behaviour edge per interaction row
  (``user -[event]-> item``, with rating and timestamp), one knowledge edge per stored RDF
  statement, and, with a run, one ``recommended`` edge per top-K entry (rank and score).
  Reverse edges are a training device and are left out.

Filters (:class:`SubgraphFilter`) apply in this order: node types, then the k-hop neighbourhood
of one user (undirected, through the kept types only), then a maximum number of nodes (nearest
first, then best connected). Recommended items of the kept users are added afterwards, so a
user's top-K list is always complete in the export (they are the one exception to the node cap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
import pandas as pd

from kgrec.errors import KgrecError
from kgrec.graph.container import ITEM, USER, KnowledgeGraph

if TYPE_CHECKING:  # a run is passed in; export never loads one
    from kgrec.runs import Run

#: Namespace of the kgrec vocabulary (see docs/vocabulary.md); not meant to be dereferenced.
KGREC_BASE = "https://kgrec.org/ns/"

BEHAVIOUR, KNOWLEDGE, RECOMMENDATION = "behaviour", "knowledge", "recommendation"
#: Relation name of the edges that carry a run's top-K lists.
RECOMMENDED = "recommended"

#: Columns of :attr:`ExportTables.nodes`.
NODE_COLUMNS = ["key", "type", "index", "id", "iri", "label", "description"]
#: Columns of :attr:`ExportTables.edges`.
EDGE_COLUMNS = ["source", "target", "relation", "kind", "predicate", "rating", "timestamp", "rank", "score"]

# Characters that may not appear in an IRI (RFC 3987 / the N-Triples IRIREF rule).
_IRI_FORBIDDEN = {c: f"%{ord(c):02X}" for c in '<>"{}|\\^` '} | {chr(i): f"%{i:02X}" for i in range(0x21)}
_IRI_TABLE = str.maketrans(_IRI_FORBIDDEN)


@dataclass
class SubgraphFilter:
    """Which part of the graph to export; the default exports everything.

    Attributes:
        node_types: keep only these node types (edges need both ends kept).
        user: original id of a user whose ``hops``-hop neighbourhood is exported.
        hops: radius of that neighbourhood, counted over edges in either direction.
        max_nodes: keep at most this many nodes: nearest to ``user`` first, then by degree.
    """

    node_types: list[str] | None = None
    user: str | None = None
    hops: int = 2
    max_nodes: int | None = None


@dataclass
class ExportTables:
    """The nodes and edges an export writes.

    Attributes:
        name: the graph's name.
        nodes: one row per exported node, columns :data:`NODE_COLUMNS`: ``key``
            (``"type:id"``, unique across types), ``type``, ``index`` (node index in the graph),
            ``id`` (original id or entity IRI), ``iri`` (the node's RDF identity), ``label``
            and ``description`` (None when absent).
        edges: one row per edge, columns :data:`EDGE_COLUMNS`: ``source`` and ``target``
            (positions in ``nodes``), ``relation`` (event or relation name), ``kind``
            (behaviour, knowledge or recommendation), ``predicate`` (the RDF predicate IRI of
            knowledge edges), ``rating`` and ``timestamp`` (behaviours), ``rank`` and ``score``
            (recommendations); NaN where a column does not apply.
        relations: relation name -> predicate IRI.
        behaviours: event names.
        embeddings: ``[len(nodes), dim]`` float32 learned embeddings (users and items; NaN rows
            for nodes without one), or None without a run.
        run_name: the run's folder name, or None.
        statements: the RDF's own classes and literals about the exported nodes.
    """

    name: str
    nodes: pd.DataFrame
    edges: pd.DataFrame
    relations: dict[str, str] = field(default_factory=dict)
    behaviours: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = None
    run_name: str | None = None
    statements: pd.DataFrame | None = None
    """The RDF's own classes and literals about the exported nodes, as written (RDF exports)."""

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def has_embedding(self) -> np.ndarray:
        """Boolean mask over nodes: which rows of :attr:`embeddings` are real."""
        if self.embeddings is None:
            return np.zeros(len(self.nodes), dtype=bool)
        return ~np.isnan(self.embeddings).any(axis=1)


def safe_iri(iri: str) -> str:
    """``iri`` with the characters that IRIs forbid (spaces, ``<>"{}|\\^```, controls) percent-encoded."""
    return iri.translate(_IRI_TABLE)


def looks_like_iri(value: str) -> bool:
    """True for absolute IRIs (``scheme:rest``), false for bare keys such as KGAT entity numbers."""
    scheme, sep, rest = value.partition(":")
    return bool(sep and rest and scheme[:1].isalpha() and all(c.isalnum() or c in "+-." for c in scheme))


def node_iris(node_type: str, ids: pd.Series, stored: pd.Series | None = None) -> np.ndarray:
    """The RDF identity of each node of one type.

    A stored IRI wins (an ``iri`` column in the node table); entities whose id is an IRI keep
    it; everything else gets an IRI in the kgrec namespace: ``{KGREC_BASE}user/{id}``,
    ``{KGREC_BASE}item/{id}``, ``{KGREC_BASE}entity/{type}/{id}`` (ids percent-encoded).
    """
    values = ids.astype(str).tolist()
    stored_values = stored.tolist() if stored is not None else [None] * len(values)
    if node_type in (USER, ITEM):
        prefix = f"{KGREC_BASE}{node_type}/"
    else:
        prefix = f"{KGREC_BASE}entity/{quote(node_type, safe='')}/"
    out = []
    for value, known in zip(values, stored_values):
        if isinstance(known, str) and known:
            out.append(safe_iri(known))
        elif node_type not in (USER, ITEM) and looks_like_iri(value):
            out.append(safe_iri(value))
        else:
            out.append(prefix + quote(value, safe=""))
    return np.asarray(out, dtype=object)


def _global_edges(kg: KnowledgeGraph) -> tuple[np.ndarray, np.ndarray]:
    """Forward edges (behaviours and knowledge) as global (homogeneous) source and target indices."""
    offsets = kg.node_offsets()
    src = [kg.interactions["user"].to_numpy(np.int64) + offsets[USER]]
    dst = [kg.interactions["item"].to_numpy(np.int64) + offsets[ITEM]]
    for et in kg.knowledge_edge_types():
        ei = kg.data[et].edge_index.numpy()
        src.append(ei[0] + offsets[et[0]])
        dst.append(ei[1] + offsets[et[2]])
    return np.concatenate(src), np.concatenate(dst)


def select_nodes(kg: KnowledgeGraph, flt: SubgraphFilter) -> np.ndarray:
    """Global indices (sorted) of the nodes that ``flt`` keeps."""
    offsets = kg.node_offsets()
    n = kg.num_nodes
    type_of = np.empty(n, dtype=object)
    for t in kg.node_types:
        type_of[offsets[t] : offsets[t] + len(kg.nodes[t])] = t
    allowed = np.ones(n, dtype=bool)
    if flt.node_types:
        unknown = [t for t in flt.node_types if t not in kg.nodes]
        if unknown:
            raise KgrecError(f"unknown node type(s) {', '.join(unknown)}; the graph has {', '.join(kg.node_types)}")
        allowed = np.isin(type_of, list(flt.node_types))

    src, dst = _global_edges(kg)
    inside = allowed[src] & allowed[dst]
    src, dst = src[inside], dst[inside]
    degree = np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)

    distance = np.zeros(n, dtype=np.int64)
    keep = allowed.copy()
    if flt.user is not None:
        if flt.hops < 0:
            raise KgrecError(f"hops must be 0 or more, got {flt.hops}")
        if flt.user not in kg.user_index:
            raise KgrecError(f"unknown user id {flt.user!r}")
        if not allowed[offsets[USER]]:
            raise KgrecError("a user neighbourhood needs the user node type among the exported node types")
        start = offsets[USER] + kg.user_index[flt.user]
        distance = np.full(n, -1, dtype=np.int64)
        distance[start] = 0
        frontier = np.zeros(n, dtype=bool)
        frontier[start] = True
        for hop in range(1, flt.hops + 1):
            reached = np.zeros(n, dtype=bool)
            reached[dst[frontier[src]]] = True
            reached[src[frontier[dst]]] = True
            reached &= distance < 0
            if not reached.any():
                break
            distance[reached] = hop
            frontier = reached
        keep = distance >= 0

    chosen = np.flatnonzero(keep)
    if flt.max_nodes is not None:
        if flt.max_nodes < 1:
            raise KgrecError(f"max-nodes must be at least 1, got {flt.max_nodes}")
        if len(chosen) > flt.max_nodes:
            # lexsort: last key is primary -> nearest first, then highest degree, then index
            order = np.lexsort((chosen, -degree[chosen], distance[chosen]))
            chosen = np.sort(chosen[order[: flt.max_nodes]])
    return chosen


def _node_table(kg: KnowledgeGraph, chosen: np.ndarray) -> pd.DataFrame:
    offsets = kg.node_offsets()
    parts = []
    for t in kg.node_types:
        local = chosen[(chosen >= offsets[t]) & (chosen < offsets[t] + len(kg.nodes[t]))] - offsets[t]
        if not len(local):
            continue
        df = kg.nodes[t].iloc[local]
        ids = df["id"].astype(str)
        stored = df["iri"] if "iri" in df.columns else None
        parts.append(
            pd.DataFrame(
                {
                    "key": (t + ":" + ids).to_numpy(dtype=object),
                    "type": t,
                    "index": local.astype(np.int64),
                    "id": ids.to_numpy(dtype=object),
                    "iri": node_iris(t, ids, stored),
                    "label": df["label"].to_numpy(dtype=object),
                    "description": df["text"].to_numpy(dtype=object),
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in NODE_COLUMNS})
    nodes = pd.concat(parts, ignore_index=True)
    for col in ("label", "description"):
        nodes[col] = nodes[col].astype(object).where(nodes[col].notna(), None)
    return nodes


def _edge_table(kg: KnowledgeGraph, chosen: np.ndarray) -> pd.DataFrame:
    offsets = kg.node_offsets()
    position = np.full(kg.num_nodes, -1, dtype=np.int64)
    position[chosen] = np.arange(len(chosen))
    parts = []

    inter = kg.interactions
    s = position[inter["user"].to_numpy(np.int64) + offsets[USER]]
    d = position[inter["item"].to_numpy(np.int64) + offsets[ITEM]]
    ok = (s >= 0) & (d >= 0)
    parts.append(
        pd.DataFrame(
            {
                "source": s[ok],
                "target": d[ok],
                "relation": inter["event"].to_numpy(dtype=object)[ok],
                "kind": BEHAVIOUR,
                "predicate": None,
                "rating": inter["rating"].to_numpy(np.float64)[ok],
                "timestamp": inter["timestamp"].to_numpy(np.float64)[ok],
            }
        )
    )
    for et in kg.knowledge_edge_types():
        ei = kg.data[et].edge_index.numpy()
        s, d = position[ei[0] + offsets[et[0]]], position[ei[1] + offsets[et[2]]]
        ok = (s >= 0) & (d >= 0)
        if ok.any():
            parts.append(
                pd.DataFrame(
                    {"source": s[ok], "target": d[ok], "relation": et[1], "kind": KNOWLEDGE, "predicate": safe_iri(kg.relations[et[1]])}
                )
            )
    edges = pd.concat(parts, ignore_index=True)
    return edges.reindex(columns=EDGE_COLUMNS)


def _check_run_matches(kg: KnowledgeGraph, run: "Run") -> None:
    theirs = {t: len(df) for t, df in run.kg.nodes.items()}
    ours = {t: len(df) for t, df in kg.nodes.items()}
    if theirs != ours or run.kg.manifest.get("name") != kg.manifest.get("name"):
        raise KgrecError(
            f"the run was trained on graph {run.kg.manifest.get('name')!r} ({theirs}), "
            f"not on this one ({kg.manifest.get('name')!r}, {ours})",
            path=run.run_dir,
        )


def export_tables(kg: KnowledgeGraph, flt: SubgraphFilter | None = None, run: "Run | None" = None, k: int = 10) -> ExportTables:
    """Select nodes, build the node and edge tables and, with a run, add its outputs.

    Args:
        kg: the graph.
        flt: which part to export (everything by default).
        run: a :class:`kgrec.runs.Run` trained on ``kg``: the items added to it after training
            join the items (with their links as knowledge edges), its user and item embeddings
            become node attributes and each kept user's top-``k`` list becomes ``recommended``
            edges with ``rank`` and ``score``, ranked as ``kgrec recommend`` ranks.
        k: length of the top-K lists.
    """
    flt = flt or SubgraphFilter()
    if run is not None:
        _check_run_matches(kg, run)
        kg = run.catalogue_graph()
    chosen = select_nodes(kg, flt)
    recs = None
    if run is not None:
        offsets = kg.node_offsets()
        users = chosen[(chosen >= offsets[USER]) & (chosen < offsets[USER] + kg.num_users)] - offsets[USER]
        items_allowed = not flt.node_types or ITEM in flt.node_types
        if len(users) and items_allowed:
            user_ids = kg.nodes[USER]["id"].to_numpy(dtype=object)[users].tolist()
            recs = run.recommend(user_ids, k=k)
            recs["user_index"] = recs["user"].map(kg.user_index).to_numpy(np.int64)
            recs["item_index"] = recs["item"].map(kg.item_index).to_numpy(np.int64)
            chosen = np.union1d(chosen, recs["item_index"].to_numpy() + offsets[ITEM])

    nodes = _node_table(kg, chosen)
    edges = _edge_table(kg, chosen)
    embeddings = None
    if run is not None:
        user_emb, item_emb = (e.detach().float().cpu().numpy() for e in (run.user_embeddings(), run.item_embeddings()))
        embeddings = np.full((len(nodes), user_emb.shape[1]), np.nan, dtype=np.float32)
        for t, table in ((USER, user_emb), (ITEM, item_emb)):
            rows = np.flatnonzero(nodes["type"].to_numpy() == t)
            embeddings[rows] = table[nodes["index"].to_numpy()[rows]]
        if recs is not None and len(recs):
            offsets = kg.node_offsets()
            position = np.full(kg.num_nodes, -1, dtype=np.int64)
            position[chosen] = np.arange(len(chosen))
            rec_edges = pd.DataFrame(
                {
                    "source": position[recs["user_index"].to_numpy() + offsets[USER]],
                    "target": position[recs["item_index"].to_numpy() + offsets[ITEM]],
                    "relation": RECOMMENDED,
                    "kind": RECOMMENDATION,
                    "rank": recs["rank"].to_numpy(np.int64),
                    "score": recs["score"].to_numpy(np.float64),
                }
            )
            edges = pd.concat([edges, rec_edges.reindex(columns=EDGE_COLUMNS)], ignore_index=True)
    return ExportTables(
        name=str(kg.manifest.get("name") or "graph"),
        nodes=nodes,
        edges=edges,
        relations=dict(kg.relations),
        behaviours=list(kg.behaviours),
        embeddings=embeddings,
        run_name=None if run is None else run.run_dir.resolve().name,
        statements=None if kg.statements is None else kg.statements[kg.statements["subject"].isin(set(nodes["iri"]))],
    )
