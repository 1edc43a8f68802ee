"""Validated tables -> :class:`~kgrec.graph.container.KnowledgeGraph`.

The builder decides node identity and edge types; it reads nothing from disk. Users and items
are the ones that occur in the interaction log (in order of first appearance, so a rebuild
from the same files gives the same indices). Every other node key of a knowledge triple
becomes an entity, typed by ``SourceTables.node_types`` (default ``"entity"``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from kgrec.version import __version__
from kgrec.graph.container import ITEM, REVERSE_PREFIX, USER, KnowledgeGraph
from kgrec.ingest.sources import SourceTables

#: Bumped whenever the on-disk layout changes; older graphs are refused with a clear message.
GRAPH_FORMAT_VERSION = 1
DEFAULT_ENTITY_TYPE = "entity"
_NAME_RE = re.compile(r"[^A-Za-z0-9_]+")


def relation_name(iri: str) -> str:
    """A short, file-name-safe name for a predicate IRI (its local name)."""
    local = re.split(r"[#/:]", iri.rstrip("/#"))[-1] or iri
    name = _NAME_RE.sub("_", local).strip("_") or "related"
    if name[0].isdigit():
        name = "r_" + name
    return name


def type_name(name: str) -> str:
    cleaned = _NAME_RE.sub("_", name).strip("_") or DEFAULT_ENTITY_TYPE
    if cleaned in (USER, ITEM):  # an RDF class called "item" must not merge with our items
        cleaned = "rdf_" + cleaned
    return cleaned


def _unique_relation_names(predicates: list[str], reserved: set[str]) -> dict[str, str]:
    """Predicate IRI -> relation name, suffixing clashes (``genre``, ``genre_2``...)."""
    names: dict[str, str] = {}
    used = set(reserved)
    for iri in sorted(predicates):
        base = relation_name(iri)
        name, k = base, 2
        while name in used or name.startswith(REVERSE_PREFIX):
            name = f"{base}_{k}"
            k += 1
        used.add(name)
        names[iri] = name
    return names


def _node_statements(tables: SourceTables, nodes: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The original statements whose subject is a node of the graph (an item, user or entity)."""
    st = tables.statements
    if st is None or not len(st):
        return None
    iris = set()
    for t, frame in nodes.items():
        iris.update(x for x in (frame["iri"] if "iri" in frame.columns else frame["id"]).tolist() if isinstance(x, str))
    kept = st[st["subject"].isin(iris)].reset_index(drop=True)
    return kept if len(kept) else None


def behaviour_rows(interactions: pd.DataFrame, behaviour: str) -> pd.DataFrame:
    """The interactions of one behaviour, one row per (user, item): a pair seen in several
    scenes is one edge of the graph (each scene keeps its row in the interaction table)."""
    rows = interactions[interactions["event"] == behaviour]
    return rows.drop_duplicates(["user", "item"]) if "scene" in rows else rows


def add_behaviour_edges(data: HeteroData, interactions: pd.DataFrame, behaviours: list[str]) -> None:
    """One edge type per behaviour, ``(user, b, item)`` and its reverse, from the interaction table."""
    for b in behaviours:
        rows = behaviour_rows(interactions, b)
        ei = torch.as_tensor(np.stack([rows["user"].to_numpy(), rows["item"].to_numpy()]), dtype=torch.long)
        data[USER, b, ITEM].edge_index = ei
        data[ITEM, REVERSE_PREFIX + b, USER].edge_index = ei.flip(0)


