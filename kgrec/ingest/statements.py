"""RDF as a table of statements, with a vectorised reader for N-Triples and N-Quads.

An rdflib graph costs about a kilobyte and tens of microseconds per statement: Amazon-Book's
2.5 million triples took minutes and gigabytes before kgrec saw them. The graph builder never
needs rdflib's terms, only strings, so :func:`ingest <kgrec.ingest.ingest>` works on a table
(:data:`STATEMENT_COLUMNS`): one row per statement, subject, predicate and object as strings,
the kinds of subject and object (IRI, literal, blank node), a literal's language and datatype.

:func:`read_statements` fills it:

* **N-Triples and N-Quads**: the file is read in blocks of whole lines (:data:`BLOCK_BYTES`), so
  memory follows the statements kept, not the size of the text. A first pass makes the checks
  :func:`~kgrec.ingest.textscan.check_text` makes (binary data, NUL bytes, invalid UTF-8 name
  their line, with the same precedence); then, block by block, one regular expression, run by pyarrow over every line at
  once, recognises the lines that are plainly well formed (absolute IRIs of printable ASCII
  without ``<>"{}|^`\\``, plain or language-tagged literals without escapes, one space between
  terms, ``.`` at the end), and plain string splits take them apart:
  by construction their terms are what rdflib would make of them and pass every check kgrec
  makes. Every other line (escapes, datatypes, blank nodes, comments after the statement,
  non-ASCII IRIs, and of course every broken line) goes through the very same rdflib line
  parser and term checks as :func:`kgrec.ingest.rdf.parse_rdf`, in file order, so errors,
  line numbers and lenient drops are exactly the same as there;
* **other formats**: :func:`~kgrec.ingest.rdf.parse_rdf`, then :func:`graph_statements`.

A graph is a set, and so is the table once :func:`unique_statements` has dropped repeats
(language tags compared case-insensitively, as rdflib does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import rdflib
from rdflib import BNode, Literal

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import (
    _LINE_FORMATS,
    FORMAT_NAMES,
    _quiet_rdflib,
    check_rdf_file,
    parse_numbered_lines,
    parse_rdf,
    rdf_format,
)
from kgrec.ingest.sources import BuildReport
from kgrec.ingest.textscan import NOT_UTF8, check_not_binary

#: Columns of a statement table.
STATEMENT_COLUMNS = ["subject", "subject_kind", "predicate", "object", "object_kind", "language", "datatype"]
IRI, LITERAL, BLANK = 0, 1, 2  # values of subject_kind / object_kind
#: Bytes of whole lines read and parsed at once: memory stays bounded by it, not by the file.
BLOCK_BYTES = 64 << 20

# Printable ASCII but the characters IRIREF forbids: such IRIs pass iri_problem, and rdflib's
# line parser keeps them as they are.
_IRI = r"[A-Za-z][A-Za-z0-9+.\-]*:[\x21\x23-\x3b\x3d\x3f-\x5b\x5d\x5f\x61-\x7a\x7e]*"
# The fast path's lines: terms separated by one space each (as rdflib and most tools write them),
# so that a plain split finds them; any other spacing is still read, by the slow path.
_OBJECT = r'(?:<' + _IRI + r'>|"[^"\\\r\n]*"(?:@[a-zA-Z]+(?:-[a-zA-Z0-9]+)*)?)'
_TAIL = r"[ \t]*\.[ \t]*\r?$"
_PATTERNS = {
    "nt": r"^<" + _IRI + r"> <" + _IRI + r"> " + _OBJECT + _TAIL,
    "nquads": r"^<" + _IRI + r"> <" + _IRI + r"> " + _OBJECT + r"(?: <" + _IRI + r">)?" + _TAIL,
}
_END = 1 << 30  # "to the end of the string" for utf8_slice_codeunits


def empty_statements() -> pd.DataFrame:
    return _frame([], [], [], [], [], [], [])


def _frame(subject, subject_kind, predicate, obj, object_kind, language, datatype) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject": pd.Series(subject, dtype="str"),
            "subject_kind": pd.Series(subject_kind, dtype=np.int8),
            "predicate": pd.Series(predicate, dtype="str"),
            "object": pd.Series(obj, dtype="str"),
            "object_kind": pd.Series(object_kind, dtype=np.int8),
            "language": pd.Series(language, dtype="str"),
            "datatype": pd.Series(datatype, dtype="str"),
        }
    )


def _kind(term) -> int:
    return BLANK if isinstance(term, BNode) else LITERAL if isinstance(term, Literal) else IRI


def terms_to_statements(triples) -> pd.DataFrame:
    """rdflib ``(s, p, o)`` triples -> a statement table, in the order given."""
    columns: list[list] = [[], [], [], [], [], [], []]
    for s, p, o in triples:
        columns[0].append(str(s))
        columns[1].append(_kind(s))
        columns[2].append(str(p))
        columns[3].append(str(o))
        columns[4].append(_kind(o))
        literal = isinstance(o, Literal)
        columns[5].append(o.language if literal and o.language else None)
        columns[6].append(str(o.datatype) if literal and o.datatype is not None else None)
    return _frame(*columns)


def graph_statements(graph: rdflib.Graph) -> pd.DataFrame:
    """Every statement of an rdflib graph, as a table."""
    return terms_to_statements(graph)


def unique_statements(statements: pd.DataFrame) -> pd.DataFrame:
    """The table as a set: repeats dropped (the first kept), language tags compared case-blind."""
    key = statements.drop(columns=["language"]).assign(language=statements["language"].str.lower())
    return statements.loc[~key.duplicated().to_numpy()].reset_index(drop=True)


def statement_iris(statements: pd.DataFrame) -> set[str]:
    """Every IRI that is a subject or an object (what :func:`~kgrec.ingest.matching.resource_iris`
    gives for a graph)."""
    subjects = statements["subject"][statements["subject_kind"].to_numpy() == IRI]
    objects = statements["object"][statements["object_kind"].to_numpy() == IRI]
    return set(pd.unique(pd.concat([subjects, objects], ignore_index=True)).tolist())


# --------------------------------------------------------------------------- reading
def read_statements(
    path: str | Path, fmt: str | None = None, *, lenient: bool = False, report: BuildReport | None = None
) -> pd.DataFrame:
    """The statements of one RDF file (named graphs merged), in file order, repeats kept.

    Same arguments, checks and errors as :func:`kgrec.ingest.rdf.parse_rdf`, whose result it
    is as a table; N-Triples and N-Quads take the vectorised path (see the module docstring).
    """
    path = Path(path)
    fmt = rdf_format(path, fmt)
    if fmt not in _LINE_FORMATS:
        return graph_statements(parse_rdf(path, fmt, lenient=lenient, report=report))
    check_rdf_file(path)
    report = report if report is not None else BuildReport()
    name = FORMAT_NAMES[fmt]
    _check_bytes(path, expected=f"{name} text")  # binary, NUL, invalid UTF-8: before any parsing
    with _quiet_rdflib():
        statements = _read_lines(path, fmt, lenient, report)
    if len(statements) == 0:
        message = f"holds no RDF statements (is it an empty or a truncated {name} file?)"
        if not lenient:
            raise KgrecError(message, path=path)
        report.note(f"{path}: {message}")
    return statements


def _blocks(path: Path, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(number of its first line, bytes) of blocks of whole lines of ``path``, a byte order mark
    left out, so that memory stays bounded by the block size rather than the file's."""
    with path.open("rb") as handle:
        carry, line, first = b"", 1, True
        while True:
            chunk = handle.read(block_bytes)
            if first:
                chunk, first = chunk.removeprefix(b"\xef\xbb\xbf"), False
            data = carry + chunk if carry else chunk
            if not chunk:
                if data:
                    yield line, data
                return
            cut = data.rfind(b"\n")
            if cut < 0:  # a line longer than a block: read on
                carry = data
                continue
            yield line, data[: cut + 1]
            line += data.count(b"\n", 0, cut + 1)
            carry = data[cut + 1 :]


