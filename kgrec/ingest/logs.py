"""Interaction logs (CSV, TSV, Parquet, JSONL) -> one validated table of positive events.

Every format is read in chunks of raw records; each chunk goes through the same checks
(:func:`_check_chunk`), so a rule is written once and holds for all formats. In strict mode
the first bad record stops the build with its file and line; in lenient mode bad records are
dropped and counted per reason in the :class:`~kgrec.ingest.sources.BuildReport`, because a
researcher with a 50-million-row log wants to know *how much* was wrong, not to fix it by hand.

Rows that are fine but not wanted (below the rating threshold, an unselected event, a repeat of
an earlier (user, item, event)) are always dropped and counted, in both modes.

Line numbers are 1-based lines of the file, the header being line 1 for CSV/TSV. (A quoted
field that spans several lines shifts the numbers after it; such logs are rare.) Parquet has no
lines, so its records are named by row number.
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.config import InteractionSource
from kgrec.errors import KgrecError
from kgrec.ingest.sources import INTERACTION_COLUMNS, BuildReport

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
INVALID_USER = "invalid user id"
INVALID_ITEM = "invalid item id"
BAD_RATING = "non-numeric rating"
BAD_TIMESTAMP = "bad timestamp"
WRONG_FIELDS = "wrong number of fields"
BAD_JSON = "malformed JSON"
NOT_OBJECT = "not a JSON object"
# Reasons a good record is not kept (never an error).
NOT_SELECTED = "event not selected"
BELOW_THRESHOLD = "below rating threshold"
NO_RATING = "no rating (rating_threshold is set)"
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
) -> pd.DataFrame:
    """Read an interaction log into a table with columns :data:`INTERACTION_COLUMNS`.

    Args:
        source: where the log is and how its columns are named.
        report: receives the counts read / kept / dropped per reason (source ``"interactions"``).
        lenient: drop bad records (counted) instead of raising at the first one.
        base_dir: folder a relative ``source.path`` is resolved against.
        chunk_rows: records per chunk; bounds the memory used on large logs.

    Returns:
        ``user``, ``item``, ``event`` (str), ``rating`` and ``timestamp`` (float, NaN when
        absent; timestamps in seconds since the epoch), one row per first occurrence of each
        (user, item, event), in file order.

    Raises:
        KgrecError: the file is missing, empty, of unknown format, lacks the user or item
            column, or (strict mode) holds a bad record.
    """
    if source.path is None:
        raise KgrecError("no interaction log given (interactions.path is not set)")
    path = Path(source.path)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if not path.is_file():
        raise KgrecError("interaction log not found", path=path)
    fmt = detect_format(path, source.format)
    chunks = _READERS[fmt](path, source, lenient, report, chunk_rows)
    try:
        kept = [_check_chunk(raw, lines, unit, path, source, lenient, report) for raw, lines, unit in chunks]
    except UnicodeDecodeError as e:
        raise KgrecError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    table = pd.concat(kept, ignore_index=True) if kept else _empty_table()

    duplicate = table.duplicated(["user", "item", "event"], keep="first").to_numpy()
    report.dropped(SOURCE, DUPLICATE, int(duplicate.sum()))
    table = table.loc[~duplicate].reset_index(drop=True)
    if table.empty:
        raise KgrecError(
            "no interactions left to use: " + _drop_summary(report) + " (see the build report)", path=path
        )
    report.kept(SOURCE, len(table))
    return table


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

    table = pd.DataFrame(
        {"user": user, "item": item, "event": event, "rating": rating, "timestamp": timestamp}
    ).loc[~bad_any]
    table = table.astype(
        {"user": "str", "item": "str", "event": "str", "rating": "float64", "timestamp": "float64"}
    )

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
    }.get(reason)
    detail = reason
    if values is not None and column is not None:
        value = values.iloc[pos]
        shown = "" if _is_missing(value) else repr(value)
        detail = f"{reason} in column {column!r}" + (
            f": {shown}" if shown and reason not in (EMPTY_USER, EMPTY_ITEM) else ""
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
        return text.where(text != ""), invalid

    # mixed Python values (JSON records, categorical columns): decide value by value
    pairs = [_id_text(v) for v in values]
    text = pd.Series([t for t, _ in pairs], index=values.index, dtype="str")
    return text, pd.Series([bad for _, bad in pairs], index=values.index, dtype=bool)


def _id_text(value) -> tuple[str | None, bool]:
    """(id text or None when empty, whether the value cannot be an id at all)."""
    if _is_missing(value):
        return None, False
    if isinstance(value, str):
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
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("object")
    if pd.api.types.is_object_dtype(values):
        values = values.map(
            lambda v: np.nan if isinstance(v, bool) or not isinstance(v, (int, float, str, np.number)) else v
        )
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    finite = np.isfinite(numbers.to_numpy())
    bad = _present(values) & ~finite
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


def _column_map(found: list[str], source: InteractionSource, path: Path) -> dict[str, str]:
    """Canonical name -> column name in the file; the user and item columns must exist."""
    wanted = {
        "user": source.user_column,
        "item": source.item_column,
        "rating": source.rating_column,
        "timestamp": source.timestamp_column,
        "event": source.event_column,
    }
    by_stripped = {str(c).strip(): c for c in found}
    for role in ("user", "item"):
        if wanted[role] not in by_stripped:
            raise KgrecError(
                f"no {role} column {wanted[role]!r}; the columns found are "
                f"{', '.join(repr(str(c)) for c in found) or '(none)'}; "
                f"name the right one with --column {role}=NAME (interactions.{role}_column in the graph spec)",
                path=path,
            )
    return {role: by_stripped[name] for role, name in wanted.items() if name in by_stripped}


def _read_text_table(
    path: Path, source: InteractionSource, lenient: bool, report: BuildReport, chunk_rows: int, sep: str
) -> Iterator[Chunk]:
    options = dict(
        sep=source.delimiter or sep,
        dtype="str",
        keep_default_na=False,  # "NA" or "null" may well be an id; only empty cells are missing
        na_values=[""],
        skip_blank_lines=False,  # keeps record index == line - 2, so errors name the right line
        encoding="utf-8-sig",
        compression="infer",
    )
    try:
        header = list(pd.read_csv(path, nrows=0, **options).columns)
    except pd.errors.EmptyDataError:
        raise KgrecError("the file is empty (expected a header line naming the columns)", path=path) from None
    except UnicodeDecodeError as e:
        raise KgrecError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    columns = _column_map(header, source, path)

    def records(chunks) -> Iterator[Chunk]:
        for chunk in chunks:
            blank = chunk.isna().all(axis=1).to_numpy()  # blank lines are not records
            lines = chunk.index.to_numpy() + 2
            raw = chunk.loc[~blank, list(columns.values())]
            raw.columns = list(columns.keys())
            if len(raw):
                yield raw, lines[~blank], "line"

    any_record = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        reader = pd.read_csv(
            path, chunksize=chunk_rows, on_bad_lines="warn" if lenient else "error", **options
        )
        try:
            for chunk in records(reader):
                skipped = sum(str(w.message).count("Skipping line") for w in caught)
                caught.clear()
                report.read(SOURCE, skipped)
                report.dropped(SOURCE, WRONG_FIELDS, skipped)
                any_record = True
                yield chunk
        except pd.errors.ParserError as e:
            match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
            if not match:
                raise KgrecError(f"cannot parse: {e}", path=path) from None
            expected, line, saw = match.groups()
            # pandas stops before handing over the chunk that holds the bad line; check the
            # records above it first so that the error is about the *first* bad record.
            with pd.read_csv(path, nrows=int(line) - 2, chunksize=chunk_rows, **options) as before:
                yield from records(before)
            raise KgrecError(
                f"{WRONG_FIELDS}: expected {expected}, saw {saw} (is the delimiter right? "
                "or set lenient = true to drop and count bad records)",
                path=path,
                line=int(line),
            ) from None
        finally:
            reader.close()
    if not any_record:
        raise KgrecError("the file has a header but no records", path=path)


def _read_csv(path, source, lenient, report, chunk_rows):
    return _read_text_table(path, source, lenient, report, chunk_rows, sep=",")


def _read_tsv(path, source, lenient, report, chunk_rows):
    return _read_text_table(path, source, lenient, report, chunk_rows, sep="\t")


def _read_jsonl(
    path: Path, source: InteractionSource, lenient: bool, report: BuildReport, chunk_rows: int
) -> Iterator[Chunk]:
    """One JSON object per line; blank lines are skipped, a key missing in a record is empty."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    names = {
        "user": source.user_column,
        "item": source.item_column,
        "rating": source.rating_column,
        "timestamp": source.timestamp_column,
        "event": source.event_column,
    }
    checked_columns = False
    with opener(path, "rt", encoding="utf-8-sig") as handle:
        records: list[dict] = []
        lines: list[int] = []
        problems: list[str | None] = []
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            problem = None
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:
                if not lenient:
                    raise KgrecError(
                        f"{BAD_JSON}: {e.msg} (column {e.colno})", path=path, line=number
                    ) from None
                record, problem = {}, BAD_JSON
            if not isinstance(record, dict):
                if not lenient:
                    raise KgrecError(
                        f"{NOT_OBJECT}: each line must hold one {{...}} record", path=path, line=number
                    )
                record, problem = {}, NOT_OBJECT
            records.append(record)
            lines.append(number)
            problems.append(problem)
            if len(records) >= chunk_rows:
                if not checked_columns:
                    _column_map(_keys_seen(records), source, path)
                    checked_columns = True
                yield _json_chunk(records, lines, problems, names)
                records, lines, problems = [], [], []
        if records:
            if not checked_columns:
                _column_map(_keys_seen(records), source, path)
                checked_columns = True
            yield _json_chunk(records, lines, problems, names)
    if not checked_columns:
        raise KgrecError("the file holds no records", path=path)


def _keys_seen(records: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def _json_chunk(
    records: list[dict], lines: list[int], problems: list[str | None], names: dict[str, str]
) -> Chunk:
    raw = pd.DataFrame({role: [r.get(name) for r in records] for role, name in names.items()}, dtype="object")
    raw["_reader_problem"] = pd.Series(problems, dtype="object")
    return raw, np.asarray(lines), "line"


def _read_parquet(
    path: Path, source: InteractionSource, lenient: bool, report: BuildReport, chunk_rows: int
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
