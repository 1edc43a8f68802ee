"""Interaction logs (CSV, TSV, Parquet, JSONL) -> one validated table of positive events.

Every format is read in chunks of raw records; each chunk goes through the same checks
(:func:`_check_chunk`), so a rule is written once and holds for all formats. In strict mode
the first bad record stops the build with its file and line; in lenient mode bad records are
dropped and counted per reason in the :class:`~kgrec.ingest.sources.BuildReport`, because a
researcher with a 50-million-row log wants to know *how much* was wrong, not to fix it by hand.

Rows that are fine but not wanted (below the rating threshold, an unselected event, a repeat of
an earlier (user, item, event)) are always dropped and counted, in both modes.

Before pandas sees a CSV or TSV log, :func:`kgrec.ingest.textscan.scan_lines` reads its bytes
in bounded blocks and finds the lines that cannot be records at all: invalid UTF-8, a NUL byte,
a line longer than :data:`~kgrec.ingest.textscan.MAX_LINE_BYTES` (a file that is binary
altogether is refused at once). JSONL lines get the same checks one by one, read with a
bounded ``readline``. So memory stays bounded by the chunk size, whatever the file holds.

Line numbers are 1-based lines of the file, the header being line 1 for CSV/TSV. (A quoted
field that spans several lines shifts the numbers after it; such logs are rare.) Parquet has no
lines, so its records are named by row number.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.config import InteractionSource
from kgrec.errors import KgrecError
from kgrec.ingest.sources import INTERACTION_COLUMNS, BuildReport
from kgrec.ingest.textscan import (
    LINE_TOO_LONG,
    LineProblem,
    MAX_LINE_BYTES,
    NOT_UTF8,
    NUL_BYTE,
    check_not_binary,
    open_bytes,
    read_block,
    scan_lines,
)

#: Format name -> file extensions (each text format may also end in ``.gz``).
FORMAT_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "tsv": (".tsv", ".tab"),
    "parquet": (".parquet", ".pq"),
    "jsonl": (".jsonl", ".ndjson"),
}
_TEXT_FORMATS = ("csv", "tsv", "jsonl")
#: Records per chunk: large enough to keep pandas fast, small enough to bound memory.
DEFAULT_CHUNK_ROWS = 500_000
SOURCE = "interactions"

# Reasons a record is bad (an error in strict mode), in the order they are checked.
EMPTY_USER = "empty user id"
EMPTY_ITEM = "empty item id"
EMPTY_SCENE = "empty scene"
INVALID_USER = "invalid user id"
INVALID_ITEM = "invalid item id"
INVALID_SCENE = "invalid scene"
BAD_RATING = "non-numeric rating"
BAD_TIMESTAMP = "bad timestamp"
WRONG_FIELDS = "wrong number of fields"
BAD_JSON = "malformed JSON"
NOT_OBJECT = "not a JSON object"
BAD_ESCAPE = "invalid Unicode escape"
# Reasons a good record is not kept (never an error).
NOT_SELECTED = "event not selected"
BELOW_THRESHOLD = "below rating threshold"
NO_RATING = "no rating (rating_threshold is set)"
NO_RATING_SPLIT = "no rating (rating_split is set)"
DUPLICATE = "duplicate"


def accepted_formats() -> str:
    exts = [e for f in FORMAT_EXTENSIONS for e in FORMAT_EXTENSIONS[f]]
    gz = [e + ".gz" for f in _TEXT_FORMATS for e in FORMAT_EXTENSIONS[f]]
    return ", ".join(exts + gz)


def detect_format(path: Path, declared: str = "auto") -> str:
    """The log format: ``declared`` unless it is ``auto``, else from the file extension."""
    if declared and declared != "auto":
        if declared not in FORMAT_EXTENSIONS:
            raise KgrecError(
                f"unknown interaction format {declared!r} (known: auto, {', '.join(FORMAT_EXTENSIONS)})",
                path=path,
            )
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes and not gz else "")
    for fmt, exts in FORMAT_EXTENSIONS.items():
        if ext in exts and not (gz and fmt not in _TEXT_FORMATS):
            return fmt
    raise KgrecError(
        f"cannot tell the interaction log format from the file name (accepted: {accepted_formats()}); "
        "name it with --format (interactions.format in the graph spec): csv, tsv, parquet or jsonl",
        path=path,
    )


def read_interactions(
    source: InteractionSource,
    report: BuildReport,
    *,
    lenient: bool,
    base_dir: str | Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> pd.DataFrame:
    """Read an interaction log into a table with columns :data:`INTERACTION_COLUMNS`.

    Args:
        source: where the log is and how its columns are named.
        report: receives the counts read / kept / dropped per reason (source ``"interactions"``).
        lenient: drop bad records (counted) instead of raising at the first one.
        base_dir: folder a relative ``source.path`` is resolved against.
        chunk_rows: records per chunk; bounds the memory used on large logs.
        max_line_bytes: a longer line of a text log is a bad record (:data:`LINE_TOO_LONG`).

    Returns:
        ``user``, ``item``, ``event`` (str), ``rating`` and ``timestamp`` (float, NaN when
        absent; timestamps in seconds since the epoch), one row per first occurrence of each
        (user, item, event), in file order. A log with a scene column (``source.scene_column``)
        adds ``scene`` (str), and a row is then one first occurrence of (user, item, event,
        scene): the same pair seen in two scenes is kept in both.

    Raises:
        KgrecError: the file is missing, empty, of unknown format, lacks the user or item
            column, or (strict mode) holds a bad record.
    """
    if source.path is None:
        raise KgrecError("no interaction log given (interactions.path is not set)")
    _check_rating_rules(source)
    path = Path(source.path)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if path.is_dir():
        raise KgrecError("is a folder; give the interaction log file itself", path=path)
    if not path.is_file():
        raise KgrecError("interaction log not found", path=path)
    fmt = detect_format(path, source.format)
    chunks = _READERS[fmt](path, source, lenient, report, chunk_rows, max_line_bytes)
    try:
        kept = [_check_chunk(raw, lines, unit, path, source, lenient, report) for raw, lines, unit in chunks]
    except UnicodeDecodeError as e:
        raise KgrecError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    table = pd.concat(kept, ignore_index=True) if kept else _empty_table()

    table = _check_scenes(table, path, source, lenient, report)
    key = ["user", "item", "event"] + (["scene"] if "scene" in table else [])
    duplicate = table.duplicated(key, keep="first").to_numpy()
    report.dropped(SOURCE, DUPLICATE, int(duplicate.sum()))
    table = table.loc[~duplicate].reset_index(drop=True)
    if table.empty:
        raise KgrecError(
            "no interactions left to use: " + _drop_summary(report) + " (see the build report)", path=path
        )
    report.kept(SOURCE, len(table))
    return table


def _check_scenes(table: pd.DataFrame, path: Path, source: InteractionSource, lenient: bool, report: BuildReport) -> pd.DataFrame:
    """A scene column must name at least two scenes, and every kept row needs one.

    (Only a JSONL log can leave a row without a scene here: a chunk whose records carry no
    scene key has no scene column.) One value is refused whatever the mode: a scene model would
    have nothing to adapt to, and a mapped column holding one value is almost surely the wrong one.
    """
    if "scene" not in table:
        return table
    missing = table["scene"].isna().to_numpy()
    if missing.any():
        if not lenient:
            raise KgrecError(
                f"{int(missing.sum()):,} records have no scene in column {source.scene_column!r} "
                "(or set lenient = true to drop and count them)", path=path,
            )  # fmt: skip
        report.dropped(SOURCE, EMPTY_SCENE, int(missing.sum()))
        table = table.loc[~missing].reset_index(drop=True)
    scenes = pd.unique(table["scene"])
    if len(scenes) == 1:
        raise KgrecError(
            f"the scene column {source.scene_column!r} holds one value ({scenes[0]!r}): scenes need at "
            "least two; drop the column, or map another one with --column scene=NAME "
            "(interactions.scene_column in the graph spec)", path=path,
        )  # fmt: skip
    return table


def _check_rating_rules(source: InteractionSource) -> None:
    """``rating_split`` and ``rating_threshold`` are two answers to one question: refuse both."""
    if source.rating_split is None:
        return
    if source.rating_threshold is not None:
        raise KgrecError(
            "interactions.rating_split and interactions.rating_threshold are both set: the split keeps "
            "low ratings as their own behaviour, the threshold drops them; set one"
        )
    names = source.rating_events
    if len(names) != 2 or not all(isinstance(n, str) and n.strip() for n in names) or names[0] == names[1]:
        raise KgrecError(
            f"interactions.rating_events = {names} must be two different behaviour names: "
            "[at or above rating_split, below it], e.g. [\"like\", \"rated\"]"
        )


# --------------------------------------------------------------------------- validation
def _check_chunk(
    raw: pd.DataFrame,
    lines: np.ndarray,
    unit: str,
    path: Path,
    source: InteractionSource,
    lenient: bool,
    report: BuildReport,
) -> pd.DataFrame:
    """Validate one chunk of raw records (canonical column names) and apply the filters.

    ``lines`` gives each record's line (or row) number, ``unit`` says which of the two it is.
    ``raw`` may carry a ``_reader_problem`` column: the reason a reader could not decode a
    record (lenient mode only, e.g. malformed JSON), None for the records it could.
    """
    n = len(raw)
    report.read(SOURCE, n)
    problems: list[tuple[str, np.ndarray, pd.Series | None]] = []  # (reason, mask, values)
    if "_reader_problem" in raw:
        reader_problem = raw["_reader_problem"]
        for reason in reader_problem.dropna().unique():
            problems.append((reason, (reader_problem == reason).to_numpy(), None))

    user, invalid_user = _ids(raw["user"])
    item, invalid_item = _ids(raw["item"])
    problems.append((EMPTY_USER, (user.isna() & ~invalid_user).to_numpy(), raw["user"]))
    problems.append((INVALID_USER, invalid_user.to_numpy(), raw["user"]))
    problems.append((EMPTY_ITEM, (item.isna() & ~invalid_item).to_numpy(), raw["item"]))
    problems.append((INVALID_ITEM, invalid_item.to_numpy(), raw["item"]))
    scene = None
    if "scene" in raw:
        scene, invalid_scene = _ids(raw["scene"])
        problems.append((EMPTY_SCENE, (scene.isna() & ~invalid_scene).to_numpy(), raw["scene"]))
        problems.append((INVALID_SCENE, invalid_scene.to_numpy(), raw["scene"]))

    if "rating" in raw:
        rating, bad = _numbers(raw["rating"])
        problems.append((BAD_RATING, bad, raw["rating"]))
    else:
        rating = pd.Series(np.nan, index=raw.index)
    if "timestamp" in raw:
        timestamp, bad = _timestamps(raw["timestamp"])
        problems.append((BAD_TIMESTAMP, bad, raw["timestamp"]))
    else:
        timestamp = pd.Series(np.nan, index=raw.index)
    if "event" in raw:
        event, _ = _ids(raw["event"])
        event = event.fillna(source.default_event)  # no event named: the log's default one
    else:
        event = pd.Series(source.default_event, index=raw.index, dtype="str")

    bad_any = np.zeros(n, dtype=bool)
    for reason, mask, _ in problems:
        mask = mask & ~bad_any  # each record is counted once, under its first problem
        if not lenient and mask.any():
            _raise_first_bad(problems, lines, unit, path, source)
        report.dropped(SOURCE, reason, int(mask.sum()))
        bad_any |= mask

    columns = {"user": user, "item": item, "event": event, "rating": rating, "timestamp": timestamp}
    if scene is not None:
        columns["scene"] = scene
    table = pd.DataFrame(columns).loc[~bad_any]
    table = table.astype(
        {"user": "str", "item": "str", "event": "str", "rating": "float64", "timestamp": "float64"}
        | ({"scene": "str"} if scene is not None else {})
    )

    if source.rating_split is not None:
        # The event a rating says (like / rated) replaces the log's own; the events filter
        # below then selects among these names.
        missing = table["rating"].isna().to_numpy()
        report.dropped(SOURCE, NO_RATING_SPLIT, int(missing.sum()))
        table = table.loc[~missing].copy()
        high, low = source.rating_events
        table["event"] = np.where(table["rating"].to_numpy() >= source.rating_split, high, low)
    if source.events is not None:
        selected = table["event"].isin(source.events).to_numpy()
        report.dropped(SOURCE, NOT_SELECTED, int((~selected).sum()))
        table = table.loc[selected]
    if source.rating_threshold is not None:
        missing = table["rating"].isna().to_numpy()
        below = (table["rating"] < source.rating_threshold).to_numpy()
        report.dropped(SOURCE, NO_RATING, int(missing.sum()))
        report.dropped(SOURCE, BELOW_THRESHOLD, int(below.sum()))
        table = table.loc[~missing & ~below]
    return table


def _raise_first_bad(problems, lines: np.ndarray, unit: str, path: Path, source: InteractionSource):
    """Raise for the record with the smallest line number among all problems of a chunk."""
    best = None
    for reason, mask, values in problems:
        positions = np.flatnonzero(mask)
        if positions.size and (best is None or lines[positions[0]] < lines[best[1]]):
            best = (reason, positions[0], values)
    reason, pos, values = best
    column = {
        EMPTY_USER: source.user_column,
        INVALID_USER: source.user_column,
        EMPTY_ITEM: source.item_column,
        INVALID_ITEM: source.item_column,
        BAD_RATING: source.rating_column,
        BAD_TIMESTAMP: source.timestamp_column,
        EMPTY_SCENE: source.scene_column,
        INVALID_SCENE: source.scene_column,
    }.get(reason)
    detail = reason
    if values is not None and column is not None:
        value = values.iloc[pos]
        shown = "" if _is_missing(value) else repr(value)
        detail = f"{reason} in column {column!r}" + (
            f": {shown}" if shown and reason not in (EMPTY_USER, EMPTY_ITEM, EMPTY_SCENE) else ""
        )
    hint = " (or set lenient = true to drop and count bad records)"
    line = int(lines[pos])
    if unit == "line":
        raise KgrecError(detail + hint, path=path, line=line)
    raise KgrecError(f"{unit} {line}: {detail}{hint}", path=path)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _ids(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Ids as stripped strings (NaN when empty or missing) and a mask of unusable values.

    Text holding a NUL character is unusable (the byte scan keeps NULs out of CSV and JSONL
    lines, but Parquet strings and JSON ``\\u0000`` escapes can still carry one).

    Integers (e.g. a Parquet int64 column, a JSON number) become their decimal text; floats
    that hold whole numbers too, because a numeric column with gaps is read as float. Anything
    else that is not text (a fraction, a boolean, a list) is unusable.
    """
    invalid = pd.Series(False, index=values.index)
    if pd.api.types.is_integer_dtype(values):
        return values.astype("Int64").astype("str").where(values.notna()), invalid
    if pd.api.types.is_float_dtype(values):
        whole = values.notna() & np.isfinite(values) & (values == np.floor(values))
        text = pd.Series(np.nan, index=values.index, dtype="str")
        text[whole] = values[whole].astype("int64").astype("str")
        return text, values.notna() & ~whole
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        text = values.str.strip()
        nul = text.str.contains("\x00", regex=False).fillna(False).astype(bool)  # e.g. Parquet
        return text.where((text != "") & ~nul), nul

    # mixed Python values (JSON records, categorical columns): decide value by value
    pairs = [_id_text(v) for v in values]
    text = pd.Series([t for t, _ in pairs], index=values.index, dtype="str")
    return text, pd.Series([bad for _, bad in pairs], index=values.index, dtype=bool)


