"""Exports of a kgrec graph (and a run's outputs) to other tools, and SPARQL over it.

:func:`export_tables` decides what goes out (filters, identities, embeddings, top-K lists);
:func:`write_export` writes it in one of :data:`FORMATS`:

=========  ==========================================  ====================================
format     writes                                      read it with
=========  ==========================================  ====================================
graphml    one ``.graphml`` file                       networkx, Cytoscape, yEd, igraph
gexf       one ``.gexf`` file                          Gephi, networkx
turtle     one ``.ttl`` file                           rdflib, any triple store
ntriples   one ``.nt`` file                            any triple store (streams well)
jsonld     one ``.jsonld`` file                        JSON-LD processors
neo4j      a folder of CSV files + ``import.sh``       ``neo4j-admin database import full``
parquet    a folder: ``nodes.parquet``, ``edges.parquet``  pandas, Polars, DuckDB, Spark
=========  ==========================================  ====================================
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kgrec.errors import KgrecError

if TYPE_CHECKING:
    from kgrec.export.subgraph import ExportTables, SubgraphFilter, export_tables

#: Imported on first use: the subgraph code needs the graph container (and so PyG), whose import
#: cost ten seconds of every CLI start-up while ``FORMATS`` was all the parser needed.
_LAZY = {"ExportTables", "SubgraphFilter", "export_tables"}


def __getattr__(name: str):
    if name in _LAZY:
        from kgrec.export import subgraph

        return getattr(subgraph, name)
    raise AttributeError(f"module 'kgrec.export' has no attribute {name!r}")

#: Export format -> what ``--out`` names ("file" or "folder") and the usual file extension.
FORMATS: dict[str, tuple[str, str]] = {
    "graphml": ("file", ".graphml"),
    "gexf": ("file", ".gexf"),
    "turtle": ("file", ".ttl"),
    "ntriples": ("file", ".nt"),
    "jsonld": ("file", ".jsonld"),
    "neo4j": ("folder", ""),
    "parquet": ("folder", ""),
}


def format_from_path(path: Path) -> str | None:
    """The format a file extension names (``.ttl`` -> turtle), or None."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "jsonld"
    for fmt, (_, ext) in FORMATS.items():
        if ext and ext == suffix:
            return fmt
    return None


def write_export(tables: "ExportTables", fmt: str, out: Path) -> str:
    """Write ``tables`` as ``fmt`` to ``out``; returns a one-line summary of what was written."""
    out = Path(out)
    if fmt not in FORMATS:
        raise KgrecError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if FORMATS[fmt][0] == "file" and out.is_dir():
        raise KgrecError(f"--format {fmt} writes one file, but the output path is a folder", path=out)
    if FORMATS[fmt][0] == "folder" and out.exists() and not out.is_dir():
        raise KgrecError(f"--format {fmt} writes a folder, but the output path is a file", path=out)
    what = f"{tables.num_nodes:,} nodes, {tables.num_edges:,} edges"
    if fmt == "graphml":
        from kgrec.export.networkx_export import write_graphml

        write_graphml(tables, out)
    elif fmt == "gexf":
        from kgrec.export.networkx_export import write_gexf

        write_gexf(tables, out)
    elif fmt in ("turtle", "ntriples", "jsonld"):
        from kgrec.export.rdf_export import write_rdf

        what += f" ({write_rdf(tables, out, fmt):,} triples)"
    elif fmt == "neo4j":
        from kgrec.export.neo4j_export import write_neo4j

        write_neo4j(tables, out)
    else:
        from kgrec.export.parquet_export import write_parquet

        write_parquet(tables, out)
    return what


__all__ = ["FORMATS", "ExportTables", "SubgraphFilter", "export_tables", "format_from_path", "write_export"]
