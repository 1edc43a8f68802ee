"""An rdflib graph -> knowledge triples, node texts and node types.

The graph builder needs three different things from RDF, and a statement is exactly one of them:

* an **edge** when its object is an IRI (``ex:film1 dbo:director ex:person7``);
* **text** when its predicate is a label or description predicate and its object a literal;
  that text later becomes the node's BERT features;
* a **type** when its predicate is the type predicate (``rdf:type``): the node type of an entity.

Everything else is dropped and counted in the report under source ``"rdf"``: other literals
(a year, a price: attributes, not edges), statements about or pointing to blank nodes (they have
no stable name to put in a graph) and statements whose predicate the spec says to ignore.
"""

from __future__ import annotations

import re

import pandas as pd
from rdflib import BNode, Graph, Literal, URIRef

from kgrec.config import RdfSource
from kgrec.ingest.sources import TEXT_COLUMNS, TRIPLE_COLUMNS, BuildReport

SOURCE = "rdf"
LITERAL_ATTRIBUTE = "literal attribute (not an edge)"
BLANK_NODE = "blank node"
IGNORED_PREDICATE = "ignored predicate"
TYPE_STATEMENT = "type statement (node type, not an edge)"
TEXT_STATEMENT = "label or description (node text, not an edge)"


def extract_knowledge(
    graph: Graph, rdf: RdfSource, report: BuildReport
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Split ``graph`` into edges, texts and node types.

    Args:
        graph: the parsed RDF (see :func:`kgrec.ingest.rdf.parse_rdf`).
        rdf: which predicates hold descriptions, labels and types, and which to ignore.
        report: receives the counts under source ``"rdf"``.

    Returns:
        ``(triples, texts, node_types)``: triples with columns :data:`TRIPLE_COLUMNS` (IRIs,
        ``relation`` the predicate), texts with columns :data:`TEXT_COLUMNS` (one row per node
        with a label or a description), and node IRI -> type name (the sanitised local name of
        its class; the sorted-first one when it has several).
    """
    descriptions = {p: i for i, p in enumerate(rdf.description_predicates)}
    labels = {p: i for i, p in enumerate(rdf.label_predicates)}
    ignored = set(rdf.ignore_predicates)
    type_predicate = rdf.type_predicate

    heads: list[str] = []
    relations: list[str] = []
    tails: list[str] = []
    # node -> (rank, text): the best literal seen so far; lower rank wins.
    best_label: dict[str, tuple[tuple, str]] = {}
    best_description: dict[str, tuple[tuple, str]] = {}
    types: dict[str, str] = {}
    dropped = {LITERAL_ATTRIBUTE: 0, BLANK_NODE: 0, IGNORED_PREDICATE: 0}
    n_types = n_texts = 0

    for s, p, o in graph:
        if isinstance(s, BNode) or isinstance(o, BNode):
            dropped[BLANK_NODE] += 1
            continue
        predicate = str(p)
        if predicate in ignored:
            dropped[IGNORED_PREDICATE] += 1
            continue
        subject = str(s)
        if isinstance(o, Literal):
            if predicate in descriptions:
                _keep_best(best_description, subject, (_language_rank(o), descriptions[predicate]), str(o))
                n_texts += 1
            elif predicate in labels:
                _keep_best(best_label, subject, (_language_rank(o), labels[predicate]), str(o))
                n_texts += 1
            else:
                dropped[LITERAL_ATTRIBUTE] += 1
            continue
        if predicate == type_predicate and isinstance(o, URIRef):
            name = type_name(str(o))
            if name and (subject not in types or name < types[subject]):
                types[subject] = name
            n_types += 1
            continue
        heads.append(subject)
        relations.append(predicate)
        tails.append(str(o))

    report.read(SOURCE, len(graph))
    report.kept(SOURCE, len(heads))
    for reason, n in dropped.items():
        report.dropped(SOURCE, reason, n)
    report.add(SOURCE, TYPE_STATEMENT, n_types)
    report.add(SOURCE, TEXT_STATEMENT, n_texts)

    triples = pd.DataFrame({"head": heads, "relation": relations, "tail": tails}, dtype="string")
    triples = triples[TRIPLE_COLUMNS]
    nodes = sorted(best_label.keys() | best_description.keys())
    texts = pd.DataFrame(
        {
            "node": nodes,
            "label": [best_label[n][1] if n in best_label else None for n in nodes],
            "description": [best_description[n][1] if n in best_description else None for n in nodes],
        },
        dtype="object",
    )[TEXT_COLUMNS]
    return triples, texts, types


def type_name(class_iri: str) -> str:
    """A node type name from a class IRI: its local name with anything but ``[A-Za-z0-9_]``
    replaced by ``_`` (``http://schema.org/Movie`` -> ``Movie``). The graph builder keeps a
    class called ``user`` or ``item`` apart from its own node types of those names."""
    local = re.split(r"[/#:]", class_iri.rstrip("/#"))[-1]
    return re.sub(r"[^A-Za-z0-9_]", "_", local)


def _language_rank(literal: Literal) -> int:
    """English first, then untagged literals, then any other language."""
    lang = (literal.language or "").lower()
    if lang == "en" or lang.startswith("en-"):
        return 0
    return 1 if not lang else 2


def _keep_best(best: dict[str, tuple[tuple, str]], node: str, rank: tuple, text: str) -> None:
    text = text.strip()
    if not text:
        return
    key = (*rank, text)  # the text itself breaks ties, so the choice never depends on graph order
    current = best.get(node)
    if current is None or key < (*current[0], current[1]):
        best[node] = (rank, text)
