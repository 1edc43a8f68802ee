"""The training graph: the built graph minus every held-out user-item pair.

Held-out (validation and test) pairs are removed from *all* behaviours: if a user clicked and
then bought an item and the pair is held out, neither edge may carry the answer into message
passing. Knowledge edges are kept (they describe items, not users).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from kgrec.graph.container import ITEM, REVERSE_PREFIX, USER, KnowledgeGraph
from kgrec.models.graph_tensors import GraphTensors


def graph_events(kg: KnowledgeGraph, target_events: list[str] | None, auxiliary_events: list[str] | None) -> list[str] | None:
    """The behaviours whose edges enter message passing: the targets and the auxiliary ones.

    None (every behaviour) unless targets are named and ``auxiliary_events`` narrows the rest.
    """
    if target_events is None or auxiliary_events is None:
        return None
    return [b for b in kg.behaviours if b in target_events or b in auxiliary_events]


def target_pairs(kg: KnowledgeGraph, target_events: list[str] | None = None) -> pd.DataFrame:
    """Unique (user, item) positives of the target behaviours, with their first timestamp."""
    inter = kg.interactions
    if target_events is not None:
        inter = inter[inter["event"].isin(target_events)]
    pairs = (
        inter.groupby(["user", "item"], sort=True, as_index=False)["timestamp"].min()
        if len(inter)
        else pd.DataFrame({"user": [], "item": [], "timestamp": []})
    )
    return pairs.astype({"user": np.int64, "item": np.int64, "timestamp": float})


def training_tensors(
    kg: KnowledgeGraph,
    held_out: pd.DataFrame | None,
    *,
    use_kg: bool = True,
    kg_min_degree: int = 1,
    features: torch.Tensor | None = None,
    has_text: torch.Tensor | None = None,
    events: list[str] | None = None,
) -> GraphTensors:
    """Flatten ``kg`` into :class:`GraphTensors`, dropping held-out pairs' interactions.

    Args:
        held_out: (user, item) pairs of validation and test; None keeps everything.
        use_kg: include knowledge edges (False: the user-item graph alone).
        kg_min_degree: drop knowledge edges that touch an entity with fewer knowledge edges
            than this (users and items are never dropped).
        events: the behaviours whose edges enter (None: all). Every behaviour keeps its
            relation name, with no edges when left out, so models see the same relations.
    """
    offsets = kg.node_offsets()
    inter = kg.interactions
    if held_out is not None and len(held_out):
        keys = inter["user"].to_numpy() * kg.num_items + inter["item"].to_numpy()
        gone = held_out["user"].to_numpy() * kg.num_items + held_out["item"].to_numpy()
        inter = inter[~np.isin(keys, gone)]
    inter = inter.drop_duplicates(["user", "item", "event"])
    if events is not None:
        inter = inter[inter["event"].isin(events)]

    names: list[str] = []
    sources, targets, types = [], [], []

    def add(src_off: int, dst_off: int, src, dst, name: str) -> None:
        names.append(name)
        sources.append(torch.as_tensor(np.array(src), dtype=torch.long) + src_off)
        targets.append(torch.as_tensor(np.array(dst), dtype=torch.long) + dst_off)
        types.append(torch.full((len(src),), len(names) - 1, dtype=torch.long))

    for b in kg.behaviours:
        rows = inter[inter["event"] == b]
        u, i = rows["user"].to_numpy(), rows["item"].to_numpy()
        add(offsets[USER], offsets[ITEM], u, i, b)
        add(offsets[ITEM], offsets[USER], i, u, REVERSE_PREFIX + b)

    kg_heads, kg_tails, kg_types = [], [], []
    if use_kg:
        forward = [(et, kg.data[et].edge_index) for et in kg.knowledge_edge_types()]
        keep_node = _entities_with_degree(kg, offsets, forward, kg_min_degree)
        for et, ei in forward:
            src_t, rel, dst_t = et
            keep = keep_node[ei[0] + offsets[src_t]] & keep_node[ei[1] + offsets[dst_t]]
            if not bool(keep.any()):
                continue
            ei = ei[:, keep]
            label = f"{src_t}:{rel}:{dst_t}"
            add(offsets[src_t], offsets[dst_t], ei[0], ei[1], label)
            kg_heads.append(sources[-1])
            kg_tails.append(targets[-1])
            kg_types.append(types[-1])
            add(offsets[dst_t], offsets[src_t], ei[1], ei[0], REVERSE_PREFIX + label)

    empty = torch.empty(0, dtype=torch.long)
    edge_index = torch.stack([torch.cat(sources) if sources else empty, torch.cat(targets) if targets else empty])
    node_type = torch.cat(
        [torch.full((len(kg.nodes[t]),), k, dtype=torch.long) for k, t in enumerate(kg.node_types)]
    )
    return GraphTensors(
        num_users=kg.num_users,
        num_items=kg.num_items,
        num_nodes=kg.num_nodes,
        edge_index=edge_index,
        edge_type=torch.cat(types) if types else empty,
        relation_names=names,
        node_type=node_type,
        features=features,
        has_text=has_text,
        kg_edge_index=torch.stack([torch.cat(kg_heads), torch.cat(kg_tails)]) if kg_heads else torch.empty(2, 0, dtype=torch.long),
        kg_edge_type=torch.cat(kg_types) if kg_types else empty,
    )


def _entities_with_degree(kg: KnowledgeGraph, offsets: dict[str, int], forward, min_degree: int) -> torch.Tensor:
    """Boolean mask over all nodes: users, items, and entities with >= ``min_degree`` KG edges."""
    degree = torch.zeros(kg.num_nodes, dtype=torch.long)
    for (src_t, _, dst_t), ei in forward:
        degree.index_add_(0, ei[0] + offsets[src_t], torch.ones(ei.size(1), dtype=torch.long))
        degree.index_add_(0, ei[1] + offsets[dst_t], torch.ones(ei.size(1), dtype=torch.long))
    keep = degree >= min_degree
    keep[: kg.num_users + kg.num_items] = True
    return keep