def build_graph(tables: SourceTables, name: str = "graph") -> KnowledgeGraph:
    """Build the heterogeneous graph from ingested tables.

    Args:
        tables: the output of :func:`kgrec.ingest.ingest` (or an importer).
        name: the graph's name, recorded in the manifest.
    """
    inter = tables.interactions
    # factorize numbers ids in order of first appearance, several times faster than a dict map
    user_codes, user_uniques = pd.factorize(inter["user"])
    item_codes, item_uniques = pd.factorize(inter["item"])
    user_ids, item_ids = list(user_uniques), list(item_uniques)

    # Every node key of a triple, numbered in order of first appearance; then, per key, its node
    # type and index: the item (or user) it was matched to, else an entity. Column-wise, so that
    # millions of triples cost seconds (a dict look-up per triple took minutes).
    triples = tables.triples.drop_duplicates()
    key_codes, keys = pd.factorize(pd.concat([triples["head"], triples["tail"]], ignore_index=True))
    keys = pd.Index(keys, dtype=object)
    type_names: list[str] = [USER, ITEM]
    key_type = np.full(len(keys), -1, dtype=np.int64)
    key_index = np.zeros(len(keys), dtype=np.int64)
    # items first, then users; the first node to claim a key keeps it
    user_idx = {u: i for i, u in enumerate(user_ids)} if tables.user_nodes else {}
    claims = [(1, i, key) for i, it in enumerate(item_ids) if (key := tables.item_nodes.get(it)) is not None]
    claims += [(0, user_idx[u], key) for u, key in tables.user_nodes.items() if u in user_idx and key is not None]
    if claims:
        claim_type, claim_index, claim_key = (np.asarray(c) for c in zip(*claims))
        at = keys.get_indexer(pd.Index(claim_key, dtype=object))
        found = np.flatnonzero(at >= 0)
        _, first = np.unique(at[found], return_index=True)
        chosen = found[first]
        key_type[at[chosen]] = claim_type[chosen].astype(np.int64)
        key_index[at[chosen]] = claim_index[chosen].astype(np.int64)
    is_entity = key_type < 0
    entity_keys: dict[str, list[str]] = {}
    if is_entity.any():
        raw = pd.Series(keys[is_entity]).map(tables.node_types).fillna(DEFAULT_ENTITY_TYPE)
        names = raw.map({r: type_name(r) for r in pd.unique(raw)})
        type_codes, entity_types = pd.factorize(names)
        type_names += list(entity_types)
        key_type[is_entity] = 2 + type_codes
        key_index[is_entity] = pd.Series(type_codes).groupby(type_codes).cumcount().to_numpy()
        entity_list = keys[is_entity].tolist()
        for code, t in enumerate(entity_types):
            entity_keys[t] = [entity_list[k] for k in np.flatnonzero(type_codes == code)]

    # Node tables: original id, label, text.
    texts = tables.texts.drop_duplicates("node").set_index("node")

    def node_table(ids: list[str], keys: list[str | None], with_iri: bool = False) -> pd.DataFrame:
        found = texts.reindex(pd.Index(keys, dtype=object))

        def clean(col: str) -> list[str | None]:
            return [v if isinstance(v, str) and v.strip() else None for v in found[col].tolist()]

        table = pd.DataFrame(
            {
                "id": pd.Series(ids, dtype="string"),
                # object dtype: pandas would otherwise turn the Nones into NaN
                "label": pd.Series(clean("label"), dtype=object),
                "text": pd.Series(clean("description"), dtype=object),
            }
        )
        if with_iri:  # the RDF resource a user or item was matched to, for exports
            table["iri"] = pd.Series(keys, dtype=object)
        return table

    nodes = {
        USER: node_table(user_ids, [tables.user_nodes.get(u) for u in user_ids], with_iri=True),
        ITEM: node_table(item_ids, [tables.item_nodes.get(i) for i in item_ids], with_iri=True),
    }
    for t, keys in sorted(entity_keys.items()):
        nodes[t] = node_table(keys, keys)

    # Interactions with integer indices.
    interactions = pd.DataFrame(
        {
            "user": user_codes.astype(np.int64),
            "item": item_codes.astype(np.int64),
            "event": inter["event"].astype(str).to_numpy(),
            "rating": inter["rating"].astype(float).to_numpy(),
            "timestamp": inter["timestamp"].astype(float).to_numpy(),
        }
    )
    if "scene" in inter:  # where each interaction happened (kgrec.train.scenes)
        interactions["scene"] = inter["scene"].astype(str).to_numpy()
    behaviours = sorted(interactions["event"].unique().tolist())
    reserved = set(behaviours) | {USER, ITEM}

    predicates = sorted(pd.unique(triples["relation"]).tolist()) if len(triples) else []
    rel_names = _unique_relation_names(predicates, reserved)

    data = HeteroData()
    for t, df in nodes.items():
        data[t].num_nodes = len(df)
    add_behaviour_edges(data, interactions, behaviours)

    if len(triples):
        n = len(triples)
        head_type, head_index = key_type[key_codes[:n]], key_index[key_codes[:n]]
        tail_type, tail_index = key_type[key_codes[n:]], key_index[key_codes[n:]]
        rel_codes, rel_iris = pd.factorize(triples["relation"])
        rel_of_code = [rel_names[iri] for iri in rel_iris]
        group = (head_type * len(rel_iris) + rel_codes) * len(type_names) + tail_type
        order = np.argsort(group, kind="stable")  # triple order within each edge type
        starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
        bounds = np.r_[starts, n]
        groups = {}
        for a, b in zip(bounds[:-1], bounds[1:]):
            first = order[a]
            edge_type = (type_names[head_type[first]], rel_of_code[rel_codes[first]], type_names[tail_type[first]])
            groups[edge_type] = order[a:b]
        for (ht, rel, tt), rows in sorted(groups.items()):
            ei = torch.as_tensor(np.stack([head_index[rows], tail_index[rows]]))
            data[ht, rel, tt].edge_index = ei
            data[tt, REVERSE_PREFIX + rel, ht].edge_index = ei.flip(0)

    relations = {name: iri for iri, name in rel_names.items()}
    kg = KnowledgeGraph(data, nodes, interactions, relations, behaviours, statements=_node_statements(tables, nodes))
    kg.manifest = {
        "format": "kgrec-graph",
        "format_version": GRAPH_FORMAT_VERSION,
        "kgrec_version": __version__,
        "name": name,
        "node_counts": {t: len(df) for t, df in nodes.items()},
        "behaviours": behaviours,
        **({"scenes": sorted(interactions["scene"].unique().tolist())} if "scene" in interactions else {}),
        "relations": relations,
        "inputs": tables.inputs,
        "report": tables.report.to_dict(),
    }
    if tables.rdf_settings is not None:
        kg.manifest["rdf"] = tables.rdf_settings
    if tables.interaction_settings is not None:
        kg.manifest["interaction_settings"] = tables.interaction_settings
    return kg
