"""Validated tables -> :class:`~kgrec.graph.container.KnowledgeGraph`.

The builder decides node identity and edge types; it reads nothing from disk. Users and items
are the ones that occur in the interaction log (in order of first appearance, so a rebuild
from the same files gives the same indices). Every other node key of a knowledge triple
becomes an entity, typed by ``SourceTables.node_types`` (default ``"entity"``).
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from kgrec import __version__
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
    user_idx = {u: i for i, u in enumerate(user_ids)}
    item_idx = {it: i for i, it in enumerate(item_ids)}

    # Node keys (IRIs) of users and items, so that triples about them land on them.
    key_to_node: dict[str, tuple[str, int]] = {}
    for it, i in item_idx.items():
        key = tables.item_nodes.get(it)
        if key is not None:
            key_to_node.setdefault(key, (ITEM, i))
    for u, key in tables.user_nodes.items():
        if u in user_idx and key is not None:
            key_to_node.setdefault(key, (USER, user_idx[u]))

    triples = tables.triples.drop_duplicates()
    entity_keys: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for key in pd.unique(pd.concat([triples["head"], triples["tail"]], ignore_index=True)):
        if key not in key_to_node and key not in seen:
            seen.add(key)
            entity_keys[type_name(tables.node_types.get(key, DEFAULT_ENTITY_TYPE))].append(key)
    for t, keys in entity_keys.items():
        for i, key in enumerate(keys):
            key_to_node[key] = (t, i)

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
    behaviours = sorted(interactions["event"].unique().tolist())
    reserved = set(behaviours) | {USER, ITEM}

    predicates = sorted(pd.unique(triples["relation"]).tolist()) if len(triples) else []
    rel_names = _unique_relation_names(predicates, reserved)

    data = HeteroData()
    for t, df in nodes.items():
        data[t].num_nodes = len(df)
    for b in behaviours:
        rows = interactions[interactions["event"] == b]
        ei = torch.as_tensor(np.stack([rows["user"].to_numpy(), rows["item"].to_numpy()]), dtype=torch.long)
        data[USER, b, ITEM].edge_index = ei
        data[ITEM, REVERSE_PREFIX + b, USER].edge_index = ei.flip(0)

    if len(triples):
        heads = [key_to_node[h] for h in triples["head"]]
        tails = [key_to_node[t] for t in triples["tail"]]
        groups: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
        for (ht, hi), rel, (tt, ti) in zip(heads, triples["relation"], tails):
            groups[(ht, rel_names[rel], tt)].append((hi, ti))
        for (ht, rel, tt), pairs in sorted(groups.items()):
            ei = torch.as_tensor(np.array(pairs, dtype=np.int64).T.reshape(2, -1))
            data[ht, rel, tt].edge_index = ei
            data[tt, REVERSE_PREFIX + rel, ht].edge_index = ei.flip(0)

    relations = {name: iri for iri, name in rel_names.items()}
    kg = KnowledgeGraph(data, nodes, interactions, relations, behaviours)
    kg.manifest = {
        "format": "kgrec-graph",
        "format_version": GRAPH_FORMAT_VERSION,
        "kgrec_version": __version__,
        "name": name,
        "node_counts": {t: len(df) for t, df in nodes.items()},
        "behaviours": behaviours,
        "relations": relations,
        "inputs": tables.inputs,
        "report": tables.report.to_dict(),
    }
    return kg
