"""RDF files -> one rdflib graph, without ever touching the network or other local files.

A knowledge graph downloaded from the web is untrusted input. rdflib will happily dereference a
JSON-LD ``@context`` URL, XML parsers can be asked to resolve external entities, an RDF/XML
"billion laughs" document expands a few hundred bytes into gigabytes, and rdflib accepts IRIs
such as ``<http://example.org/a b>`` with no more than a logged warning. So, for every file:

* the bytes are checked first (:func:`kgrec.ingest.textscan.check_text`): binary data, a NUL
  byte or invalid UTF-8 is an error that names the line;
* JSON-LD is scanned before parsing; a ``@context`` or ``@import`` given by reference (a string
  rather than an inline object) is refused with a message saying to inline it, and so is an
  ``@id`` that cannot be an IRI (the JSON-LD parser would drop it without a word);
* RDF/XML entity declarations are read before the document: an entity that refers to other
  entities (the "billion laughs" pattern), an external entity, or declarations whose use would
  expand the document past :data:`MAX_ENTITY_EXPANSION` are refused at once. The document is then
  parsed by an expat reader built here with external entities switched off explicitly and
  character data buffered (rdflib's own reader joins text piece by piece, which takes quadratic
  time on a long literal);
* N-Triples and N-Quads are parsed line by line, so that an error names its line and lenient
  mode can drop a bad line and go on;
* every IRI of the result must be a usable absolute IRI (:func:`kgrec.ingest.iris.iri_problem`).

Files are handed to rdflib as bytes already read, never as names, so a path that looks like a
URL is never fetched either. In strict mode (the default) the first problem is a
:class:`~kgrec.errors.KgrecError`; in lenient mode bad N-Triples/N-Quads lines and statements
with an invalid IRI are dropped and counted in the build report (source ``"rdf"``). A syntax
error in the other formats stops the build in both modes: their parsers cannot resume after one.
"""

from __future__ import annotations

import json
import logging
import re
import xml.sax
import xml.sax.handler
from collections import Counter
from io import BytesIO
from contextlib import contextmanager
from pathlib import Path
from xml.parsers import expat
from xml.sax.expatreader import ExpatParser

import rdflib
from rdflib import Literal, URIRef
from rdflib.parser import InputSource
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.plugins.parsers.nquads import NQuadsParser
from rdflib.plugins.parsers.ntriples import ParseError, W3CNTriplesParser
from rdflib.plugins.parsers.rdfxml import ErrorHandler, RDFXMLHandler

from kgrec.errors import KgrecError
from kgrec.ingest.iris import _FORBIDDEN, has_lone_surrogate, iri_problem, shown
from kgrec.ingest.sources import BuildReport
from kgrec.ingest.textscan import check_text

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
_LINE_FORMATS = {"nt", "nquads"}
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
FORMAT_NAMES = {
    "turtle": "Turtle",
    "nt": "N-Triples",
    "xml": "RDF/XML",
    "json-ld": "JSON-LD",
    "n3": "N3",
    "trig": "TriG",
    "nquads": "N-Quads",
}
#: Most characters that RDF/XML entity references may add to a document, beyond 8 times its
#: size: a vocabulary abbreviation (``&rdf;``) used a million times stays far below it.
MAX_ENTITY_EXPANSION = 16 << 20
#: Text buffered by the XML reader before it hands it over (see the module docstring).
_XML_TEXT_BUFFER = 1 << 20

SOURCE = "rdf"
SYNTAX_ERROR = "syntax error"
INVALID_IRI = "invalid IRI"
BAD_ESCAPE = "invalid Unicode escape"
#: A \uD800-\uDFFF escape (JSON, Turtle, N-Triples): the only way text can end up holding half
#: a surrogate pair, so literals are checked for one only when the file has such an escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\\U0000[dD][89a-fA-F]")


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


