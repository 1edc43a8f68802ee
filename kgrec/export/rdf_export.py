"""RDF export (N-Triples, Turtle, JSON-LD) in the kgrec vocabulary.

Items and entities keep their original IRIs where the graph has them; users, items without a
stored IRI, and behaviours are named in a small kgrec vocabulary under
``https://kgrec.org/ns/`` (an identifier space, not a web site; ``kgrec:`` is
``https://kgrec.org/ns#``). In short (the full account, with examples, is docs/vocabulary.md):

* ``kgrec:User``, ``kgrec:Item``: classes of users and items; each entity type ``T`` is the
  class ``type:T`` (``https://kgrec.org/ns/type/T``), ``rdfs:subClassOf kgrec:Entity``.
* ``user:{id}``, ``item:{id}``: users, and items without a stored IRI
  (``https://kgrec.org/ns/user/``, ``.../item/``; ids percent-encoded); ``kgrec:id`` keeps the
  original id as a string, for lookups.
* ``behaviour:{event}``: one predicate per behaviour, ``user behaviour:rate item``
  (``https://kgrec.org/ns/behaviour/``), each ``rdfs:subPropertyOf kgrec:interactedWith``.
* ``rdfs:label`` and ``schema:description``: a node's label and description.
* Knowledge edges: the original statement, ``head <predicate IRI> tail``.
* With a run: ``user kgrec:recommended item`` for each top-K entry, plus one
  ``kgrec:Recommendation`` per entry with ``kgrec:user``, ``kgrec:item``, ``kgrec:rank``
  (xsd:integer), ``kgrec:score`` (xsd:double) and ``kgrec:run``; ``kgrec:embedding`` holds a
  user's or item's learned vector, space-separated.

Behaviour statements are a set: repeated interactions of one user with one item by one event
give one triple (ratings and timestamps are in the graph formats, Neo4j and Parquet exports).

The statements are first built as a table of strings (:func:`triple_table`) with pandas, then
written straight out as N-Triples, Turtle and JSON-LD, escaped per the W3C grammars: rdflib's
Turtle and JSON-LD serializers each took over a minute for MovieLens-100K on a busy 2-core
machine, the direct writers a few seconds. rdflib loads the same table for SPARQL
(:func:`to_rdflib`), and the tests parse every format back with rdflib and compare the graphs.
"""

from __future__ import annotations

import json
from itertools import repeat
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef

from kgrec.errors import KgrecError
from kgrec.export.networkx_export import embedding_strings
from kgrec.export.subgraph import BEHAVIOUR, KGREC_BASE, KNOWLEDGE, RECOMMENDATION, ExportTables
from kgrec.graph.container import ITEM, USER
from kgrec.io import atomic_path

KGREC = Namespace(KGREC_BASE.rstrip("/") + "#")
USER_NS = Namespace(KGREC_BASE + "user/")
ITEM_NS = Namespace(KGREC_BASE + "item/")
BEHAVIOUR_NS = Namespace(KGREC_BASE + "behaviour/")
TYPE_NS = Namespace(KGREC_BASE + "type/")
RUN_NS = Namespace(KGREC_BASE + "run/")
SCHEMA = Namespace("http://schema.org/")  # the IRI the ingested data uses

#: Prefixes bound in every exported graph and available in every SPARQL query.
PREFIXES = {
    "kgrec": KGREC,
    "user": USER_NS,
    "item": ITEM_NS,
    "behaviour": BEHAVIOUR_NS,
    "type": TYPE_NS,
    "run": RUN_NS,
    "rdf": RDF,
    "rdfs": RDFS,
    "xsd": XSD,
    "schema": SCHEMA,
}

#: rdflib's name of each RDF export format (to parse the files back).
RDF_FORMATS = {"turtle": "turtle", "ntriples": "nt", "jsonld": "json-ld"}

IRI, LITERAL = "iri", "literal"
_XSD_STRING = ""  # plain literal


def class_iri(node_type: str) -> str:
    if node_type == USER:
        return str(KGREC.User)
    if node_type == ITEM:
        return str(KGREC.Item)
    return str(TYPE_NS) + quote(node_type, safe="")


def _block(s, p, o, kind: str, datatype: str = _XSD_STRING, language: str = "") -> pd.DataFrame:
    return pd.DataFrame({"s": s, "p": p, "o": o, "kind": kind, "datatype": datatype, "language": language})


