"""GraphML and GEXF: the files load back in networkx with the same nodes, edges and attributes."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from kgrec.export import write_export
from kgrec.export.subgraph import SubgraphFilter, export_tables

ODD_LABEL = 'Say "hi"\\ to\nthe caf\u00e9'
READERS = {"graphml": nx.read_graphml, "gexf": nx.read_gexf}


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_round_trip_counts_and_attributes(export_kg, tmp_path, fmt):
    tables = export_tables(export_kg)
    out = tmp_path / f"g.{fmt}"
    write_export(tables, fmt, out)
    g = READERS[fmt](out)
    assert g.is_directed() and g.is_multigraph()
    assert g.number_of_nodes() == tables.num_nodes
    assert g.number_of_edges() == tables.num_edges
    assert set(g.nodes) == set(tables.nodes["key"])

    user, item = g.nodes["user:1"], g.nodes["item:1"]
    assert (user["type"], user["original_id"]) == ("user", "1")
    assert (item["type"], item["original_id"], item["label"]) == ("item", "1", ODD_LABEL)
    assert item["iri"] == "http://example.org/item/1"  # the RDF resource the item matched
    assert g.nodes["Genre:http://example.org/genre/g0"]["description"] == "Funny films."

    relations = [d["relation"] for _, _, d in g.out_edges("user:1", data=True)]
    assert relations.count("click") + relations.count("buy") == int((export_kg.interactions["user"] == export_kg.user_index["1"]).sum())
    buys = [d for _, _, d in g.out_edges("user:1", data=True) if d["relation"] == "buy"]
    assert buys and all(isinstance(d["rating"], float) and d["kind"] == "behaviour" for d in buys)
    clicks = [d for _, _, d in g.out_edges("user:1", data=True) if d["relation"] == "click"]
    assert all("rating" not in d for d in clicks)  # absent, not NaN
    genre_edges = [d for _, v, d in g.out_edges("item:1", data=True) if d["relation"] == "genre"]
    assert genre_edges[0]["predicate"] == "http://schema.org/genre" and genre_edges[0]["kind"] == "knowledge"


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_subgraph_with_run_round_trips(export_kg, export_run, tmp_path, fmt):
    tables = export_tables(export_kg, SubgraphFilter(user="3", hops=1), run=export_run, k=4)
    out = tmp_path / f"sub.{fmt}"
    write_export(tables, fmt, out)
    g = READERS[fmt](out)
    assert (g.number_of_nodes(), g.number_of_edges()) == (tables.num_nodes, tables.num_edges)
    recs = sorted((d["rank"], v, d["score"]) for _, v, d in g.out_edges("user:3", data=True) if d["relation"] == "recommended")
    assert [r for r, _, _ in recs] == [1, 2, 3, 4]
    assert all(a[2] >= b[2] for a, b in zip(recs, recs[1:]))  # scores fall with rank
    vector = np.array(g.nodes["user:3"]["embedding"].split(), dtype=np.float32)
    row = tables.nodes["key"].tolist().index("user:3")
    assert np.allclose(vector, tables.embeddings[row], rtol=1e-5, atol=1e-6)