def check_rdf_file(path: Path) -> None:
    """Raise a :class:`KgrecError` unless ``path`` is an existing file (not a folder)."""
    if path.is_dir():
        raise KgrecError("is a folder; give the RDF files themselves", path=path)
    if not path.is_file():
        raise KgrecError("RDF file not found", path=path)


def parse_rdf(
    path: str | Path,
    fmt: str | None = None,
    *,
    into: rdflib.Graph | None = None,
    lenient: bool = False,
    report: BuildReport | None = None,
) -> rdflib.Graph:
    """Parse one RDF file into a plain graph (named graphs of TriG / N-Quads are merged).

    Args:
        path: a local file.
        fmt: an rdflib format name, or None to take it from the extension.
        into: add the triples to this graph instead of a new one (to merge several files).
            Nothing is added when the file has an error.
        lenient: drop bad N-Triples/N-Quads lines and statements with an invalid IRI (counted
            in ``report``) instead of raising; an empty file becomes a note.
        report: receives the drops (source ``"rdf"``); a throwaway one when None.

    Raises:
        KgrecError: unknown format, a file that is missing, empty, binary or not UTF-8, a
            syntax error (with its line when known), an invalid IRI (strict mode), a JSON-LD
            document that references a remote context, or an RDF/XML document whose entities
            would be resolved from elsewhere or expand without bound.
    """
    path = Path(path)
    fmt = rdf_format(path, fmt)
    check_rdf_file(path)
    report = report if report is not None else BuildReport()
    name = FORMAT_NAMES[fmt]
    data = path.read_bytes()
    declared = _declared_xml_encoding(data) if fmt == "xml" else None
    text = check_text(data, path, expected=f"{name} text", encoding=declared or "utf-8")
    base = path.resolve().as_uri()

    if fmt == "json-ld":
        _check_jsonld(text, path, lenient, report)
    if fmt == "xml":
        _check_xml_entities(data, path)
    xml_bytes = data if fmt == "xml" else b""  # expat decodes as the XML declaration says
    del data
    with _quiet_rdflib():
        if fmt in _LINE_FORMATS:
            # checked line by line before anything is added, so the statements go straight in
            statements = _parse_lines(text, fmt, path, lenient, report)
            found = len(statements)
            graph = into if into is not None else rdflib.Graph()
            graph.addN((s, p, o, graph) for s, p, o in statements)
        else:
            parsed = rdflib.Graph()
            _parse_document(text, xml_bytes, fmt, path, base, parsed)
            _check_iris(parsed, text, base, path, lenient, report)
            found = len(parsed)
            if into is None:
                graph = parsed
            else:
                graph = into
                graph += parsed  # (rdflib's store makes this cost as much as the parse: avoid it for one file)

    if found == 0:
        message = f"holds no RDF statements (is it an empty or a truncated {name} file?)"
        if not lenient:
            raise KgrecError(message, path=path)
        report.note(f"{path}: {message}")
    return graph


# --------------------------------------------------------------------------- documents
def _parse_document(text: str, xml_bytes: bytes, fmt: str, path: Path, base: str, graph: rdflib.Graph) -> None:
    """Turtle, N3, TriG, JSON-LD or RDF/XML into ``graph``; syntax errors become KgrecErrors."""
    name = FORMAT_NAMES[fmt]
    try:
        if fmt == "xml":
            _parse_rdfxml(xml_bytes, base, graph)
        elif fmt in _QUAD_FORMATS:
            dataset = rdflib.Dataset()
            dataset.parse(data=text, format=fmt, publicID=base)
            for s, p, o, g in dataset.quads((None, None, None, None)):
                if isinstance(g, URIRef) and iri_problem(str(g)):
                    raise KgrecError(
                        f"{INVALID_IRI}: the graph name {shown(str(g))} {iri_problem(str(g))}",
                        path=path,
                        line=_line_of(text, str(g), base),
                    )
                graph.add((s, p, o))
        else:
            graph.parse(data=text, format=fmt, publicID=base)
    except BadSyntax as e:
        raise KgrecError(f"{name} {SYNTAX_ERROR}: {e._why}", path=path, line=e.lines + 1) from None
    except xml.sax.SAXParseException as e:
        if "amplification" in e.getMessage():  # expat's own guard against entity expansion
            raise KgrecError(
                f"RDF/XML refused: its entities expand it more than the XML parser allows ({e.getMessage()}; "
                "an entity-expansion bomb?)",
                path=path,
                line=e.getLineNumber(),
            ) from None
        raise KgrecError(f"{name} {SYNTAX_ERROR}: {e.getMessage()}", path=path, line=e.getLineNumber()) from None
    except json.JSONDecodeError as e:
        raise KgrecError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
    except KgrecError:
        raise
    except Exception as e:  # rdflib raises many types (ParserError, ValueError, ...) for bad input
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise KgrecError(f"cannot parse as {name}: {message}", path=path) from None


