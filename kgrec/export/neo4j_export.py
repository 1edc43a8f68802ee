"""Neo4j bulk-import CSV: a folder that ``neo4j-admin database import full`` reads as is.

Layout (headers inline, first line of each file)::

    nodes_<type>.csv                          id:ID(<type>),iri,label,description,:LABEL[,embedding:float[]]
    relationships_<src>__<rel>__<dst>.csv     :START_ID(<src>),:END_ID(<dst>),:TYPE[,typed properties]
    import.sh                                 the neo4j-admin command for exactly these files

Each node type is its own ID space (``:ID(user)``, ``:ID(item)``...), so MovieLens user ``1``
and item ``1`` do not collide; the id is kept as the ``id`` property. Labels: ``User``,
``Item``, and each entity type's name plus ``Entity`` (``Genre;Entity``). Relationship types
are the graph's event and relation names (``rate``, ``film_film_actor``) and ``recommended``.
Typed property headers: behaviours ``rating:float`` and ``timestamp:long`` (``:double`` when a
timestamp has a fraction), knowledge edges ``predicate`` (the IRI), recommendations
``rank:int,score:float``. Empty fields mean "no property". Descriptions may hold line breaks,
hence ``--multiline-fields=true`` in ``import.sh``; arrays use neo4j's default ``;`` delimiter.
All files are written with pandas (no per-row Python).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.export.subgraph import BEHAVIOUR, KNOWLEDGE, RECOMMENDATION, ExportTables
from kgrec.graph.container import ITEM, USER
from kgrec.io import atomic_folder

_FILE_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def neo4j_labels(node_type: str) -> str:
    """The ``:LABEL`` value of a node type (several labels are ``;``-separated)."""
    if node_type == USER:
        return "User"
    if node_type == ITEM:
        return "Item"
    if node_type.lower() == "entity":
        return "Entity"
    return f"{node_type};Entity"


def _file_part(name: str) -> str:
    return _FILE_SAFE.sub("_", name)


def _embedding_column(tables: ExportTables, rows: np.ndarray) -> pd.Series:
    emb = tables.embeddings[rows]
    text = pd.DataFrame(emb).map(lambda x: f"{x:.6g}")
    return text.agg(";".join, axis=1)


def node_frames(tables: ExportTables) -> dict[str, pd.DataFrame]:
    """Node type -> the DataFrame written as ``nodes_<type>.csv`` (columns are the header)."""
    out = {}
    has_emb = tables.has_embedding()
    for t, df in tables.nodes.groupby("type", sort=False):
        frame = pd.DataFrame(
            {
                f"id:ID({t})": df["id"].to_numpy(dtype=object),
                "iri": df["iri"].to_numpy(dtype=object),
                "label": df["label"].to_numpy(dtype=object),
                "description": df["description"].to_numpy(dtype=object),
                ":LABEL": neo4j_labels(t),
            }
        )
        rows = df.index.to_numpy()
        if has_emb[rows].any():
            column = pd.Series([None] * len(rows), dtype=object)
            with_emb = has_emb[rows]
            column[with_emb] = _embedding_column(tables, rows[with_emb]).to_numpy(dtype=object)
            frame["embedding:float[]"] = column.to_numpy(dtype=object)
        out[t] = frame
    return out


def relationship_frames(tables: ExportTables) -> dict[str, pd.DataFrame]:
    """File stem -> the DataFrame written as ``<stem>.csv``: one file per (source type, relation, target type)."""
    nodes, edges = tables.nodes, tables.edges
    types = nodes["type"].to_numpy(dtype=object)
    ids = nodes["id"].to_numpy(dtype=object)
    e = edges.assign(src_type=types[edges["source"].to_numpy()], dst_type=types[edges["target"].to_numpy()])
    out = {}
    for (st, rel, dt, kind), df in e.groupby(["src_type", "relation", "dst_type", "kind"], sort=True):
        frame = pd.DataFrame(
            {
                f":START_ID({st})": ids[df["source"].to_numpy()],
                f":END_ID({dt})": ids[df["target"].to_numpy()],
                ":TYPE": rel,
            }
        )
        if kind == BEHAVIOUR:
            frame["rating:float"] = df["rating"].to_numpy()
            stamps = df["timestamp"]
            if stamps.dropna().mod(1).eq(0).all():
                frame["timestamp:long"] = stamps.astype("Int64").to_numpy()
            else:
                frame["timestamp:double"] = stamps.to_numpy()
        elif kind == KNOWLEDGE:
            frame["predicate"] = df["predicate"].to_numpy(dtype=object)
        elif kind == RECOMMENDATION:
            frame["rank:int"] = df["rank"].astype(np.int64).to_numpy()
            frame["score:float"] = df["score"].to_numpy()
        stem = f"relationships_{_file_part(st)}__{_file_part(rel)}__{_file_part(dt)}"
        if stem in out:  # the same relation name as behaviour and knowledge: keep both
            stem += f"__{kind}"
        out[stem] = frame
    return out


def import_command(node_files: list[str], relationship_files: list[str], database: str = "neo4j") -> str:
    """The ``neo4j-admin database import full`` command line for these files (paths relative to the folder)."""
    head = f"neo4j-admin database import full {database} --multiline-fields=true"
    files = [f"--nodes={shlex.quote(f)}" for f in node_files] + [f"--relationships={shlex.quote(f)}" for f in relationship_files]
    return " \\\n    ".join([head] + files)


def write_neo4j(tables: ExportTables, folder: Path) -> Path:
    """Write the node and relationship CSV files and ``import.sh`` into ``folder`` (replaced atomically)."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        node_files, rel_files = [], []
        for t, frame in node_frames(tables).items():
            name = f"nodes_{_file_part(t)}.csv"
            frame.to_csv(tmp / name, index=False)
            node_files.append(name)
        for stem, frame in relationship_frames(tables).items():
            name = f"{stem}.csv"
            frame.to_csv(tmp / name, index=False)
            rel_files.append(name)
        script = (
            "#!/bin/sh\n"
            "# Import this folder into a new Neo4j 5 database (default: neo4j; add --overwrite-destination=true\n"
            "# to replace an existing one). Run it from anywhere: it works in its own folder.\n"
            'cd "$(dirname "$0")" || exit 1\n'
            + import_command(node_files, rel_files, '"${1:-neo4j}"')
            + "\n"
        )
        (tmp / "import.sh").write_text(script, encoding="utf-8")
        (tmp / "import.sh").chmod(0o755)
    return folder
