"""On-disk graphs: ``graphs/<name>/manifest.json`` plus Parquet tables, never pickles.

Layout::

    manifest.json                 format version, counts, relations, inputs, build report
    report.txt                    the build report as printed
    nodes/<type>.parquet          id, label, text  (row = node index)
    interactions.parquet          user, item (node indices), event, rating, timestamp
    edges/<src>__<rel>__<dst>.parquet   src, dst   (forward knowledge edges; reverses rebuilt)
    rdf_statements.parquet        the RDF's classes and literals about nodes, as written (for exports)

Behaviour edges are rebuilt from ``interactions.parquet`` and reverse edges from the forward
ones, so nothing is stored twice. The folder is written to a temporary sibling and moved into
place when complete (:func:`kgrec.io.atomic_folder`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from kgrec.errors import KgrecError
from kgrec.graph.build import GRAPH_FORMAT_VERSION, behaviour_rows
from kgrec.graph.container import ITEM, REVERSE_PREFIX, USER, KnowledgeGraph
from kgrec.ingest.sources import BuildReport
from kgrec.io import atomic_folder, content_hash, is_empty_or_missing


def _edge_file(et: tuple[str, str, str]) -> str:
    return f"{et[0]}__{et[1]}__{et[2]}.parquet"


def check_replaceable(folder: Path, force: bool = False) -> None:
    """Refuse to write over anything but an empty folder, or (with ``force``) a kgrec graph.

    A graph is never replaced without being asked; a folder kgrec did not write is never
    replaced at all.
    """
    folder = Path(folder)
    if is_empty_or_missing(folder):
        return
    manifest = folder / "manifest.json"
    try:
        is_graph = folder.is_dir() and json.loads(manifest.read_text(encoding="utf-8")).get("format") == "kgrec-graph"
    except (OSError, ValueError, AttributeError):
        is_graph = False
    if not is_graph:
        raise KgrecError(
            "exists and is not a kgrec graph; kgrec replaces only graphs it wrote: choose another --out",
            path=folder,
        )
    if not force:
        raise KgrecError(
            "a graph is already there; add --force to replace it, or choose another --out (a run "
            "trained on the old graph refuses a graph whose content differs)",
            path=folder,
        )


def save_graph(kg: KnowledgeGraph, folder: Path, *, force: bool = False) -> Path:
    """Write ``kg`` to ``folder`` atomically and return the folder.

    With ``force`` an earlier graph there is replaced whole (and stays untouched if writing
    fails); without, it is refused, as is any other existing folder or file. The manifest
    records the tables' :func:`content_hash`, by which a run recognises its graph.
    """
    folder = Path(folder)
    check_replaceable(folder, force)
    manifest = dict(kg.manifest)
    with atomic_folder(folder) as tmp:
        (tmp / "nodes").mkdir()
        (tmp / "edges").mkdir()
        for t, df in kg.nodes.items():
            df.to_parquet(tmp / "nodes" / f"{t}.parquet", index=False)
        kg.interactions.to_parquet(tmp / "interactions.parquet", index=False)
        edge_files = []
        for et in kg.knowledge_edge_types():
            ei = kg.data[et].edge_index.numpy()
            pd.DataFrame({"src": ei[0], "dst": ei[1]}).to_parquet(tmp / "edges" / _edge_file(et), index=False)
            edge_files.append({"src": et[0], "relation": et[1], "dst": et[2], "file": _edge_file(et), "count": int(ei.shape[1])})
        if kg.statements is not None and len(kg.statements):
            kg.statements.to_parquet(tmp / "rdf_statements.parquet", index=False)
        manifest["node_types"] = kg.node_types
        manifest["edge_files"] = edge_files
        manifest["num_interactions"] = int(len(kg.interactions))
        manifest["content_hash"] = content_hash(tmp)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        (tmp / "report.txt").write_text(report_text(manifest), encoding="utf-8")
    return folder


def report_text(manifest: dict) -> str:
    """``report.txt``: the build report, then the report of every append (``kgrec build --append``)."""
    parts = [BuildReport.from_dict(manifest.get("report", {})).format()]
    for k, append in enumerate(manifest.get("appends", []), start=1):
        inputs = ", ".join(str(p) for paths in append.get("inputs", {}).values() for p in paths)
        parts.append(f"Append {k} ({inputs})\n" + BuildReport.from_dict(append.get("report", {})).format())
    return "\n\n".join(parts) + "\n"


def load_graph(folder: Path) -> KnowledgeGraph:
    """Read a graph written by :func:`save_graph`; refuses other formats with a clear message."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise KgrecError(
            "not a kgrec graph (no manifest.json); build one with `kgrec build ... --out " f"{folder}`",
            path=folder,
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KgrecError(f"unreadable manifest ({e})", path=manifest_path) from None
    if manifest.get("format") != "kgrec-graph":
        raise KgrecError("not a kgrec graph manifest", path=manifest_path)
    version = manifest.get("format_version")
    if version != GRAPH_FORMAT_VERSION:
        raise KgrecError(
            f"graph format version {version} is not supported by this kgrec "
            f"(expects {GRAPH_FORMAT_VERSION}); rebuild the graph with `kgrec build`",
            path=manifest_path,
        )
    try:
        nodes = {t: pd.read_parquet(folder / "nodes" / f"{t}.parquet") for t in manifest["node_types"]}
        interactions = pd.read_parquet(folder / "interactions.parquet")
        data = HeteroData()
        for t, df in nodes.items():
            df["id"] = df["id"].astype("string")
            for col in ("label", "text", "iri"):
                if col not in df.columns:
                    continue
                df[col] = df[col].astype(object).where(df[col].notna(), None)
            data[t].num_nodes = len(df)
        behaviours = list(manifest["behaviours"])
        for b in behaviours:
            rows = behaviour_rows(interactions, b)
            ei = torch.as_tensor(np.stack([rows["user"].to_numpy(), rows["item"].to_numpy()]), dtype=torch.long)
            data[USER, b, ITEM].edge_index = ei
            data[ITEM, REVERSE_PREFIX + b, USER].edge_index = ei.flip(0)
        for ef in manifest["edge_files"]:
            df = pd.read_parquet(folder / "edges" / ef["file"])
            ei = torch.as_tensor(np.stack([df["src"].to_numpy(), df["dst"].to_numpy()]), dtype=torch.long)
            data[ef["src"], ef["relation"], ef["dst"]].edge_index = ei
            data[ef["dst"], REVERSE_PREFIX + ef["relation"], ef["src"]].edge_index = ei.flip(0)
    except (OSError, KeyError, ValueError) as e:
        raise KgrecError(f"damaged graph folder ({type(e).__name__}: {e}); rebuild it", path=folder) from None
    if "content_hash" not in manifest:  # a graph written before kgrec kept one: hash it now
        manifest["content_hash"] = content_hash(folder)
    statements = None
    if (folder / "rdf_statements.parquet").is_file():
        statements = pd.read_parquet(folder / "rdf_statements.parquet")
    return KnowledgeGraph(data, nodes, interactions, dict(manifest["relations"]), behaviours, manifest, statements)
