"""Byte-level checks of text inputs, before any parser sees them.

pandas, json and rdflib each react differently to bytes that are not text: one stops with a
``UnicodeDecodeError`` that names a byte offset, another keeps a NUL byte inside an id, a third
buffers a 4 GB "line" in memory. This module looks at the raw bytes once, in blocks of bounded
size, and names each problem by its **line**, so that every reader can say
``file, line N: <what is wrong>`` and, in lenient mode, skip exactly those lines.

It also recognises files that are not text at all (a gzip stream without ``.gz``, a Parquet or
zip file under a text extension, UTF-16 from a spreadsheet) and says what they are.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kgrec.errors import KgrecError

#: Longest line a log may hold (bytes, without the line break). A log record is a few dozen
#: bytes; a line of megabytes is a broken export (or an attack), and buffering it whole is how
#: a parser runs out of memory.
MAX_LINE_BYTES = 1 << 20
#: Bytes read at a time: bounds the memory of a scan whatever the file's size.
BLOCK_BYTES = 8 << 20

NOT_UTF8 = "not UTF-8 text"
NUL_BYTE = "NUL byte"
LINE_TOO_LONG = "line too long"

_MAGIC = [
    (b"\x1f\x8b", "gzip-compressed data (give the file a .gz suffix, e.g. log.csv.gz)"),
    (b"PAR1", "a Parquet file (name it .parquet, or say --format parquet)"),
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook is one); unpack it or export the sheet as CSV"),
    (b"\xff\xfe", "UTF-16 text (as some spreadsheets export it); save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text (as some spreadsheets export it); save it as UTF-8"),
    (b"BZh", "bzip2-compressed data; decompress it first"),
    (b"\xfd7zXZ\x00", "xz-compressed data; decompress it first"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
]


@dataclass(frozen=True)
class LineProblem:
    """A line that cannot be a record: its 1-based number, the reason and a detail for people."""

    line: int
    reason: str
    detail: str

    def message(self) -> str:
        return f"{self.reason}: {self.detail}"


def what_binary(head: bytes) -> str | None:
    """What a file that starts with ``head`` is, when it is plainly not UTF-8 text; else None.

    Known formats are named by their magic number; other data counts as binary when its first
    bytes hold a NUL or many bytes that are neither printable text nor valid UTF-8.
    """
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    sample = head[:4096]
    if sample.count(b"\x00") > len(sample) // 4:
        return "UTF-16 text or binary data (a quarter of its first bytes are NUL); save it as UTF-8 text"
    text = sample.decode("utf-8", errors="replace")
    odd = sum(1 for c in text if c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f"))
    if odd > max(8, len(text) // 10):
        return "binary data, not text"
    return None


@contextmanager
def open_bytes(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading bytes, decompressing a ``.gz`` file, with clean errors.

    A damaged gzip stream shows itself only while reading; :func:`read_block` turns that into a
    :class:`KgrecError` too.
    """
    path = Path(path)
    if path.suffix.lower() == ".gz":
        with open(path, "rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                raise KgrecError("the file is named .gz but is not gzip-compressed", path=path)
        handle = gzip.open(path, "rb")
    else:
        handle = open(path, "rb")
    with handle:
        yield handle


def read_block(handle: BinaryIO, size: int, path: Path) -> bytes:
    """``handle.read(size)``, with a truncated or corrupt gzip stream as a :class:`KgrecError`."""
    try:
        return handle.read(size)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise KgrecError(f"damaged gzip data ({e or 'the stream ends early'})", path=path) from None


def check_not_binary(path: Path, head: bytes, expected: str) -> None:
    """Raise when ``head`` (the first bytes of ``path``) shows the file is not text."""
    what = what_binary(head)
    if what is not None:
        raise KgrecError(f"expected {expected}, but the file is {what}", path=path)


def scan_lines(
    path: Path, *, max_line_bytes: int = MAX_LINE_BYTES, first_only: bool = False, expected: str = "text"
) -> list[LineProblem]:
    """Every line of ``path`` that holds invalid UTF-8, a NUL byte or too many bytes.

    Reads the file (decompressed when ``.gz``) in blocks of :data:`BLOCK_BYTES`, so memory stays
    bounded however large the file and however long its lines. Line breaks are ``\\n``
    (``\\r\\n`` works too). A file that is not text at all is an error here, whatever the mode.

    Args:
        path: the file.
        max_line_bytes: longer lines are problems (:data:`LINE_TOO_LONG`).
        first_only: stop at the first problem (strict mode wants no more).
        expected: what the file should be, for the not-text message ("a CSV log").

    Returns:
        The problems in line order, at most one per line.
    """
    problems: list[LineProblem] = []
    carry = b""  # the start of a line whose end is in a later block
    skipping = False  # inside a line already reported as too long: discard up to its end
    line = 1  # number of the line that starts at carry[0]
    first = True
    with open_bytes(path) as handle:
        while True:
            block = read_block(handle, BLOCK_BYTES, path)
            if first:
                check_not_binary(path, block, expected)
                if block.startswith(b"\xef\xbb\xbf"):
                    block = block[3:]  # a UTF-8 byte-order mark is not part of line 1
                first = False
            at_end = not block
            if at_end and not carry and not skipping:
                break
            if skipping:
                cut = block.find(b"\n")
                if cut < 0 and not at_end:
                    continue
                skipping = False
                line += 1
                block = b"" if cut < 0 else block[cut + 1 :]
                if at_end:
                    break
            data = carry + block
            cut = len(data) - 1 if at_end else data.rfind(b"\n")
            if cut < 0:  # no line break yet: all of it belongs to one line
                if len(data) > max_line_bytes:
                    problems.append(_too_long(line, len(data), max_line_bytes, more=True))
                    carry, skipping = b"", True
                    if first_only:
                        break
                else:
                    carry = data
                continue
            whole, carry = data[: cut + 1], data[cut + 1 :]
            found = _block_problems(whole, line, max_line_bytes)
            problems.extend(found)
            if first_only and found:
                break
            line += whole.count(b"\n")
            if at_end:
                break
    problems.sort(key=lambda p: p.line)
    return problems[:1] if first_only else problems


def _too_long(line: int, size: int, limit: int, more: bool = False) -> LineProblem:
    return LineProblem(
        line,
        LINE_TOO_LONG,
        f"{'more than ' if more else ''}{size:,} bytes (the limit is {limit:,}; "
        "is it a single-line dump rather than a log with one record per line?)",
    )


def _block_problems(whole: bytes, first_line: int, max_line_bytes: int) -> list[LineProblem]:
    """Problems of a run of complete lines (``whole`` ends with ``\\n`` unless at the file's end)."""
    found: dict[int, LineProblem] = {}
    codes = np.frombuffer(whole, dtype=np.uint8)
    breaks = np.flatnonzero(codes == 10)  # position of every "\n"
    ends = breaks if (len(breaks) and breaks[-1] == len(whole) - 1) else np.append(breaks, len(whole))
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    for k in np.flatnonzero(lengths > max_line_bytes):
        found.setdefault(first_line + int(k), _too_long(first_line + int(k), int(lengths[k]), max_line_bytes))
    if b"\x00" in whole:
        for k in np.unique(np.searchsorted(breaks, np.flatnonzero(codes == 0))):
            found.setdefault(first_line + int(k), LineProblem(first_line + int(k), NUL_BYTE, "the line holds a NUL (0x00) byte"))
    try:
        whole.decode("utf-8")
    except UnicodeDecodeError:
        for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
            try:
                whole[start:end].decode("utf-8")
            except UnicodeDecodeError as e:
                bad = whole[start + e.start : start + e.start + 1]
                found.setdefault(
                    first_line + k,
                    LineProblem(
                        first_line + k,
                        NOT_UTF8,
                        f"byte 0x{bad.hex()} at column {e.start + 1} is not UTF-8 (save the file as UTF-8)",
                    ),
                )
    return sorted(found.values(), key=lambda p: p.line)


def line_of_offset(data: bytes, offset: int) -> int:
    """The 1-based line that byte ``offset`` of ``data`` lies on."""
    return data.count(b"\n", 0, offset) + 1


def check_text(data: bytes, path: Path, expected: str, encoding: str = "utf-8") -> str:
    """Decode a whole file that is read into memory anyway (RDF), naming the line of a problem.

    ``encoding`` is UTF-8 unless the file declares another (an XML declaration may).

    Raises:
        KgrecError: the data is binary, holds a NUL byte, or is not text in ``encoding``.
    """
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "us-ascii", "ascii"):
        try:
            return data.decode(encoding)
        except LookupError:
            raise KgrecError(f"the file declares the unknown encoding {encoding!r}", path=path) from None
        except UnicodeDecodeError as e:
            raise KgrecError(
                f"not {encoding} text as it declares (byte 0x{data[e.start:e.start + 1].hex()})",
                path=path,
                line=line_of_offset(data, e.start),
            ) from None
    check_not_binary(path, data, expected)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul >= 0:
        raise KgrecError(
            "holds a NUL (0x00) byte, which no RDF text may hold (a binary file, or a broken copy?)",
            path=path,
            line=line_of_offset(data, nul),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = line_of_offset(data, e.start)
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise KgrecError(
            f"{NOT_UTF8}: byte 0x{data[e.start:e.start + 1].hex()} at column {column} is not UTF-8 "
            "(save the file as UTF-8)",
            path=path,
            line=line,
        ) from None