def _id_text(value) -> tuple[str | None, bool]:
    """(id text or None when empty, whether the value cannot be an id at all)."""
    if _is_missing(value):
        return None, False
    if isinstance(value, str):
        if "\x00" in value:  # a JSON "\u0000": no id holds a NUL
            return None, True
        return value.strip() or None, False
    if isinstance(value, bool):
        return None, True
    if isinstance(value, (int, np.integer)):
        return str(value), False
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value)), False
    return None, True  # a fraction, a list, an object...


def _present(values: pd.Series) -> np.ndarray:
    """Which cells hold something (not missing, not an empty string)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values.notna().to_numpy()
    return (values.notna() & (values.astype("str").str.strip() != "")).to_numpy()


def _numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Finite floats (NaN when absent) and a mask of cells that hold something else."""
    present = _present(values)  # before a list or a boolean is blanked out below: it is there, and bad
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("object")
    if pd.api.types.is_object_dtype(values):
        values = values.map(
            lambda v: np.nan if isinstance(v, bool) or not isinstance(v, (int, float, str, np.number)) else v
        )
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    finite = np.isfinite(numbers.to_numpy())
    bad = present & ~finite
    return numbers.where(finite), bad


def _timestamps(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Seconds since the epoch from numbers or ISO-8601 text (naive times are taken as UTC)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        utc = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        return _epoch_seconds(utc), np.zeros(len(values), dtype=bool)
    seconds, not_numeric = _numbers(values)
    if not_numeric.any():
        candidates = values[not_numeric].astype("str").str.strip()
        parsed = pd.to_datetime(candidates, format="ISO8601", utc=True, errors="coerce")
        seconds.loc[candidates.index] = _epoch_seconds(parsed)
        not_numeric = not_numeric & seconds.isna().to_numpy()
    return seconds, not_numeric


def _epoch_seconds(times: pd.Series) -> pd.Series:
    epoch = pd.Timestamp(0, tz="UTC")
    return ((times - epoch) / pd.Timedelta(seconds=1)).astype("float64")


# --------------------------------------------------------------------------- readers
# Each reader yields (raw chunk with canonical column names, line numbers, "line" or "row").
Chunk = tuple[pd.DataFrame, np.ndarray, str]


_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


def _column_map(
    found: list[str], source: InteractionSource, path: Path, delimiter: str | None = None
) -> dict[str, str]:
    """Canonical name -> column name in the file; the user and item columns must exist.

    ``delimiter`` is the one a text log was split with: a header that comes out as one column
    holding another delimiter is a wrong delimiter, and the message says which one to use.
    """
    wanted = {
        "user": source.user_column,
        "item": source.item_column,
        "rating": source.rating_column,
        "timestamp": source.timestamp_column,
        "event": source.event_column,
        "scene": source.scene_column,
    }
    by_stripped = {str(c).strip(): c for c in found}
    for role in ("user", "item"):
        if wanted[role] not in by_stripped:
            hint = _delimiter_hint(found, delimiter)
            if hint:
                raise KgrecError(hint, path=path, line=1)
            raise KgrecError(
                f"no {role} column {wanted[role]!r}; the columns found are "
                f"{', '.join(repr(str(c)) for c in found) or '(none)'}; "
                f"name the right one with --column {role}=NAME (interactions.{role}_column in the graph spec)",
                path=path,
            )
    return {role: by_stripped[name] for role, name in wanted.items() if name in by_stripped}


def _delimiter_hint(found: list[str], delimiter: str | None) -> str | None:
    """A message for a header split with the wrong delimiter, or None."""
    if delimiter is None or len(found) != 1:
        return None
    header = str(found[0])
    others = [d for d in _DELIMITER_NAMES if d != delimiter and d in header]
    if not others:
        return None
    likely = max(others, key=header.count)
    fix = {",": "--format csv", "\t": "--format tsv"}.get(likely, "")
    fix = (f"{fix}, or " if fix else "") + f"interactions.delimiter = {likely!r} in the graph spec"
    return (
        f"wrong delimiter? The header {header[:80]!r} is a single column when split at "
        f"{_DELIMITER_NAMES.get(delimiter, repr(delimiter))}s, but it holds {_DELIMITER_NAMES[likely]}s; "
        f"use {fix}"
    )


def _read_text_table(
    path: Path,
    source: InteractionSource,
    lenient: bool,
    report: BuildReport,
    chunk_rows: int,
    sep: str,
    max_line_bytes: int,
) -> Iterator[Chunk]:
    """CSV or TSV through pandas, after :func:`~kgrec.ingest.textscan.scan_lines` has vetted the bytes.

    Lines the scan finds unreadable (not UTF-8, a NUL byte, too long) never reach pandas: in
    strict mode the records above the first one are checked (an earlier bad record is the one
    to report) and then it is the error; in lenient mode pandas skips them (``skiprows``) and
    they are counted per reason.
    """
    delimiter = source.delimiter or sep
    options = dict(
        sep=delimiter,
        dtype="str",
        keep_default_na=False,  # "NA" or "null" may well be an id; only empty cells are missing
        na_values=[""],
        skip_blank_lines=False,  # keeps record index == line - 2, so errors name the right line
        # plain "utf-8" lets the C parser decode field by field, so that the lines skipped in
        # lenient mode are never decoded ("utf-8-sig" would decode whole buffers); the C
        # parser drops a byte-order mark by itself
        encoding="utf-8",
        compression="infer",
        index_col=False,  # never take extra leading fields for an index (see _long_leading_rows)
    )
    expected = "a CSV log" if delimiter == "," else ("a TSV log" if delimiter == "\t" else "a text log")
    problems = scan_lines(path, max_line_bytes=max_line_bytes, first_only=not lenient, expected=expected)
    if problems and problems[0].line == 1:
        raise KgrecError(f"the header line is unreadable: {problems[0].message()}", path=path, line=1)
    try:
        header = list(pd.read_csv(path, nrows=0, **options).columns)
    except pd.errors.EmptyDataError:
        raise KgrecError("the file is empty (expected a header line naming the columns)", path=path) from None
    except pd.errors.ParserError as e:  # pandas tokenizes a first buffer even for the header
        line, message = _parser_error(e, path)
        raise KgrecError(message, path=path, line=line) from None
    columns = _column_map(header, source, path, delimiter)
    # In lenient mode every too-long record is found here (csv module, quotes honoured), so its
    # drop is counted for certain instead of through pandas' bad-line warnings.
    long_rows = _long_leading_rows(path, delimiter, len(header), {p.line for p in problems}, whole_file=lenient)
    if long_rows:
        problems = sorted(problems + long_rows, key=lambda p: p.line)[: None if lenient else 1]

    base_options = dict(options)
    skipped = np.array([p.line for p in problems], dtype=np.int64) if lenient else np.zeros(0, np.int64)
    if lenient:
        for reason, n in Counter(p.reason for p in problems).items():
            report.read(SOURCE, n)
            report.dropped(SOURCE, reason, n)
        options["skiprows"] = set((skipped - 1).tolist())  # 0-based line indices
    elif problems:
        options["nrows"] = problems[0].line - 2  # only the records above the unreadable line
    # a record's line: its index + 2 (header, 1-based), + the unreadable lines skipped above it
    below = skipped - np.arange(len(skipped)) - 2

    def records(chunks, offset: int = 0) -> Iterator[Chunk]:
        for chunk in chunks:
            blank = chunk.isna().all(axis=1).to_numpy()  # blank lines are not records
            index = chunk.index.to_numpy() + offset
            lines = index + 2 + np.searchsorted(below, index, side="right")
            raw = chunk.loc[~blank, list(columns.values())]
            raw.columns = list(columns.keys())
            if len(raw):
                yield raw, lines[~blank], "line"

    any_record = False
    consumed = 0  # data lines handed over so far (to resume after a parser error)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        reader = (
            pd.read_csv(path, chunksize=chunk_rows, on_bad_lines="warn" if lenient else "error", **options)
            if options.get("nrows", 1) > 0
            else None
        )
        try:
            for chunk in records(reader or []):
                skipped_lines = sum(str(w.message).count("Skipping line") for w in caught)
                caught.clear()
                report.read(SOURCE, skipped_lines)
                report.dropped(SOURCE, WRONG_FIELDS, skipped_lines)
                any_record = True
                consumed = int(chunk[1][-1]) - 1
                yield chunk
            # lines pandas skipped after the last record it handed over
            skipped_lines = sum(str(w.message).count("Skipping line") for w in caught)
            caught.clear()
            report.read(SOURCE, skipped_lines)
            report.dropped(SOURCE, WRONG_FIELDS, skipped_lines)
        except pd.errors.ParserError as e:
            line, message = _parser_error(e, path)
            # pandas stops before handing over the chunk that holds the bad line; check the
            # records between the last chunk handed over and that line first, so that the
            # error is about the *first* bad record.
            above = line - 2 - consumed
            if above > 0 and not lenient:
                with pd.read_csv(
                    path, skiprows=range(1, consumed + 1), nrows=above, chunksize=chunk_rows, **base_options
                ) as rest:
                    yield from records(rest, offset=consumed)
            raise KgrecError(message, path=path, line=line) from None
        finally:
            if reader is not None:
                reader.close()
    if problems and not lenient:
        raise KgrecError(
            problems[0].message() + " (or set lenient = true to drop and count bad records)",
            path=path,
            line=problems[0].line,
        )
    if not any_record and not problems:  # (lenient mode with every record dropped: the caller says so)
        raise KgrecError("the file has a header but no records", path=path)


