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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rdflib import Graph

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
    from kgrec.ingest.statements import graph_statements

    return knowledge_from_statements(graph_statements(graph), rdf, report)


def knowledge_from_statements(
    statements: pd.DataFrame, rdf: RdfSource, report: BuildReport
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """:func:`extract_knowledge` for a statement table (:mod:`kgrec.ingest.statements`), column
    by column rather than statement by statement: the same rules, at millions of statements.

    ``statements`` is taken as a set (see :func:`~kgrec.ingest.statements.unique_statements`);
    edges keep its order.
    """
    from kgrec.ingest.statements import BLANK, LITERAL

    predicate = statements["predicate"]
    object_kind = statements["object_kind"].to_numpy()
    blank = (statements["subject_kind"].to_numpy() == BLANK) | (object_kind == BLANK)
    ignored = ~blank & predicate.isin(list(rdf.ignore_predicates)).to_numpy()
    rest = ~blank & ~ignored
    literal = rest & (object_kind == LITERAL)
    is_description = literal & predicate.isin(rdf.description_predicates).to_numpy()
    is_label = literal & ~is_description & predicate.isin(rdf.label_predicates).to_numpy()
    attribute = literal & ~is_description & ~is_label
    if rdf.type_predicate is not None:
        is_type = rest & ~literal & (predicate == rdf.type_predicate).to_numpy()
    else:
        is_type = np.zeros(len(statements), dtype=bool)
    edge = rest & ~literal & ~is_type

    report.read(SOURCE, len(statements))
    report.kept(SOURCE, int(edge.sum()))
    report.dropped(SOURCE, LITERAL_ATTRIBUTE, int(attribute.sum()))
    report.dropped(SOURCE, BLANK_NODE, int(blank.sum()))
    report.dropped(SOURCE, IGNORED_PREDICATE, int(ignored.sum()))
    report.add(SOURCE, TYPE_STATEMENT, int(is_type.sum()))
    report.add(SOURCE, TEXT_STATEMENT, int(is_description.sum() + is_label.sum()))

    triples = pd.DataFrame(
        {
            "head": _strings(statements["subject"], edge),
            "relation": _strings(statements["predicate"], edge),
            "tail": _strings(statements["object"], edge),
        }
    )[TRIPLE_COLUMNS]

    types: dict[str, str] = {}
    if is_type.any():
        typed = statements.loc[is_type, ["subject", "object"]]
        classes = pd.unique(typed["object"])
        names = typed["object"].map(dict(zip(classes, (type_name(c) for c in classes))))
        typed = typed.assign(name=names.to_numpy())[names.to_numpy() != ""]
        types = typed.groupby("subject", sort=False)["name"].min().to_dict()

    best_description = _best_texts(statements.loc[is_description], rdf.description_predicates)
    best_label = _best_texts(statements.loc[is_label], rdf.label_predicates)
    nodes = sorted(best_label.keys() | best_description.keys())
    texts = pd.DataFrame(
        {
            "node": nodes,
            "label": [best_label.get(n) for n in nodes],
            "description": [best_description.get(n) for n in nodes],
        },
        dtype="object",
    )[TEXT_COLUMNS]
    return triples, texts, types


#: Columns of :func:`original_statements`: what of the RDF is kept as written, for exports.
ORIGINAL_COLUMNS = ["subject", "predicate", "object", "object_kind", "language", "datatype"]


def original_statements(statements: pd.DataFrame, rdf: RdfSource) -> pd.DataFrame:
    """The statements a graph keeps as they were written, beside its edges and texts.

    The graph turns IRI-to-IRI statements into edges and keeps one label and one description
    per node for the text encoder; an export must still give back the rest of what the RDF said
    about items and entities: every ``rdf:type`` class (the node type keeps only one name) and
    every literal with its language tag or datatype (labels and descriptions in each language,
    dates, numbers). Kept: statements with an IRI subject whose object is a literal, or whose
    predicate is the type predicate. Not kept (docs/vocabulary.md): statements with a blank
    node, and those of ``ignore_predicates``.
    """
    from kgrec.ingest.statements import BLANK, IRI, LITERAL

    subject_iri = statements["subject_kind"].to_numpy() == IRI
    object_kind = statements["object_kind"].to_numpy()
    ignored = statements["predicate"].isin(list(rdf.ignore_predicates)).to_numpy()
    literal = object_kind == LITERAL
    typed = (object_kind == IRI) & (statements["predicate"] == rdf.type_predicate).to_numpy() if rdf.type_predicate else np.zeros(len(statements), bool)
    keep = subject_iri & ~ignored & (object_kind != BLANK) & (literal | typed)
    rows = statements.loc[keep]
    return pd.DataFrame(
        {
            "subject": rows["subject"].astype(str).to_numpy(),
            "predicate": rows["predicate"].astype(str).to_numpy(),
            "object": rows["object"].astype(str).to_numpy(),
            "object_kind": np.where(rows["object_kind"].to_numpy() == LITERAL, "literal", "iri"),
            "language": rows["language"].fillna("").astype(str).to_numpy(),
            "datatype": rows["datatype"].fillna("").astype(str).to_numpy(),
        }
    )[ORIGINAL_COLUMNS]


def _strings(column: pd.Series, mask: np.ndarray) -> pd.Series:
    """``column[mask]`` as a ``string`` Series; filtered by pyarrow when the column is Arrow-backed
    (pandas would gather millions of rows by index, and copy them once more to convert)."""
    chunks = getattr(column.array, "_pa_array", None)
    if chunks is None:
        return pd.Series(column.to_numpy()[mask], dtype="string")
    return pd.Series(pd.arrays.ArrowStringArray(pc.filter(chunks, pa.array(mask)).cast(pa.large_string())))


def _best_texts(rows: pd.DataFrame, predicates: list[str]) -> dict[str, str]:
    """Node -> its best literal: English first, then untagged, then other languages; then the
    predicate listed first; then the text itself, so the choice never depends on input order.
    Empty (all-space) literals never count."""
    if rows.empty:
        return {}
    text = [t.strip() for t in rows["object"].tolist()]
    language = rows["language"].str.lower()
    rank = np.where(
        (language == "en").to_numpy(dtype=bool, na_value=False)
        | language.str.startswith("en-").to_numpy(dtype=bool, na_value=False),
        0,
        np.where(language.isna().to_numpy(), 1, 2),
    )
    order = {p: i for i, p in enumerate(predicates)}
    frame = pd.DataFrame(
        {
            "node": rows["subject"].to_numpy(dtype=object),
            "rank": rank,
            "predicate": rows["predicate"].map(order).to_numpy(),
            "text": pd.Series(text, dtype=object),
        }
    )
    frame = frame[frame["text"] != ""]
    best = frame.sort_values(["node", "rank", "predicate", "text"], kind="stable").drop_duplicates("node")
    return dict(zip(best["node"].tolist(), best["text"].tolist()))


def type_name(class_iri: str) -> str:
    """A node type name from a class IRI: its local name with anything but ``[A-Za-z0-9_]``
    replaced by ``_`` (``http://schema.org/Movie`` -> ``Movie``). The graph builder keeps a
    class called ``user`` or ``item`` apart from its own node types of those names."""
    local = re.split(r"[/#:]", class_iri.rstrip("/#"))[-1]
    return re.sub(r"[^A-Za-z0-9_]", "_", local)