def triple_table(tables: ExportTables) -> pd.DataFrame:
    """Every statement of the export, one row each, without duplicates.

    Columns: ``s`` and ``p`` (IRIs), ``o`` (an IRI or a literal's lexical form), ``kind``
    (``"iri"`` or ``"literal"``), ``datatype`` (a datatype IRI, or ``""`` for plain strings) and
    ``language`` (a language tag, or ``""``).

    The RDF the graph was built from comes back as it was written (classes, language-tagged
    and typed literals, IRI-to-IRI statements as knowledge edges); kgrec's vocabulary is added
    beside it. A node's label or description is written in kgrec's plain form only where the
    original RDF had none under that predicate.
    """
    nodes, edges = tables.nodes, tables.edges
    iris = nodes["iri"].to_numpy(dtype=object)
    types = nodes["type"].to_numpy(dtype=object)
    blocks = []

    # Vocabulary: the entity classes and behaviour predicates this export uses.
    entity_types = sorted(set(types.tolist()) - {USER, ITEM})
    behaviours = sorted(set(edges.loc[edges["kind"] == BEHAVIOUR, "relation"].tolist()))
    behaviour_iris = [str(BEHAVIOUR_NS) + quote(b, safe="") for b in behaviours]
    class_iris = [class_iri(t) for t in entity_types]
    blocks += [
        _block(class_iris, str(RDFS.subClassOf), str(KGREC.Entity), IRI),
        _block(class_iris, str(RDFS.label), entity_types, LITERAL),
        _block(behaviour_iris, str(RDFS.subPropertyOf), str(KGREC.interactedWith), IRI),
        _block(behaviour_iris, str(RDFS.label), behaviours, LITERAL),
    ]

    # Nodes: type, original id (users and items), label, description, embedding.
    classes = {t: class_iri(t) for t in set(types.tolist())}
    blocks.append(_block(iris, str(RDF.type), [classes[t] for t in types], IRI))
    user_or_item = np.isin(types, [USER, ITEM])
    blocks.append(_block(iris[user_or_item], str(KGREC.id), nodes["id"].to_numpy(dtype=object)[user_or_item], LITERAL))
    originals = tables.statements if tables.statements is not None and len(tables.statements) else None
    for column, predicate in (("label", RDFS.label), ("description", SCHEMA.description)):
        has = nodes[column].notna().to_numpy()
        if originals is not None:  # the input's own label/description wins over kgrec's plain copy
            said = originals.loc[(originals["object_kind"] == LITERAL) & (originals["predicate"] == str(predicate)), "subject"]
            has = has & ~pd.Series(iris).isin(said).to_numpy()
        blocks.append(_block(iris[has], str(predicate), nodes[column].to_numpy(dtype=object)[has], LITERAL))
    if tables.embeddings is not None:
        has = tables.has_embedding()
        vectors = np.asarray(embedding_strings(tables), dtype=object)
        blocks.append(_block(iris[has], str(KGREC.embedding), vectors[has], LITERAL))

    # Edges.
    src = iris[edges["source"].to_numpy()]
    dst = iris[edges["target"].to_numpy()]
    kind = edges["kind"].to_numpy(dtype=object)
    behaviour = kind == BEHAVIOUR
    predicates = str(BEHAVIOUR_NS) + edges.loc[behaviour, "relation"].map(lambda b: quote(b, safe=""))
    blocks.append(_block(src[behaviour], predicates.to_numpy(dtype=object), dst[behaviour], IRI))
    knowledge = kind == KNOWLEDGE
    blocks.append(_block(src[knowledge], edges.loc[knowledge, "predicate"].to_numpy(dtype=object), dst[knowledge], IRI))
    rec = kind == RECOMMENDATION
    if rec.any():
        users, items = src[rec], dst[rec]
        ranks = edges.loc[rec, "rank"].astype(np.int64).astype(str).to_numpy(dtype=object)
        scores = edges.loc[rec, "score"].map(repr).to_numpy(dtype=object)
        run = str(RUN_NS) + quote(tables.run_name or "run", safe="")
        user_keys = pd.Series(nodes["id"].to_numpy(dtype=object)[edges.loc[rec, "source"].to_numpy()]).map(
            lambda u: quote(str(u), safe="")
        )
        rec_iris = (run + "/recommendation/" + user_keys + "/" + ranks).to_numpy(dtype=object)
        blocks += [
            _block(users, str(KGREC.recommended), items, IRI),
            _block(rec_iris, str(RDF.type), str(KGREC.Recommendation), IRI),
            _block(rec_iris, str(KGREC.user), users, IRI),
            _block(rec_iris, str(KGREC.item), items, IRI),
            _block(rec_iris, str(KGREC.run), run, IRI),
            _block(rec_iris, str(KGREC.rank), ranks, LITERAL, str(XSD.integer)),
            _block(rec_iris, str(KGREC.score), scores, LITERAL, str(XSD.double)),
        ]
    if originals is not None:  # the RDF's own classes and literals, as written
        column = lambda name: originals[name].to_numpy(dtype=object)  # noqa: E731
        blocks.append(_block(column("subject"), column("predicate"), column("object"), column("object_kind"), column("datatype"), column("language")))
    table = pd.concat(blocks, ignore_index=True)
    return table.drop_duplicates(ignore_index=True)