def _long_leading_rows(
    path: Path, delimiter: str, n_columns: int, unreadable: set[int], whole_file: bool = False
) -> list[LineProblem]:
    """The records at the top of the file (or, with ``whole_file``, anywhere) with too many fields.

    pandas decides the number of columns from the first record: when it is longer than the
    header, the extra leading fields silently become an index (every column shifts) or, with
    ``index_col=False``, are cut off. So the first records are counted here (with the csv module,
    quotes honoured) until one that is not too long; each too long one is a bad record.
    """
    found: list[LineProblem] = []
    with open_bytes(path) as handle:
        lines = (raw.decode("utf-8", errors="replace") for raw in handle)
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            next(reader)  # the header
            for row in reader:
                if reader.line_num in unreadable:
                    continue
                if len(row) <= n_columns:
                    if whole_file:
                        continue
                    break
                found.append(
                    LineProblem(reader.line_num, WRONG_FIELDS, f"expected {n_columns}, saw {len(row)} (is the delimiter right?)")
                )
        except (csv.Error, StopIteration):
            pass  # pandas reports malformed quoting with its line
    return found


def _parser_error(error: pd.errors.ParserError, path: Path) -> tuple[int, str]:
    """(line, message) for a pandas tokenizer error; a KgrecError without a line when unknown."""
    text = str(error)
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        expected, line, saw = (int(g) for g in fields.groups())
        return line, (
            f"{WRONG_FIELDS}: expected {expected}, saw {saw} (is the delimiter right? "
            "or set lenient = true to drop and count bad records)"
        )
    quote = re.search(r"EOF inside string starting at row (\d+)", text)
    if quote:
        return int(quote.group(1)) + 1, (
            'a quoted field opens on this line (") and never closes, so the rest of the file would be one field'
        )
    raise KgrecError(f"cannot parse: {text}", path=path) from None


