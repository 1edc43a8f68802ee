"""build_graph works column by column; these tests hold it to the plain, key-by-key rules.

The reference below is the builder's old loop (a dict look-up per triple): the same node
numbering (users and items first, entities by type in order of first appearance), the same
claims (an item's key before a user's, the first item of two sharing an IRI), the same edge
order within an edge type.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import torch

from kgrec.graph.build import DEFAULT_ENTITY_TYPE, build_graph, type_name
from kgrec.ingest.sources import BuildReport, SourceTables

E = "http://e/"


def reference_edges(tables: SourceTables) -> dict[tuple[str, str, str], list[tuple[int, int]]]:
    """(head type, predicate IRI, tail type) -> [(head index, tail index)], key by key."""
    users = list(pd.unique(tables.interactions["user"]))
    items = list(pd.unique(tables.interactions["item"]))
    key_to_node: dict[str, tuple[str, int]] = {}
    for i, it in enumerate(items):
        if tables.item_nodes.get(it) is not None:
            key_to_node.setdefault(tables.item_nodes[it], ("item", i))
    for u, key in tables.user_nodes.items():
        if u in users and key is not None:
            key_to_node.setdefault(key, ("user", users.index(u)))
    triples = tables.triples.drop_duplicates()
    counters: dict[str, int] = defaultdict(int)
    for key in pd.unique(pd.concat([triples["head"], triples["tail"]], ignore_index=True)):
        if key not in key_to_node:
            t = type_name(tables.node_types.get(key, DEFAULT_ENTITY_TYPE))
            key_to_node[key] = (t, counters[t])
            counters[t] += 1
    edges = defaultdict(list)
    for h, r, t in triples.itertuples(index=False):
        (ht, hi), (tt, ti) = key_to_node[h], key_to_node[t]
        edges[(ht, r, tt)].append((hi, ti))
    return dict(edges)


def random_tables(seed: int) -> SourceTables:
    rng = np.random.default_rng(seed)
    users = [f"u{k}" for k in range(12)]
    items = [f"i{k}" for k in range(10)]
    inter = pd.DataFrame(
        {
            "user": rng.choice(users, 60),
            "item": rng.choice(items, 60),
            "event": rng.choice(["view", "buy"], 60),
            "rating": np.nan,
            "timestamp": np.nan,
        }
    ).drop_duplicates(["user", "item", "event"])
    item_nodes = {it: (f"{E}item/{it}" if k % 4 else None) for k, it in enumerate(items)}
    item_nodes["i9"] = item_nodes["i1"]  # two items matched to one IRI: the first one seen keeps it
    user_nodes = {"u0": f"{E}user/u0", "u1": f"{E}item/i2"}  # a user claiming an item's IRI loses
    entities = [f"{E}ent/{k}" for k in range(25)]
    keys = [v for v in item_nodes.values() if v] + entities + list(user_nodes.values())
    n = 300
    triples = pd.DataFrame(
        {
            "head": rng.choice(keys, n),
            "relation": rng.choice([f"{E}genre", f"{E}about", f"{E}x/genre"], n),
            "tail": rng.choice(keys, n),
        },
        dtype="string",
    )
    types = {e: rng.choice(["Genre", "Person", "item", "a b"]) for e in entities[::2]}
    return SourceTables(
        interactions=inter.reset_index(drop=True),
        item_nodes={it: item_nodes[it] for it in inter["item"].unique()},
        triples=triples,
        texts=SourceTables.empty_texts(),
        report=BuildReport(),
        user_nodes=user_nodes,
        node_types=types,
    )


@pytest.mark.parametrize("seed", range(5))
def test_edges_match_the_key_by_key_rules(seed):
    tables = random_tables(seed)
    kg = build_graph(tables)
    expected = reference_edges(tables)
    got = {}
    for ht, rel, tt in kg.data.edge_types:
        if rel in kg.relations:
            index = kg.data[ht, rel, tt].edge_index
            got[(ht, kg.relations[rel], tt)] = list(zip(index[0].tolist(), index[1].tolist()))
    assert got == expected
    for ht, rel, tt in kg.data.edge_types:  # every forward type has its reverse
        if rel in kg.relations:
            assert torch.equal(kg.data[tt, "rev_" + rel, ht].edge_index, kg.data[ht, rel, tt].edge_index.flip(0))


def test_entity_tables_in_order_of_first_appearance():
    tables = random_tables(0)
    kg = build_graph(tables)
    triples = tables.triples.drop_duplicates()
    claimed = {k for k in tables.item_nodes.values() if k} | set(tables.user_nodes.values())
    seen = [k for k in pd.unique(pd.concat([triples["head"], triples["tail"]], ignore_index=True)) if k not in claimed]
    for t in kg.node_types:
        if t in ("user", "item"):
            continue
        ids = kg.nodes[t]["id"].tolist()
        assert ids == [k for k in seen if type_name(tables.node_types.get(k, DEFAULT_ENTITY_TYPE)) == t]
    assert "rdf_item" in kg.node_types and "a_b" in kg.node_types  # sanitised, never merged with items


def test_no_triples():
    tables = random_tables(0)
    tables.triples = SourceTables.empty_triples()
    kg = build_graph(tables)
    assert kg.node_types == ["user", "item"] and kg.relations == {}