def _term_problem(term, escapes: bool) -> tuple[str, str] | None:
    """(reason, detail) when ``term`` cannot go into a graph: an invalid IRI, or (only possible
    when the text has ``\\uD800``-style ``escapes``) a literal holding half a surrogate pair."""
    if isinstance(term, URIRef):
        problem = iri_problem(str(term))
        return (INVALID_IRI, f"{INVALID_IRI}: {shown(str(term))} {problem}") if problem else None
    if escapes and isinstance(term, Literal) and has_lone_surrogate(str(term)):
        return BAD_ESCAPE, f"{BAD_ESCAPE}: the literal {shown(str(term))} holds half a UTF-16 surrogate pair"
    return None


def _check_iris(graph: rdflib.Graph, text: str, base: str, path: Path, lenient: bool, report: BuildReport) -> None:
    """Raise for (strict) or drop (lenient) the statements of ``graph`` with an unusable term."""
    escapes = bool(_SURROGATE_ESCAPE.search(text))
    terms = set(graph.all_nodes()) | set(graph.predicates(unique=True))
    bad = {t: problem for t in terms if (problem := _term_problem(t, escapes))}
    if not bad:
        return
    if not lenient:
        term = min(bad, key=lambda t: (_line_of(text, str(t), base) or 1 << 62, str(t)))
        raise KgrecError(bad[term][1], path=path, line=_line_of(text, str(term), base))
    doomed = Counter()
    for triple in list(graph):
        reasons = [bad[x][0] for x in triple if x in bad]
        if reasons:
            graph.remove(triple)
            doomed[reasons[0]] += 1
    for reason, n in doomed.items():
        report.read(SOURCE, n)
        report.dropped(SOURCE, reason, n)


def _line_of(text: str, iri: str, base: str) -> int | None:
    """The first line of ``text`` where ``iri`` is written out (as is, or relative to ``base``)."""
    folder = base.rsplit("/", 1)[0] + "/"
    candidates = [iri]
    if iri.startswith(base):
        candidates.append(iri[len(base) :])
    if iri.startswith(folder):
        candidates.append(iri[len(folder) :])
    for candidate in candidates:
        if candidate:
            at = text.find(candidate)
            if at >= 0:
                return text.count("\n", 0, at) + 1
    return None


@contextmanager
def _quiet_rdflib():
    """rdflib logs a warning for every odd IRI; kgrec reports those itself, once and clearly."""
    logger = logging.getLogger("rdflib.term")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------- N-Triples, N-Quads
class _LineSink:
    """Receives the one statement a line holds (both rdflib line parsers call into it)."""

    def __init__(self):
        self.default_context = self
        self.clear()

    def clear(self):
        self.statement = None
        self.context = None

    def triple(self, s, p, o):  # N-Triples
        self.statement = (s, p, o)

    def add(self, triple):  # N-Quads, default graph or named graph
        self.statement = triple

    def get_context(self, name):
        self.context = name
        return self


def _parse_lines(text: str, fmt: str, path: Path, lenient: bool, report: BuildReport) -> list[tuple]:
    """The statements of an N-Triples or N-Quads text (named graphs merged), line by line."""
    numbered = ((number, line.rstrip("\r")) for number, line in enumerate(text.split("\n"), start=1))
    return parse_numbered_lines(numbered, fmt, path, lenient, report)[0]


