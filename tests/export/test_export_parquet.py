"""Parquet node and edge tables: complete, typed, edges index nodes by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kgrec.export import write_export
from kgrec.export.subgraph import SubgraphFilter, export_tables


def test_tables_round_trip(export_kg, tmp_path):
    tables = export_tables(export_kg)
    write_export(tables, "parquet", tmp_path / "pq")
    nodes = pd.read_parquet(tmp_path / "pq" / "nodes.parquet")
    edges = pd.read_parquet(tmp_path / "pq" / "edges.parquet")
    assert len(nodes) == export_kg.num_nodes and len(edges) == tables.num_edges
    assert nodes["node"].tolist() == list(range(len(nodes)))
    assert "embedding" not in nodes.columns
    user1 = nodes[nodes["key"] == "user:1"].iloc[0]
    items_of_user1 = edges[(edges["source"] == user1["node"]) & (edges["kind"] == "behaviour")]
    assert len(items_of_user1) == int((export_kg.interactions["user"] == export_kg.user_index["1"]).sum())
    assert set(nodes.loc[items_of_user1["target"], "type"]) == {"item"}
    knowledge = edges[edges["kind"] == "knowledge"]
    assert knowledge["predicate"].notna().all() and edges.loc[edges["kind"] == "behaviour", "predicate"].isna().all()
    buys = edges[edges["relation"] == "buy"]
    assert buys["rating"].notna().all() and edges.loc[edges["relation"] == "click", "rating"].isna().all()


def test_embeddings_are_fixed_size_lists_and_recommendations_are_edges(export_kg, export_run, tmp_path):
    tables = export_tables(export_kg, SubgraphFilter(node_types=["user", "item"]), run=export_run, k=2)
    write_export(tables, "parquet", tmp_path / "pq")
    schema = pq.read_schema(tmp_path / "pq" / "nodes.parquet")
    kind = schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and kind.list_size == 8 and kind.value_type == pa.float32()
    nodes = pd.read_parquet(tmp_path / "pq" / "nodes.parquet")
    stacked = np.stack(nodes["embedding"].to_numpy())
    assert np.allclose(stacked, tables.embeddings)
    edges = pd.read_parquet(tmp_path / "pq" / "edges.parquet")
    recs = edges[edges["kind"] == "recommendation"]
    assert len(recs) == 2 * export_kg.num_users
    assert pq.read_schema(tmp_path / "pq" / "edges.parquet").field("rank").type == pa.int64()  # null elsewhere
    assert set(recs["rank"]) == {1, 2} and recs["score"].notna().all()
