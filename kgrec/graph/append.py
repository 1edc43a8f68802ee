"""Grow a built graph: new interaction rows, users, items, entities and triples, no rebuild.

``kgrec build --append`` and ``kgrec update`` read new files exactly as the graph's own were
read (:func:`append_spec`: the graph's ``[interactions]`` and ``[rdf]`` settings, kept in its
manifest, through :func:`kgrec.ingest.ingest` with its checks and strict/lenient rules) and
then :func:`append_tables` lays the new rows over the graph:

* every node already there keeps its node type and its index within the type; new users,
  items and entities come after them (in order of first appearance, as a fresh build numbers
  them), so a trained model's rows can be carried over by identity (:func:`node_map`);
* interactions already in the graph (same user, item and event) are dropped and counted,
  as a fresh build drops duplicate rows;
* a **new item** must come with RDF (``--rdf``, matched by the graph's item rule) when the
  graph was built from RDF: it is what the content path embeds it from. Without it the item's
  rows stop the append (strict) or are dropped and counted (``--lenient``), like any other bad
  record. A graph built without RDF takes new items as they are;
* triples join the graph by node key (an item's or user's IRI, an entity's IRI or key);
  relations keep their names, a new predicate gets a new relation name; triples already in the
  graph are counted, not repeated. Nodes already in the graph keep their texts.

The manifest records every append (its inputs, its build report and what it added) after the
original build's report; ``report.txt`` prints them all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from kgrec.config import GraphSpec, InteractionSource, RdfSource
from kgrec.errors import KgrecError
from kgrec.graph.build import DEFAULT_ENTITY_TYPE, _unique_relation_names, add_behaviour_edges, type_name
from kgrec.graph.container import ITEM, REVERSE_PREFIX, USER, KnowledgeGraph
from kgrec.ingest.sources import BuildReport, SourceTables

#: The build report's section for what an append did to the graph.
APPEND = "append"
WITHOUT_RDF = "new item without RDF"


def append_spec(
    kg: KnowledgeGraph,
    interactions: str | Path,
    rdf: list[str | Path] | None = None,
    *,
    lenient: bool = False,
    item_iri: str | None = None,
    link: str | Path | None = None,
    base: GraphSpec | None = None,
) -> GraphSpec:
    """A spec that reads ``interactions`` (and ``rdf``) as the graph's own inputs were read.

    The graph's manifest keeps its ``[interactions]`` and ``[rdf]`` settings (graphs built
    before kgrec kept the first get the defaults; give ``base``, the graph's spec, for those).
    ``item_iri`` / ``link`` replace the item matching rule (new items need not be in the
    graph's link file). Paths are taken as given (absolute, or relative to the working folder).
    """
    if base is not None:
        spec = dataclasses.replace(base, interactions=dataclasses.replace(base.interactions), rdf=dataclasses.replace(base.rdf))
    else:
        spec = GraphSpec(name=str(kg.manifest.get("name", "graph")), base_dir=str(Path.cwd()))
        stored = kg.manifest.get("interaction_settings")
        if isinstance(stored, dict):
            known = {f.name for f in dataclasses.fields(InteractionSource)}
            spec.interactions = InteractionSource(**{k: v for k, v in stored.items() if k in known})
        stored = kg.manifest.get("rdf")
        if isinstance(stored, dict):
            known = {f.name for f in dataclasses.fields(RdfSource)}
            spec.rdf = RdfSource(**{k: v for k, v in stored.items() if k in known})
    spec.base_dir = str(Path.cwd())
    spec.interactions.path = str(Path(interactions).resolve())
    spec.rdf.paths = [str(Path(p).resolve()) for p in rdf or []]
    spec.rdf.format = None
    if item_iri is not None and link is not None:
        raise KgrecError("give either --item-iri or --link, not both")
    if item_iri is not None:
        spec.rdf.item_iri, spec.rdf.link = item_iri, None
    if link is not None:
        spec.rdf.link, spec.rdf.item_iri = str(Path(link).resolve()), None
    spec.lenient = lenient
    return spec


def has_rdf(kg: KnowledgeGraph) -> bool:
    """Whether the graph was built from RDF (then new items must bring theirs)."""
    return isinstance(kg.manifest.get("rdf"), dict) or bool(kg.knowledge_edge_types())


def append_tables(kg: KnowledgeGraph, tables: SourceTables, *, lenient: bool = False, rdf: RdfSource | None = None) -> KnowledgeGraph:
    """``kg`` with the rows and triples of ``tables`` (:func:`kgrec.ingest.ingest`) added.

    ``kg`` is not changed. A new item is matched to its RDF resource in the new RDF (as
    ``tables.item_nodes`` says) or, by ``rdf``'s matching rule (the graph's), among the
    graph's own entities: a resource the graph already had as an entity (a film its RDF
    described before anyone watched it) becomes the item, with its edges, as a fresh build of
    all the rows would have made it. The result's manifest ends with this append's record
    (``manifest["appends"][-1]``: inputs, build report, counts of what was added); the build
    report's section ``append`` says the same.

    Raises:
        KgrecError: (strict) a new item without RDF, a new item whose RDF resource is already
            a user or another item, or a new behaviour named like a relation.
    """
    report = tables.report
    log_name = Path(tables.inputs.get("interactions", ["the new log"])[0]).name
    inter = tables.interactions
    old_items, old_users = kg.item_index, kg.user_index

    # --- node keys already in the graph: items and users by IRI, entities by key
    key_node: dict[str, tuple[str, int]] = {}
    for t in kg.node_types[2:]:
        key_node.update((key, (t, k)) for k, key in enumerate(kg.nodes[t]["id"].tolist()))
    for t in (USER, ITEM):
        frame = kg.nodes[t]
        if "iri" in frame.columns:
            key_node.update((iri, (t, k)) for k, iri in enumerate(frame["iri"].tolist()) if isinstance(iri, str))

    # --- new items: each needs RDF of its own (when the graph has RDF), not another user's or item's
    new_items = [i for i in pd.unique(inter["item"]) if i not in old_items]
    report.add("items", "already in the graph", inter["item"].nunique() - len(new_items))
    report.add("items", "new", len(new_items))
    keys = {i: tables.item_nodes.get(i) for i in new_items}
    unmatched = [i for i, key in keys.items() if key is None]
    if unmatched and rdf is not None and has_rdf(kg):  # described by the graph's own RDF already?
        from kgrec.ingest.matching import match_items

        entities = {key for key, (t, _) in key_node.items() if t not in (USER, ITEM)}
        keys.update({i: key for i, key in match_items(unmatched, entities, rdf).items() if key is not None})
    refused: dict[str, str] = {}
    for item, key in keys.items():
        if key is None and has_rdf(kg):
            refused[item] = WITHOUT_RDF
        elif key is not None and key_node.get(key, ("",))[0] in (USER, ITEM):
            refused[item] = f"its RDF resource is already a node of the graph ({key_node[key][0]})"
    if refused:
        dropped = inter["item"].isin(list(refused)).to_numpy()
        if not lenient:
            item, why = next(iter(refused.items()))
            n = int((inter["item"] == item).sum())
            more = f" (and {len(refused) - 1} other new item(s))" if len(refused) > 1 else ""
            hint = "give its RDF with --rdf" if why == WITHOUT_RDF else "give the item another id"
            raise KgrecError(
                f"item {item!r} ({n} interaction(s)) is not in the graph and {'no RDF describes it' if why == WITHOUT_RDF else why}"
                f"{more}: {hint}, or add --lenient to drop such rows (counted in the build report)",
                path=log_name,
            )
        for why in refused.values():
            report.dropped("items", f"new item: {why}")
        report.dropped("interactions", "new item refused (see items)", int(dropped.sum()))
        inter = inter.loc[~dropped].reset_index(drop=True)
        new_items = [i for i in new_items if i not in refused]
        if inter.empty:
            raise KgrecError("no interactions left to add (every row was dropped; see the build report)", path=log_name)

    # --- new behaviours
    new_events = sorted(set(inter["event"].astype(str)) - set(kg.behaviours))
    clash = [e for e in new_events if e in kg.relations or e in (USER, ITEM)]
    if clash:
        raise KgrecError(f"the new behaviour {clash[0]!r} is named like a relation of the graph; rename the event", path=log_name)
    behaviours = sorted(set(kg.behaviours) | set(new_events))

    # --- users and items: old ones keep their index, new ones follow in order of first appearance
    new_users = [u for u in pd.unique(inter["user"]) if u not in old_users]
    user_index = dict(old_users) | {u: kg.num_users + k for k, u in enumerate(new_users)}
    item_index = dict(old_items) | {i: kg.num_items + k for k, i in enumerate(new_items)}

    # --- entities that become items leave their type; the others close up, in order
    promoted: dict[tuple[str, int], int] = {}
    for item in new_items:
        found = key_node.get(keys[item]) if keys[item] is not None else None
        if found is not None:
            promoted[found] = item_index[item]
    remap: dict[str, np.ndarray] = {}
    nodes = dict(kg.nodes)
    for t in kg.node_types[2:]:
        gone = np.array(sorted(k for (pt, k) in promoted if pt == t), dtype=np.int64)
        keep = np.ones(len(kg.nodes[t]), dtype=bool)
        keep[gone] = False
        remap[t] = np.where(keep, np.cumsum(keep) - 1, -1)
        if len(gone) == len(keep):  # every node of the type became an item: the type goes, as in a fresh build
            del nodes[t]
        elif len(gone):
            nodes[t] = kg.nodes[t][keep].reset_index(drop=True)
    promoted_text = {item_index_of: kg.nodes[t].iloc[k] for (t, k), item_index_of in promoted.items()}
    for key, (t, k) in list(key_node.items()):
        if t not in (USER, ITEM):
            key_node[key] = (ITEM, promoted[(t, k)]) if (t, k) in promoted else (t, int(remap[t][k]))
    for item in new_items:
        if keys[item] is not None:
            key_node[keys[item]] = (ITEM, item_index[item])
    for k, user in enumerate(new_users):
        if (key := tables.user_nodes.get(user)) is not None and key not in key_node:
            key_node[key] = (USER, kg.num_users + k)

    rows = pd.DataFrame(
        {
            "user": inter["user"].map(user_index).to_numpy(np.int64),
            "item": inter["item"].map(item_index).to_numpy(np.int64),
            "event": inter["event"].astype(str).to_numpy(),
            "rating": inter["rating"].astype(float).to_numpy(),
            "timestamp": inter["timestamp"].astype(float).to_numpy(),
        }
    )
    seen = pd.MultiIndex.from_frame(kg.interactions[["user", "item", "event"]].astype({"event": str}))
    known = pd.MultiIndex.from_frame(rows[["user", "item", "event"]]).isin(seen)
    report.dropped("interactions", "already in the graph", int(known.sum()))
    rows = rows.loc[~known].reset_index(drop=True)
    interactions = pd.concat([kg.interactions, rows], ignore_index=True)

    # --- the graph's knowledge edges, their entity ends renumbered (a promoted one is an item now)
    edges: dict[tuple[str, str, str], list[np.ndarray]] = {}

    def moved(t: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(is_item, new index)`` of nodes of type ``t``."""
        if t not in remap:
            return np.zeros(len(index), dtype=bool), index
        is_item = np.array([(t, int(k)) in promoted for k in index], dtype=bool) if promoted else np.zeros(len(index), dtype=bool)
        out = remap[t][index]
        if is_item.any():
            out[is_item] = [promoted[(t, int(k))] for k in index[is_item]]
        return is_item, out

    for src_t, rel, dst_t in kg.knowledge_edge_types():
        ei = kg.data[src_t, rel, dst_t].edge_index.numpy()
        src_item, src = moved(src_t, ei[0])
        dst_item, dst = moved(dst_t, ei[1])
        for a in (False, True):
            for b in (False, True):
                pick = (src_item == a) & (dst_item == b)
                if pick.any():
                    et = (ITEM if a else src_t, rel, ITEM if b else dst_t)
                    edges.setdefault(et, []).append(np.stack([src[pick], dst[pick]]))

    # --- new triples: keys -> nodes (new entities typed as a build types them), relations by IRI
    relation_of = {iri: name for name, iri in kg.relations.items()}
    triples = tables.triples.drop_duplicates()
    new_predicates = sorted(set(triples["relation"].astype(str)) - set(relation_of))
    relation_of.update(_unique_relation_names(new_predicates, set(kg.relations) | set(behaviours) | {USER, ITEM}))
    new_entities: dict[str, list[str]] = {}

    def node_of(key: str) -> tuple[str, int]:
        found = key_node.get(key)
        if found is None:
            t = type_name(tables.node_types.get(key, DEFAULT_ENTITY_TYPE))
            listed = new_entities.setdefault(t, [])
            found = (t, (len(nodes[t]) if t in nodes else 0) + len(listed))
            listed.append(key)
            key_node[key] = found
        return found

    added_edges: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for head, predicate, tail in triples.itertuples(index=False):
        (ht, h), (tt, t) = node_of(str(head)), node_of(str(tail))
        added_edges.setdefault((ht, relation_of[str(predicate)], tt), []).append((h, t))

    # --- node tables: old rows as they were, new rows with their label, text and IRI
    texts = tables.texts.drop_duplicates("node").set_index("node")

    def grown(frame: pd.DataFrame | None, ids: list[str], keys_: list[str | None], with_iri: bool, before: list | None = None) -> pd.DataFrame:
        found = texts.reindex(pd.Index(keys_, dtype=object))

        def clean(col: str, old: str) -> list[str | None]:
            values = found[col].tolist()
            if before is not None:  # a promoted entity keeps its label and text unless the new RDF has them
                values = [v if isinstance(v, str) and v.strip() else (b[old] if b is not None else None) for v, b in zip(values, before)]
            return [v if isinstance(v, str) and v.strip() else None for v in values]

        extra = pd.DataFrame(
            {
                "id": pd.Series(ids, dtype="string"),
                "label": pd.Series(clean("label", "label"), dtype=object),
                "text": pd.Series(clean("description", "text"), dtype=object),
            }
        )
        if with_iri:
            extra["iri"] = pd.Series(keys_, dtype=object)
        if frame is None:
            return extra
        return pd.concat([frame, extra], ignore_index=True) if ids else frame

    nodes[USER] = grown(kg.nodes[USER], new_users, [tables.user_nodes.get(u) for u in new_users], True)
    nodes[ITEM] = grown(kg.nodes[ITEM], new_items, [keys[i] for i in new_items], True, [promoted_text.get(item_index[i]) for i in new_items])
    for t, listed in new_entities.items():
        nodes[t] = grown(nodes.get(t), listed, listed, False)

    # --- the heterogeneous graph: behaviour edges from the interactions, knowledge edges grown
    data = HeteroData()
    for t, frame in nodes.items():
        data[t].num_nodes = len(frame)
    add_behaviour_edges(data, interactions, behaviours)
    triples_added = triples_known = 0
    for et in sorted(set(edges) | set(added_edges)):
        src_t, rel, dst_t = et
        old = torch.as_tensor(np.concatenate(edges[et], axis=1) if et in edges else np.empty((2, 0)), dtype=torch.long)
        extra = torch.as_tensor(added_edges.get(et, []), dtype=torch.long).reshape(-1, 2).t()
        if extra.numel():
            extra = extra[:, _first_occurrence(extra)]  # each new triple once, in the order given
            fresh = ~_contains(old, extra)
            triples_known += int((~fresh).sum())
            extra = extra[:, fresh]
            triples_added += int(extra.size(1))
        ei = torch.cat([old, extra], dim=1)
        data[src_t, rel, dst_t].edge_index = ei
        data[dst_t, REVERSE_PREFIX + rel, src_t].edge_index = ei.flip(0)
    report.dropped("triples", "already in the graph", triples_known)

    statements = kg.statements
    if tables.statements is not None and len(tables.statements):
        kept = tables.statements[tables.statements["subject"].isin(set(key_node))]
        statements = kept if statements is None else pd.concat([statements, kept], ignore_index=True).drop_duplicates(ignore_index=True)
        statements = statements.reset_index(drop=True) if len(statements) else None

    added = {
        "users": len(new_users),
        "items": len(new_items),
        "items_from_entities": len(promoted),
        "entities": sum(len(v) for v in new_entities.values()),
        "interactions": int(len(rows)),
        "triples": triples_added,
        "behaviours": new_events,
        "relations": [relation_of[p] for p in new_predicates],
    }
    for key in ("users", "items", "entities", "interactions", "triples"):
        report.add(APPEND, f"{key} added", added[key])
    report.add(APPEND, "entities that became items", len(promoted))
    report.note(
        f"appended {added['interactions']:,} interactions, {added['users']:,} new users, {added['items']:,} new items, "
        f"{added['entities']:,} new entities and {added['triples']:,} triples"
    )
    relations = dict(kg.relations) | {relation_of[p]: p for p in new_predicates}
    manifest = {k: v for k, v in kg.manifest.items() if k not in ("content_hash", "edge_files", "node_types", "num_interactions")}
    manifest.update(node_counts={t: len(f) for t, f in nodes.items()}, behaviours=behaviours, relations=relations)
    manifest["appends"] = [*kg.manifest.get("appends", []), {"inputs": tables.inputs, "report": report.to_dict(), "added": added}]
    return KnowledgeGraph(data, nodes, interactions, relations, behaviours, manifest, statements)


