"""Parquet node and edge tables: the export for pandas, Polars, DuckDB, Spark and PyG users.

Layout::

    nodes.parquet   node (0..N-1), key ("type:id"), type, index (node index in the kgrec graph),
                    id, iri, label, description[, embedding: fixed_size_list<float32>[dim], null
                    for nodes without one]
    edges.parquet   source, target (``node`` numbers), relation, kind, predicate,
                    rating, timestamp, rank, score

Edges refer to nodes by their row number, so ``edges[["source", "target"]]`` is directly an
edge index; ``kind`` is behaviour, knowledge or recommendation and the columns that do not
apply to a kind are null. Strings are dictionary-encoded by Parquet, so repeating types and
relation names costs little.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kgrec.export.subgraph import ExportTables
from kgrec.io import atomic_folder


def node_arrow_table(tables: ExportTables) -> pa.Table:
    nodes = tables.nodes
    columns = {
        "node": pa.array(np.arange(len(nodes), dtype=np.int64)),
        "key": pa.array(nodes["key"].tolist(), pa.string()),
        "type": pa.array(nodes["type"].tolist(), pa.string()),
        "index": pa.array(nodes["index"].to_numpy(np.int64)),
        "id": pa.array(nodes["id"].tolist(), pa.string()),
        "iri": pa.array(nodes["iri"].tolist(), pa.string()),
        "label": pa.array(nodes["label"].tolist(), pa.string()),
        "description": pa.array(nodes["description"].tolist(), pa.string()),
    }
    if tables.embeddings is not None:
        dim = tables.embeddings.shape[1]
        values = pa.array(np.nan_to_num(tables.embeddings, nan=0.0).reshape(-1), pa.float32())
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(values, dim, mask=pa.array(~tables.has_embedding()))
    return pa.table(columns)


def edge_arrow_table(tables: ExportTables) -> pa.Table:
    edges = tables.edges
    return pa.table(
        {
            "source": pa.array(edges["source"].to_numpy(np.int64)),
            "target": pa.array(edges["target"].to_numpy(np.int64)),
            "relation": pa.array(edges["relation"].tolist(), pa.string()),
            "kind": pa.array(edges["kind"].tolist(), pa.string()),
            "predicate": pa.array(edges["predicate"].where(edges["predicate"].notna(), None).tolist(), pa.string()),
            "rating": pa.array(edges["rating"].to_numpy(np.float64), from_pandas=True),
            "timestamp": pa.array(edges["timestamp"].to_numpy(np.float64), from_pandas=True),
            "rank": pa.array(pd.array(edges["rank"], dtype="Int64")),
            "score": pa.array(edges["score"].to_numpy(np.float64), from_pandas=True),
        }
    )


def write_parquet(tables: ExportTables, folder: Path) -> Path:
    """Write ``nodes.parquet`` and ``edges.parquet`` into ``folder`` (replaced atomically)."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        pq.write_table(node_arrow_table(tables), tmp / "nodes.parquet")
        pq.write_table(edge_arrow_table(tables), tmp / "edges.parquet")
    return folder