def parse_numbered_lines(
    lines, fmt: str, path: Path, lenient: bool, report: BuildReport
) -> tuple[list[tuple], list[int]]:
    """``(number, line)`` pairs of N-Triples or N-Quads through rdflib's line parser and
    kgrec's term checks; returns the statements and the line number of each.

    Strict mode stops at the first bad line with its number; lenient mode drops and counts
    bad lines by reason in ``report``. Blank lines and comments yield nothing. Both the
    whole-file path (:func:`_parse_lines`) and the vectorised reader's fallback for lines it
    does not split itself (:mod:`kgrec.ingest.statements`) go through here.
    """
    name = FORMAT_NAMES[fmt]
    statements: list[tuple] = []
    numbers: list[int] = []
    sink = _LineSink()
    parser = NQuadsParser() if fmt == "nquads" else W3CNTriplesParser()
    parser.sink = sink
    blank_nodes: dict = {}  # "_:b1" means the same node on every line of the file
    dropped: Counter = Counter()
    for number, line in lines:
        sink.clear()
        parser.line = line
        try:
            parser.parseline(blank_nodes)
        except ParseError as e:
            reason, detail = SYNTAX_ERROR, f"{name} {SYNTAX_ERROR}: {_line_error(str(e))}"
        else:
            if sink.statement is None:  # a blank line or a comment
                continue
            escapes = "\\u" in line or "\\U" in line
            problem = next(filter(None, (_term_problem(t, escapes) for t in [*sink.statement, sink.context])), None)
            if problem is None:
                statements.append(sink.statement)
                numbers.append(number)
                continue
            reason, detail = problem
        if not lenient:
            raise KgrecError(detail + " (or set lenient = true to drop and count bad lines)", path=path, line=number)
        dropped[reason] += 1
    for reason, n in dropped.items():
        report.read(SOURCE, n)
        report.dropped(SOURCE, reason, n)
    return statements, numbers


def _line_error(message: str) -> str:
    """rdflib's line-parser messages, without the regular expressions they sometimes show."""
    eaten = re.match(r"Failed to eat .* at (.*)$", message, re.S)
    if eaten:
        rest = eaten.group(1).strip()
        return f"unexpected text at {rest[:60]!r}" if rest else "the statement ends early (is the line cut short?)"
    return message.strip().splitlines()[0] if message.strip() else "cannot read the statement"


# --------------------------------------------------------------------------- JSON-LD
def _check_jsonld(text: str, path: Path, lenient: bool, report: BuildReport) -> None:
    """Refuse referenced contexts; refuse (strict) or count (lenient) unusable ``@id`` values."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise KgrecError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
    except RecursionError:
        raise KgrecError("JSON nested too deeply to be an RDF document", path=path) from None
    reference = _first_context_reference(data)
    if reference is not None:
        raise KgrecError(
            f"the JSON-LD document refers to the context {reference!r}; kgrec never fetches "
            "contexts (parsing touches no network): inline the context object in the file",
            path=path,
        )
    bad_ids = [value for value in _ids(data) if _FORBIDDEN.search(value)]
    if not bad_ids:
        return
    if not lenient:
        value = bad_ids[0]
        at = text.find(json.dumps(value)[1:-1])
        raise KgrecError(
            f"{INVALID_IRI}: the @id {shown(value)} {iri_problem(value)} "
            "(the JSON-LD parser would drop that node without a word)",
            path=path,
            line=text.count("\n", 0, at) + 1 if at >= 0 else None,
        )
    report.read(SOURCE, len(bad_ids))
    report.dropped(SOURCE, "invalid IRI (JSON-LD node left out)", len(bad_ids))


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


def _ids(node) -> list[str]:
    """Every string ``@id`` of a JSON-LD document (contexts left aside)."""
    found, stack = [], [node]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "@id" and isinstance(value, str):
                    found.append(value)
                elif key != "@context":
                    stack.append(value)
    return found


# --------------------------------------------------------------------------- RDF/XML
def _declared_xml_encoding(data: bytes) -> str | None:
    """The encoding an XML declaration names (``<?xml ... encoding="ISO-8859-1"?>``), if any.

    RDF/XML may legitimately be in another encoding when it says so; every other RDF format
    is UTF-8 by definition.
    """
    match = re.match(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""", data[:200])
    return match.group(1).decode("ascii") if match else None


