"""Ingestion: raw sources -> validated :class:`~kgrec.ingest.sources.SourceTables`.

:func:`ingest` follows a graph spec: it reads the interaction log (:mod:`.logs`), reads the RDF
into a table of statements (:mod:`.statements`: N-Triples and N-Quads vectorised, other formats
through rdflib, :mod:`.rdf`), matches items (and users) to RDF resources (:mod:`.matching`) and splits the RDF
into edges, texts and node types (:mod:`.knowledge`). :func:`read_recbole` and
:func:`read_kgat` import datasets already prepared for those libraries.

Every step adds to one :class:`~kgrec.ingest.sources.BuildReport`: what was read, kept and
dropped, and why.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kgrec.config import GraphSpec, to_dict
from kgrec.errors import KgrecError
from kgrec.ingest.kgat import read_kgat
from kgrec.ingest.knowledge import extract_knowledge, knowledge_from_statements, original_statements
from kgrec.ingest.logs import read_interactions
from kgrec.ingest.matching import match_items, resource_iris
from kgrec.ingest.rdf import parse_rdf
from kgrec.ingest.recbole import read_recbole
from kgrec.ingest.sources import BuildReport, SourceTables
from kgrec.ingest.statements import read_statements, statement_iris, unique_statements

__all__ = [
    "ingest",
    "read_interactions",
    "parse_rdf",
    "read_statements",
    "extract_knowledge",
    "match_items",
    "read_recbole",
    "read_kgat",
]

ITEMS_MATCHED = "items matched to RDF"
ITEMS_WITHOUT_RDF = "items without RDF"


def ingest(spec: GraphSpec) -> SourceTables:
    """Read everything a graph spec names and hand back the tables the graph builder needs.

    Raises:
        KgrecError: any problem with the inputs, including RDF that shares no item with the logs.
    """
    report = BuildReport()
    interactions = read_interactions(spec.interactions, report, lenient=spec.lenient, base_dir=spec.base_dir)
    inputs = {"interactions": [str(spec.resolve(spec.interactions.path))]}
    read_as = to_dict(spec.interactions) | {"path": inputs["interactions"][0]}
    items = interactions["item"].unique().tolist()
    rdf = spec.rdf

    if not rdf.paths:
        item_nodes: dict[str, str | None] = dict.fromkeys(items)
        report.add("items", "read", len(items))
        report.add("items", ITEMS_WITHOUT_RDF, len(items))
        return SourceTables(
            interactions=interactions,
            item_nodes=item_nodes,
            triples=SourceTables.empty_triples(),
            texts=SourceTables.empty_texts(),
            report=report,
            inputs=inputs,
            interaction_settings=read_as,
        )

    # a table of statements rather than an rdflib graph: N-Triples and N-Quads are read
    # vectorised, and millions of statements fit in memory (see kgrec.ingest.statements)
    rdf_paths = [spec.resolve(p) for p in rdf.paths]
    parts = [read_statements(path, rdf.format, lenient=spec.lenient, report=report) for path in rdf_paths]
    statements = unique_statements(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
    del parts
    inputs["rdf"] = [str(p) for p in rdf_paths]
    if rdf.link is not None:
        inputs["link"] = [str(spec.resolve(rdf.link))]

    resources = statement_iris(statements)
    item_nodes = match_items(items, resources, rdf, spec.base_dir)
    matched = sum(node is not None for node in item_nodes.values())
    report.add("items", "read", len(items))
    report.add("items", ITEMS_MATCHED, matched)
    report.add("items", ITEMS_WITHOUT_RDF, len(items) - matched)
    report.note(f"{matched:,} of {len(items):,} items matched to RDF resources")
    if matched == 0:
        log_name = Path(inputs["interactions"][0]).name
        rdf_names = ", ".join(p.name for p in rdf_paths)
        raise KgrecError(_no_match_message(items, rdf, resources, log_name, rdf_names))

    user_nodes: dict[str, str] = {}
    if rdf.user_iri is not None:
        users = interactions["user"].unique().tolist()
        found = match_items(users, resources, rdf, spec.base_dir, kind="user")
        user_nodes = {u: iri for u, iri in found.items() if iri is not None}
        report.add("users", "read", len(users))
        report.add("users", "users matched to RDF", len(user_nodes))
        report.note(f"{len(user_nodes):,} of {len(users):,} users matched to RDF resources")

    triples, texts, node_types = knowledge_from_statements(statements, rdf, report)
    originals = original_statements(statements, rdf)
    settings = to_dict(rdf)
    settings["paths"] = inputs["rdf"]
    if rdf.link is not None:
        settings["link"] = inputs["link"][0]
    del statements
    # node types are for entities: an item or a user keeps its own node type
    not_entities = {n for n in item_nodes.values() if n is not None} | set(user_nodes.values())
    node_types = {node: name for node, name in node_types.items() if node not in not_entities}
    return SourceTables(
        interactions=interactions,
        item_nodes=item_nodes,
        triples=triples,
        texts=texts,
        report=report,
        user_nodes=user_nodes,
        node_types=node_types,
        inputs=inputs,
        rdf_settings=settings,
        statements=originals,
        interaction_settings=read_as,
    )


def _no_match_message(items: list[str], rdf, resources: set[str], log_name: str, rdf_names: str) -> str:
    example_items = ", ".join(repr(i) for i in items[:3])
    example_iris = ", ".join(sorted(resources)[:3]) or "(none)"
    if rdf.item_iri is not None:
        how = f"the IRI template {rdf.item_iri!r} names no resource of the RDF; fix --item-iri (rdf.item_iri)"
    elif rdf.link is not None:
        how = "no IRI of the link file occurs in the RDF; check --link (rdf.link)"
    else:
        how = (
            "no resource IRI ends with '/<item id>' or '#<item id>'; say how items map to IRIs with "
            "--item-iri (a template such as 'http://example.org/item/{id}', rdf.item_iri) or "
            "--link (a file of item id, IRI pairs, rdf.link)"
        )
    return (
        f"the interaction log ({log_name}) and the RDF ({rdf_names}) share no item: {how}. "
        f"Items look like {example_items}; RDF resources look like {example_iris}"
    )
