"""RDF files -> one rdflib graph, without ever touching the network.

rdflib will happily dereference a JSON-LD ``@context`` URL (or ``@import``) while parsing, and
XML parsers can be asked to resolve external entities. A knowledge graph downloaded from the
web must not make kgrec open connections or read other local files, so:

* JSON-LD is scanned before parsing; any ``@context`` or ``@import`` given by reference (a
  string rather than an inline object) is refused with a message saying to inline it;
* RDF/XML goes through Python's SAX reader, whose external general and parameter entities
  are off by default (Python >= 3.7.1); :func:`parse_rdf` checks that nobody switched them on.

Files are handed to rdflib as open file objects, never as names, so a path that looks like a
URL is never fetched either.
"""

from __future__ import annotations

import json
import xml.sax
import xml.sax.handler
from pathlib import Path

import rdflib
from rdflib.plugins.parsers.notation3 import BadSyntax

from kgrec.errors import KgrecError

#: File extension -> rdflib format name.
RDF_EXTENSIONS: dict[str, str] = {
    ".ttl": "turtle",
    ".nt": "nt",
    ".rdf": "xml",
    ".owl": "xml",
    ".xml": "xml",
    ".jsonld": "json-ld",
    ".json": "json-ld",
    ".n3": "n3",
    ".trig": "trig",
    ".nq": "nquads",
}
#: Formats whose statements live in named graphs; kgrec merges all graphs into one.
_QUAD_FORMATS = {"trig", "nquads"}
_FORMAT_ALIASES = {
    "ttl": "turtle",
    "ntriples": "nt",
    "nt11": "nt",
    "rdf/xml": "xml",
    "application/rdf+xml": "xml",
    "jsonld": "json-ld",
    "nq": "nquads",
}
KNOWN_FORMATS = sorted(set(RDF_EXTENSIONS.values()))


def rdf_format(path: Path, fmt: str | None) -> str:
    """The rdflib format for ``path``: ``fmt`` when given, else from the file extension."""
    if fmt:
        fmt = _FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
        if fmt not in KNOWN_FORMATS:
            raise KgrecError(f"unknown RDF format {fmt!r} (known: {', '.join(KNOWN_FORMATS)})", path=path)
        return fmt
    suffix = path.suffix.lower()
    if suffix not in RDF_EXTENSIONS:
        raise KgrecError(
            f"cannot tell the RDF format from the extension {suffix or '(none)'!r} "
            f"(known: {', '.join(RDF_EXTENSIONS)}); name it with --rdf-format "
            f"(rdf.format in the graph spec), one of {', '.join(KNOWN_FORMATS)}",
            path=path,
        )
    return RDF_EXTENSIONS[suffix]


def parse_rdf(path: str | Path, fmt: str | None = None, *, into: rdflib.Graph | None = None) -> rdflib.Graph:
    """Parse one RDF file into a plain graph (named graphs of TriG / N-Quads are merged).

    Args:
        path: a local file.
        fmt: an rdflib format name, or None to take it from the extension.
        into: add the triples to this graph instead of a new one (to merge several files).

    Raises:
        KgrecError: unknown format, a syntax error (with its line when the parser gives one),
            or a JSON-LD document that references a remote context.
    """
    path = Path(path)
    fmt = rdf_format(path, fmt)
    if not path.is_file():
        raise KgrecError("RDF file not found", path=path)
    graph = into if into is not None else rdflib.Graph()
    if fmt == "json-ld":
        _refuse_referenced_contexts(path)
    if fmt == "xml":
        _check_xml_entities_off()
    target = rdflib.Dataset() if fmt in _QUAD_FORMATS else graph
    try:
        with path.open("rb") as handle:
            target.parse(file=handle, format=fmt, publicID=path.resolve().as_uri())
    except BadSyntax as e:
        raise KgrecError(f"{fmt} syntax error: {e._why}", path=path, line=e.lines + 1) from None
    except xml.sax.SAXParseException as e:
        raise KgrecError(
            f"RDF/XML syntax error: {e.getMessage()}", path=path, line=e.getLineNumber()
        ) from None
    except json.JSONDecodeError as e:
        raise KgrecError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise KgrecError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    except KgrecError:
        raise
    except Exception as e:  # rdflib raises many types (ParserError, ValueError, ...) for bad input
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise KgrecError(f"cannot parse as {fmt}: {message}", path=path) from None
    if target is not graph:
        for s, p, o, _ in target.quads((None, None, None, None)):  # every named graph
            graph.add((s, p, o))
    return graph


def _refuse_referenced_contexts(path: Path) -> None:
    """Raise if a JSON-LD document would make rdflib load a context from elsewhere."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise KgrecError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise KgrecError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    reference = _first_context_reference(data)
    if reference is not None:
        raise KgrecError(
            f"the JSON-LD document refers to the context {reference!r}; kgrec never fetches "
            "contexts (parsing touches no network): inline the context object in the file",
            path=path,
        )


def _first_context_reference(node) -> str | None:
    """The first ``@context`` / ``@import`` value that is a reference rather than an object."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("@context", "@import"):
                    for entry in value if isinstance(value, list) else [value]:
                        if isinstance(entry, str):
                            return entry
                stack.append(value)
    return None


def _check_xml_entities_off() -> None:
    """rdflib's RDF/XML parser uses ``xml.sax.make_parser()``; its external entities must be off."""
    parser = xml.sax.make_parser()
    for feature in (xml.sax.handler.feature_external_ges, xml.sax.handler.feature_external_pes):
        if parser.getFeature(feature):
            raise KgrecError(
                "the installed SAX parser resolves external XML entities by default; "
                "kgrec refuses to parse RDF/XML with it"
            )