def _check_bytes(path: Path, expected: str) -> None:
    """The checks and messages of :func:`~kgrec.ingest.textscan.check_text`, block by block: a
    file that is not text; then the first NUL byte anywhere; then the first invalid UTF-8."""
    with path.open("rb") as handle:
        check_not_binary(path, handle.read(4096), expected)
    bad = None
    for line, block in _blocks(path, BLOCK_BYTES):
        nul = block.find(b"\x00")
        if nul >= 0:
            raise KgrecError(
                "holds a NUL (0x00) byte, which no RDF text may hold (a binary file, or a broken copy?)",
                path=path,
                line=line + block.count(b"\n", 0, nul),
            )
        if bad is None:
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as e:
                column = e.start - (block.rfind(b"\n", 0, e.start) + 1) + 1
                bad = KgrecError(
                    f"{NOT_UTF8}: byte 0x{block[e.start:e.start + 1].hex()} at column {column} is not UTF-8 "
                    "(save the file as UTF-8)",
                    path=path,
                    line=line + block.count(b"\n", 0, e.start),
                )
    if bad is not None:
        raise bad


def _split_lines(data: bytes) -> pa.Array:
    """The lines of ``data`` (split at ``\\n``, as ``str.split`` does), without Python strings."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    whole = pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data))
    return pc.split_pattern(whole, "\n").values


def _read_lines(path: Path, fmt: str, lenient: bool, report: BuildReport) -> pd.DataFrame:
    pattern = _PATTERNS[fmt]
    parts: list[pd.DataFrame] = []
    line_numbers: list[np.ndarray] = []
    slow: list[tuple[int, str]] = []
    for first_line, data in _blocks(path, BLOCK_BYTES):
        lines = _split_lines(data)
        del data
        good = pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False)
        for k in np.flatnonzero(~good):
            line = lines[int(k)].as_py().rstrip("\r")
            rest = line.lstrip(" \t")
            if rest and not rest.startswith("#"):  # not a blank line or a comment
                slow.append((first_line + int(k), line))
        if good.any():
            parts.append(_fast_statements(lines.filter(pa.array(good)).cast(pa.string())))
            line_numbers.append(first_line + np.flatnonzero(good))
    if slow:  # in file order, after every block: the first bad line is the one named
        parsed, numbers = _parse_slow_lines(slow, fmt, path, lenient, report)
        parts.append(parsed)
        line_numbers.append(numbers)
    if not parts:
        return empty_statements()
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if slow:  # back to file order
        table = table.iloc[np.argsort(np.concatenate(line_numbers), kind="stable")].reset_index(drop=True)
    return table


def _fast_statements(lines: pa.Array) -> pd.DataFrame:
    """The statements of lines that match the fast pattern: plain splits, no regular expression.

    ``<s> <p> REST``: the subject and predicate are the first two space-separated fields without
    their brackets; an IRI object runs to the first ``>`` of REST, a literal lies between its
    first two ``"`` (a fast-path literal holds no other), a language tag follows ``"@`` up to a
    space, a tab, the final ``.`` or a line end.
    """
    fields = pc.split_pattern(lines, " ", max_splits=2)
    subject = pc.utf8_slice_codeunits(pc.list_element(fields, 0), 1, -1)
    predicate = pc.utf8_slice_codeunits(pc.list_element(fields, 1), 1, -1)
    rest = pc.list_element(fields, 2)
    del fields
    iri_object = pc.starts_with(rest, "<")
    iri = pc.utf8_slice_codeunits(pc.list_element(pc.split_pattern(rest, ">", max_splits=1), 0), 1, _END)
    # the two quotes added make every row split into three, IRI objects too
    quoted = pc.split_pattern(pc.binary_join_element_wise(rest, '""', ""), '"', max_splits=2)
    text, after = pc.list_element(quoted, 1), pc.list_element(quoted, 2)
    del quoted, rest
    tag = pc.list_element(pc.split_pattern(pc.utf8_slice_codeunits(after, 1, _END), " ", max_splits=1), 0)
    tag = pc.utf8_rtrim(tag, characters=' \t.\r"')
    language = pc.if_else(pc.and_(pc.invert(iri_object), pc.starts_with(after, "@")), tag, pa.scalar(None, pa.string()))
    return pd.DataFrame(
        {
            "subject": pd.Series(subject, dtype="str"),
            "subject_kind": np.zeros(len(lines), dtype=np.int8),
            "predicate": pd.Series(predicate, dtype="str"),
            "object": pd.Series(pc.if_else(iri_object, iri, text), dtype="str"),
            "object_kind": np.where(iri_object.to_numpy(zero_copy_only=False), IRI, LITERAL).astype(np.int8),
            "language": pd.Series(language, dtype="str"),
            "datatype": pd.Series(pa.nulls(len(lines), pa.string()), dtype="str"),
        }
    )


def _parse_slow_lines(
    lines: list[tuple[int, str]], fmt: str, path: Path, lenient: bool, report: BuildReport
) -> tuple[pd.DataFrame, np.ndarray]:
    """The lines the fast path left, through rdflib's line parser and kgrec's term checks
    (:func:`kgrec.ingest.rdf.parse_numbered_lines`, the same code as the whole-file path)."""
    statements, numbers = parse_numbered_lines(lines, fmt, path, lenient, report)
    return terms_to_statements(statements), np.array(numbers, dtype=np.int64)