def _read_csv(path, source, lenient, report, chunk_rows, max_line_bytes):
    return _read_text_table(path, source, lenient, report, chunk_rows, ",", max_line_bytes)


def _read_tsv(path, source, lenient, report, chunk_rows, max_line_bytes):
    return _read_text_table(path, source, lenient, report, chunk_rows, "\t", max_line_bytes)


def _read_jsonl(
    path: Path,
    source: InteractionSource,
    lenient: bool,
    report: BuildReport,
    chunk_rows: int,
    max_line_bytes: int,
) -> Iterator[Chunk]:
    """One JSON object per line; blank lines are skipped, a key missing in a record is empty.

    Lines are read as bytes, at most ``max_line_bytes`` at a time, so that a line of gigabytes
    is discarded rather than held in memory; each line is then decoded and parsed on its own.
    """
    names = {
        "user": source.user_column,
        "item": source.item_column,
        "rating": source.rating_column,
        "timestamp": source.timestamp_column,
        "event": source.event_column,
        "scene": source.scene_column,
    }
    checked_columns = False
    records: list[dict] = []
    lines: list[int] = []
    problems: list[str | None] = []

    def chunk() -> Chunk:
        nonlocal checked_columns
        if not checked_columns:
            _column_map(_keys_seen(records), source, path)
            checked_columns = True
        return _json_chunk(records, lines, problems, names)

    with open_bytes(path) as handle:
        check_not_binary(path, read_block(handle, 4096, path), "a JSONL log")
    with open_bytes(path) as handle:
        for number, raw, problem, detail in _json_lines(handle, path, max_line_bytes):
            record: object = {}
            if problem is None:
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError as e:
                    problem, detail = BAD_JSON, f"{BAD_JSON}: {e.msg} (column {e.colno})"
                except RecursionError:
                    problem, detail = BAD_JSON, f"{BAD_JSON}: nested too deeply"
                else:
                    if not isinstance(record, dict):
                        problem, detail = NOT_OBJECT, f"{NOT_OBJECT}: each line must hold one {{...}} record"
                        record = {}
                    elif ("\\ud" in raw or "\\uD" in raw) and _lone_surrogate(record):
                        problem, detail = BAD_ESCAPE, f"{BAD_ESCAPE}: a lone \\uD800-\\uDFFF escape (half a surrogate pair) is no text"
                        record = {}
            if problem is not None and not lenient:
                if records:
                    yield chunk()  # a bad record above this line is the one to report
                raise KgrecError(detail + " (or set lenient = true to drop and count bad records)", path=path, line=number)
            records.append(record)
            lines.append(number)
            problems.append(problem)
            if len(records) >= chunk_rows:
                yield chunk()
                records, lines, problems = [], [], []
        if records:
            yield chunk()
    if not checked_columns:
        raise KgrecError("the file holds no records", path=path)