def _escape_literal(values: pd.Series) -> pd.Series:
    """N-Triples STRING_LITERAL_QUOTE escaping: backslash, quote, line feed, carriage return."""
    return (
        values.str.replace("\\", "\\\\", regex=False)
        .str.replace('"', '\\"', regex=False)
        .str.replace("\n", "\\n", regex=False)
        .str.replace("\r", "\\r", regex=False)
    )


def ntriples_lines(table: pd.DataFrame) -> pd.Series:
    """One N-Triples line (with its newline) per row of a :func:`triple_table`."""
    o = table["o"].astype(str)
    is_iri = table["kind"] == IRI
    datatype = table["datatype"].astype(str)
    language = table["language"].astype(str)
    suffix = datatype.where(datatype == "", "^^<" + datatype + ">").where(language == "", "@" + language)
    literal = '"' + _escape_literal(o) + '"' + suffix
    obj = ("<" + o + ">").where(is_iri, literal)
    return "<" + table["s"].astype(str) + "> <" + table["p"].astype(str) + "> " + obj + " .\n"


def write_ntriples(table: pd.DataFrame, path: Path, chunk: int = 200_000) -> int:
    """Write N-Triples directly (no rdflib graph); returns the number of triples."""
    with atomic_path(Path(path), ".nt") as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        for start in range(0, len(table), chunk):
            f.write("".join(ntriples_lines(table.iloc[start : start + chunk]).tolist()))
    return len(table)


# Local names written as prefixed names: a conservative subset of Turtle's PN_LOCAL.
_SIMPLE_LOCAL = r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?$"


def _turtle_terms(values: pd.Series, prefixes: dict[str, str]) -> pd.Series:
    """IRIs as ``prefix:local`` where the local part is simple (:func:`_compact`), else ``<iri>``."""
    values = values.astype(str)
    compact = _compact(values, prefixes)
    return compact.where(compact != values, "<" + values + ">")


def turtle_text_chunks(table: pd.DataFrame, chunk: int = 200_000):
    """Turtle for a :func:`triple_table`: prefixes, then one block per subject (``;``-separated).

    Written with pandas string operations rather than rdflib's serializer, which takes minutes
    on a shared machine for a few hundred thousand triples; the tests parse the result back
    with rdflib and compare it with the N-Triples export.
    """
    prefixes = {prefix: str(ns) for prefix, ns in PREFIXES.items()}
    yield "".join(f"@prefix {prefix}: <{ns}> .\n" for prefix, ns in prefixes.items()) + "\n"
    # subject by subject, ``a`` first, then predicates in order (so same-predicate rows sit together)
    order = table.assign(_not_type=table["p"] != str(RDF.type)).sort_values(["s", "_not_type", "p"], kind="stable")
    table = table.loc[order.index].reset_index(drop=True)
    first_of_subject = (table["s"] != table["s"].shift(1)).to_numpy()
    last_of_subject = (table["s"] != table["s"].shift(-1)).to_numpy()
    for start in range(0, len(table), chunk):
        part = table.iloc[start : start + chunk]
        s = part["s"].astype(str)
        p = part["p"].astype(str)
        o = part["o"].astype(str)
        subject = _turtle_terms(s, prefixes)
        predicate = _turtle_terms(p, prefixes).where(p != str(RDF.type), "a")
        datatype = part["datatype"].astype(str)
        language = part["language"].astype(str)
        suffix = datatype.where(datatype == "", "^^" + _turtle_terms(datatype, prefixes)).where(language == "", "@" + language)
        literal = '"' + _escape_literal(o) + '"' + suffix
        plain_integer = (datatype == str(XSD.integer)) & o.str.fullmatch(r"[+-]?\d+")
        literal = literal.where(~plain_integer, o)  # integers need no quotes
        obj = _turtle_terms(o, prefixes).where(part["kind"] == IRI, literal)
        first = pd.Series(first_of_subject[start : start + chunk], index=part.index)
        last = pd.Series(last_of_subject[start : start + chunk], index=part.index)
        head = (subject + "\n    ").where(first, "    ")
        tail = pd.Series(" ;\n", index=part.index).where(~last, " .\n\n")
        yield "".join((head + predicate + " " + obj + tail).tolist())


def write_turtle(table: pd.DataFrame, path: Path) -> int:
    """Write Turtle directly (see :func:`turtle_text_chunks`); returns the number of triples."""
    with atomic_path(Path(path), ".ttl") as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        for text in turtle_text_chunks(table):
            f.write(text)
    return len(table)