def _first_occurrence(pairs: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each distinct column of ``[2, n]`` pairs, in order."""
    _, inverse = torch.unique(pairs, dim=1, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), pairs.size(1), dtype=torch.long)
    first = first.scatter_reduce(0, inverse, torch.arange(pairs.size(1)), reduce="amin")
    return torch.sort(first).values


def _contains(edges: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """``[n]``: which columns of ``pairs`` are columns of ``edges``."""
    if edges.size(1) == 0:
        return torch.zeros(pairs.size(1), dtype=torch.bool)
    span = int(max(edges.max(), pairs.max())) + 1
    keys = torch.sort(edges[0] * span + edges[1]).values
    wanted = pairs[0] * span + pairs[1]
    at = torch.searchsorted(keys, wanted).clamp(max=keys.numel() - 1)
    return keys[at] == wanted


def node_map(old: KnowledgeGraph, new: KnowledgeGraph) -> np.ndarray:
    """``[old.num_nodes]`` the global index in ``new`` of every node of ``old`` (-1: not there).

    Nodes are the same when their type and id are; global indices differ whenever a type
    before them grew (new users move every item), which is why a trained model's rows are
    carried over through this map.
    """
    out = np.full(old.num_nodes, -1, dtype=np.int64)
    old_offsets, new_offsets = old.node_offsets(), new.node_offsets()
    for t in old.node_types:
        if t not in new.nodes:
            continue
        at = pd.Index(new.nodes[t]["id"].astype(str)).get_indexer(old.nodes[t]["id"].astype(str))
        start = old_offsets[t]
        out[start : start + len(at)] = np.where(at >= 0, at + new_offsets[t], -1)
    return out


__all__ = ["APPEND", "append_spec", "append_tables", "has_rdf", "node_map"]