def _json_lines(handle, path: Path, max_line_bytes: int) -> Iterator[tuple[int, str, str | None, str]]:
    """(line number, text, problem or None, detail) for each non-blank line of a JSONL file."""
    number = 0
    while True:
        try:
            raw = handle.readline(max_line_bytes + 1)
        except (EOFError, OSError, zlib.error) as e:
            raise KgrecError(f"damaged gzip data ({e or 'the stream ends early'})", path=path) from None
        if not raw:
            return
        number += 1
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):  # discard the rest of the line, a block at a time
                raw = handle.readline(1 << 20)
                size += len(raw)
            yield number, "", LINE_TOO_LONG, f"{LINE_TOO_LONG}: {size:,} bytes (the limit is {max_line_bytes:,})"
            continue
        if b"\x00" in raw:
            yield number, "", NUL_BYTE, f"{NUL_BYTE}: the line holds a NUL (0x00) byte"
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield number, "", NOT_UTF8, (
                f"{NOT_UTF8}: byte 0x{raw[e.start:e.start + 1].hex()} at column {e.start + 1} is not UTF-8 "
                "(save the file as UTF-8)"
            )
            continue
        if text.strip():
            yield number, text, None, ""


def _lone_surrogate(record: dict) -> bool:
    """Whether a decoded JSON record holds half a UTF-16 surrogate pair (no text can hold that)."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _keys_seen(records: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def _json_chunk(
    records: list[dict], lines: list[int], problems: list[str | None], names: dict[str, str]
) -> Chunk:
    present = {role: name for role, name in names.items() if role != "scene" or any(name in r for r in records)}
    raw = pd.DataFrame({role: [r.get(name) for r in records] for role, name in present.items()}, dtype="object")
    raw["_reader_problem"] = pd.Series(problems, dtype="object")
    return raw, np.asarray(lines), "line"


def _read_parquet(
    path: Path, source: InteractionSource, lenient: bool, report: BuildReport, chunk_rows: int, max_line_bytes: int
) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise KgrecError(f"not a readable Parquet file ({e})", path=path) from None
    columns = _column_map(parquet.schema_arrow.names, source, path)
    first_row = 1
    for batch in parquet.iter_batches(batch_size=chunk_rows, columns=list(columns.values())):
        raw = batch.to_pandas()
        raw.columns = list(columns.keys())
        rows = np.arange(first_row, first_row + len(raw))
        first_row += len(raw)
        yield raw, rows, "row"
    if first_row == 1:
        raise KgrecError("the file holds no records", path=path)


_READERS = {"csv": _read_csv, "tsv": _read_tsv, "jsonl": _read_jsonl, "parquet": _read_parquet}


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: pd.Series(dtype="float64" if c in ("rating", "timestamp") else "str")
            for c in INTERACTION_COLUMNS
        }
    )


def _drop_summary(report: BuildReport) -> str:
    counts = report.counts.get(SOURCE, {})
    dropped = [
        f"{k.removeprefix('dropped: ')} {v}" for k, v in sorted(counts.items()) if k.startswith("dropped")
    ]
    return f"read {counts.get('read', 0)}, dropped " + (", ".join(dropped) or "none")