def _compact(values: pd.Series, prefixes: dict[str, str]) -> pd.Series:
    """IRIs as ``prefix:local`` where the local part is simple, else unchanged (JSON-LD keys and ids)."""
    out = values.astype(str).copy()
    for prefix, ns in sorted(prefixes.items(), key=lambda kv: -len(kv[1])):
        todo = out.str.startswith(ns)
        if not todo.any():
            continue
        local = out[todo].str.slice(len(ns))
        ok = local.str.match(_SIMPLE_LOCAL)
        rows = local.index[ok.to_numpy()]
        out.loc[rows] = prefix + ":" + local[ok]
    return out


def jsonld_text(table: pd.DataFrame) -> str:
    """JSON-LD for a :func:`triple_table`: a context with the kgrec prefixes and one node object
    per subject in ``@graph`` (``@type`` for ``rdf:type``, arrays for every property).

    Assembled from JSON-escaped strings with pandas group-bys rather than with rdflib's
    serializer (over a minute for MovieLens-100K on a busy 2-core machine); the tests parse it
    back with rdflib and compare it with the N-Triples export.
    """
    prefixes = {prefix: str(ns) for prefix, ns in PREFIXES.items()}
    dumps = json.dumps
    s = _compact(table["s"], prefixes).map(dumps)
    is_type = table["p"] == str(RDF.type)
    key = _compact(table["p"], prefixes).map(dumps).where(~is_type, '"@type"')
    o_compact = _compact(table["o"], prefixes).map(dumps)
    o_literal = table["o"].astype(str).map(dumps)
    datatype = table["datatype"].astype(str)
    language = table["language"].astype(str)
    typed = '{"@value": ' + o_literal + ', "@type": ' + _compact(datatype, prefixes).map(dumps) + "}"
    tagged = '{"@value": ' + o_literal + ', "@language": ' + language.map(dumps) + "}"
    literal = o_literal.where(datatype == "", typed).where(language == "", tagged)
    obj = ('{"@id": ' + o_compact + "}").where(table["kind"] == IRI, literal).where(~is_type, o_compact)
    pairs = (
        pd.DataFrame({"s": s, "key": key, "obj": obj})
        .groupby(["s", "key"], sort=True)["obj"]
        .agg(", ".join)
        .reset_index()
    )
    pairs["text"] = pairs["key"] + ": [" + pairs["obj"] + "]"
    nodes = pairs.groupby("s", sort=True)["text"].agg(",\n    ".join)
    body = ",\n".join(("  {\n    \"@id\": " + nodes.index + ",\n    " + nodes + "\n  }").tolist())
    return '{\n"@context": ' + dumps(prefixes) + ',\n"@graph": [\n' + body + "\n]}\n"


def write_jsonld(table: pd.DataFrame, path: Path) -> int:
    """Write JSON-LD (see :func:`jsonld_text`); returns the number of triples."""
    with atomic_path(Path(path), ".jsonld") as tmp:
        tmp.write_text(jsonld_text(table), encoding="utf-8")
    return len(table)


def to_rdflib(table: pd.DataFrame) -> Graph:
    """Load a :func:`triple_table` into an rdflib graph (each distinct term is built once)."""
    g = Graph()
    for prefix, ns in PREFIXES.items():
        g.bind(prefix, ns, override=True, replace=True)

    def terms(values: pd.Series, make) -> np.ndarray:
        codes, uniques = pd.factorize(values, sort=False)
        return np.asarray([make(v) for v in uniques], dtype=object)[codes]

    s = terms(table["s"], URIRef)
    p = terms(table["p"], URIRef)
    literal_key = table["kind"] + "\x00" + table["datatype"] + "\x00" + table["language"].astype(str) + "\x00" + table["o"].astype(str)

    def make_object(key: str):
        kind, datatype, language, value = key.split("\x00", 3)
        if kind == IRI:
            return URIRef(value)
        if language:
            return Literal(value, lang=language)
        return Literal(value, datatype=URIRef(datatype) if datatype else None)

    o = terms(literal_key, make_object)
    g.addN(zip(s, p, o, repeat(g)))
    return g


def write_rdf(tables: ExportTables, path: Path, fmt: str) -> int:
    """Write ``tables`` as ``fmt`` (turtle, ntriples, jsonld); returns the number of triples."""
    if fmt not in RDF_FORMATS:
        raise KgrecError(f"unknown RDF format {fmt!r}; choose one of {', '.join(RDF_FORMATS)}")
    table = triple_table(tables)
    if fmt == "ntriples":
        return write_ntriples(table, path)
    if fmt == "turtle":
        return write_turtle(table, path)
    return write_jsonld(table, path)