class _EntityRefused(Exception):
    pass


class _PrologDone(Exception):
    pass


def _check_xml_entities(data: bytes, path: Path) -> None:
    """Read the DTD's entity declarations (and nothing after the root tag) and refuse bombs.

    Refused: an entity whose value refers to another entity (nesting is what lets a few hundred
    bytes expand to gigabytes), an external entity (kgrec never reads other files or URLs), and
    declarations whose references in the document would expand it by more than
    :data:`MAX_ENTITY_EXPANSION` characters plus eight times its size.
    """
    if b"<!ENTITY" not in data:
        return
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    sizes: dict[str, int] = {}

    def declared(name, is_parameter, value, base, system_id, public_id, notation):
        kind = "parameter entity" if is_parameter else "entity"
        if value is None:
            raise _EntityRefused(
                f"the external {kind} {name!r} ({system_id or public_id}) would be read from elsewhere; "
                "kgrec never resolves external XML entities (parsing touches no network and no other file)"
            )
        if "&" in value or "%" in value:
            raise _EntityRefused(
                f"the {kind} {name!r} refers to other entities (nested expansion, as in the "
                "'billion laughs' attack); kgrec refuses such documents"
            )
        if not is_parameter:
            sizes[name] = len(value)

    def root(*_):
        raise _PrologDone

    parser.EntityDeclHandler = declared
    parser.StartElementHandler = root
    try:
        parser.Parse(data, True)
    except _PrologDone:
        pass
    except _EntityRefused as e:
        raise KgrecError(f"RDF/XML refused: {e}", path=path, line=parser.CurrentLineNumber) from None
    except expat.ExpatError:
        return  # a syntax error: the parse proper reports it with its line
    if not sizes:
        return
    uses = Counter(m.group(1).decode("utf-8", "replace") for m in re.finditer(rb"&([^\s;&#%<>]+);", data))
    expansion = sum(sizes.get(name, 0) * n for name, n in uses.items())
    if expansion > MAX_ENTITY_EXPANSION + 8 * len(data):
        raise KgrecError(
            f"RDF/XML refused: its entity references would expand the {len(data):,}-byte document by "
            f"{expansion:,} characters (an entity-expansion bomb?)",
            path=path,
        )


class _SafeExpatReader(ExpatParser):
    """The stdlib SAX reader, with external entities off and character data buffered."""

    def reset(self):
        super().reset()
        self._parser.buffer_text = True
        self._parser.buffer_size = _XML_TEXT_BUFFER


def _parse_rdfxml(data: bytes, base: str, graph: rdflib.Graph) -> None:
    """rdflib's RDF/XML parse (``RDFXMLParser.parse``), on a reader configured here."""
    source = InputSource(system_id=base)  # bytes, so that expat honours a declared encoding
    source.setByteStream(BytesIO(data))
    source.setPublicId(base)
    reader = _SafeExpatReader(namespaceHandling=1)
    reader.setFeature(xml.sax.handler.feature_external_ges, False)
    reader.setFeature(xml.sax.handler.feature_external_pes, False)
    reader.start_namespace_decl("xml", "http://www.w3.org/XML/1998/namespace")
    handler = RDFXMLHandler(graph)
    handler.setDocumentLocator(source)  # rdflib's handler reads the base IRI from it
    reader.setContentHandler(handler)
    reader.setErrorHandler(ErrorHandler())
    reader.parse(source)
