"""RecBole atomic files -> :class:`SourceTables`, so RecBole's datasets build kgrec graphs.

A RecBole dataset is a folder of tab-separated files named after the dataset, each with a typed
header (``user_id:token	item_id:token	rating:float``):

* ``<name>.inter``: the interactions (required);
* ``<name>.kg``: knowledge triples ``head_id relation_id tail_id`` between entity ids;
* ``<name>.link``: ``item_id entity_id``, which entity each item is;
* ``<name>.item``: item features; the title and the genre-like fields become the item's text;
* ``<name>.user``: user features (not used: kgrec has no user features).

Entity and relation ids become ``urn:recbole:entity:<id>`` / ``urn:recbole:relation:<id>`` so
that they are valid IRIs in exports. An item's node key is its linked entity; an item without
a link but with text gets ``urn:recbole:item:<id>``, so that its text is not lost.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd

from kgrec.config import InteractionSource
from kgrec.errors import KgrecError
from kgrec.ingest.logs import read_interactions
from kgrec.ingest.sources import TEXT_COLUMNS, TRIPLE_COLUMNS, BuildReport, SourceTables

ENTITY_PREFIX = "urn:recbole:entity:"
RELATION_PREFIX = "urn:recbole:relation:"
ITEM_PREFIX = "urn:recbole:item:"
#: Fields of ``.item`` that name the item (first one present wins) ...
TITLE_FIELDS = ("movie_title", "title", "item_name", "name", "book_title", "track_name", "artist_name")
#: ... and fields whose values describe it (any field whose name contains one of these).
DESCRIPTIVE_FIELD_PARTS = ("class", "genre", "categor", "tag", "brand")


def read_recbole(
    folder: str | Path, name: str | None = None, report: BuildReport | None = None
) -> SourceTables:
    """Read the RecBole dataset ``name`` (default: the folder's name, or its only ``.inter`` file).

    Raises:
        KgrecError: no ``.inter`` file, a file without the expected fields, or a bad record.
    """
    folder = Path(folder)
    report = report if report is not None else BuildReport()
    name = _dataset_name(folder, name)
    inter = folder / f"{name}.inter"
    fields = typed_header(inter)
    for required in ("user_id", "item_id"):
        if required not in fields:
            raise KgrecError(
                f"no {required} field; the header holds {', '.join(fields.values()) or '(nothing)'}",
                path=inter,
            )
    source = InteractionSource(
        path=str(inter),
        format="tsv",
        user_column=fields["user_id"],
        item_column=fields["item_id"],
        rating_column=fields.get("rating", "rating:float"),
        timestamp_column=fields.get("timestamp", "timestamp:float"),
    )  # typed headers never hold a bare "event" column: every row gets the default event
    interactions = read_interactions(source, report, lenient=False)
    inputs = {"interactions": [str(inter)]}

    links: dict[str, str] = {}
    link_path = folder / f"{name}.link"
    if link_path.is_file():
        table = read_atomic(link_path, ["item_id", "entity_id"])
        links = dict(zip(table["item_id"], ENTITY_PREFIX + table["entity_id"].map(_quote), strict=True))
        inputs["link"] = [str(link_path)]

    triples = SourceTables.empty_triples()
    kg_path = folder / f"{name}.kg"
    if kg_path.is_file():
        table = read_atomic(kg_path, ["head_id", "relation_id", "tail_id"])
        triples = pd.DataFrame(
            {
                "head": ENTITY_PREFIX + table["head_id"].map(_quote),
                "relation": RELATION_PREFIX + table["relation_id"].map(_quote),
                "tail": ENTITY_PREFIX + table["tail_id"].map(_quote),
            },
            dtype="string",
        )[TRIPLE_COLUMNS]
        duplicate = triples.duplicated().to_numpy()
        report.read("kg", len(triples))
        report.dropped("kg", "duplicate", int(duplicate.sum()))
        triples = triples.loc[~duplicate].reset_index(drop=True)
        report.kept("kg", len(triples))
        inputs["kg"] = [str(kg_path)]
        if not links:
            report.note(
                f"{kg_path.name} has no {name}.link beside it: no item is linked to the knowledge graph"
            )

    item_ids = interactions["item"].unique()
    item_nodes: dict[str, str | None] = {i: links.get(i) for i in item_ids}
    texts = SourceTables.empty_texts()
    item_path = folder / f"{name}.item"
    if item_path.is_file():
        texts = _item_texts(item_path, item_nodes)
        inputs["item"] = [str(item_path)]

    linked = sum(node is not None and node.startswith(ENTITY_PREFIX) for node in item_nodes.values())
    report.add("items", "read", len(item_nodes))
    report.add("items", "items linked to KG entities", linked)
    report.add("items", "items without KG link", len(item_nodes) - linked)
    return SourceTables(
        interactions=interactions,
        item_nodes=item_nodes,
        triples=triples,
        texts=texts,
        report=report,
        inputs=inputs,
    )


def _dataset_name(folder: Path, name: str | None) -> str:
    if name is not None:
        if not (folder / f"{name}.inter").is_file():
            raise KgrecError(f"no RecBole interaction file {name}.inter", path=folder)
        return name
    if (folder / f"{folder.name}.inter").is_file():
        return folder.name
    found = sorted(p.stem for p in folder.glob("*.inter"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise KgrecError("no RecBole .inter file in this folder", path=folder)
    raise KgrecError(f"several RecBole datasets here ({', '.join(found)}); name the one to read", path=folder)


def typed_header(path: Path) -> dict[str, str]:
    """Field name -> header column (``user_id`` -> ``user_id:token``) of an atomic file."""
    if not path.is_file():
        raise KgrecError("file not found", path=path)
    with path.open(encoding="utf-8-sig") as handle:
        first = handle.readline().rstrip("\r\n")
    if not first:
        raise KgrecError("the file is empty (expected a typed header such as 'user_id:token')", path=path)
    fields = {}
    for column in first.split("\t"):
        field, colon, ftype = column.partition(":")
        if not colon or not ftype:
            raise KgrecError(
                f"header column {column!r} has no type (RecBole headers look like 'item_id:token')",
                path=path,
                line=1,
            )
        fields[field.strip()] = column
    return fields


def read_atomic(path: Path, required: list[str]) -> pd.DataFrame:
    """An atomic file as str columns named by field (types dropped); required fields non-empty."""
    fields = typed_header(path)
    missing = [f for f in required if f not in fields]
    if missing:
        raise KgrecError(
            f"missing field(s) {', '.join(missing)}; the header holds {', '.join(fields.values())}", path=path
        )
    try:
        table = pd.read_csv(
            path,
            sep="\t",
            dtype="str",
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.ParserError as e:
        raise KgrecError(f"cannot read as a RecBole atomic file: {e}".strip(), path=path) from None
    except UnicodeDecodeError as e:
        raise KgrecError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    table.columns = list(fields)
    blank = table.isna().all(axis=1)
    table = table.loc[~blank]
    for field in required:
        values = table[field].str.strip()
        empty = values.isna() | (values == "")
        if empty.any():
            line = int(empty.idxmax()) + 2
            raise KgrecError(f"empty {field}", path=path, line=line)
        table[field] = values
    return table.reset_index(drop=True)


def _item_texts(path: Path, item_nodes: dict[str, str | None]) -> pd.DataFrame:
    """Label (title) and description (title plus genre-like fields) of each item in the logs.

    Items with text but no entity link get an item key here (``item_nodes`` is updated).
    """
    table = read_atomic(path, ["item_id"])
    fields = [f for f in table.columns if f != "item_id"]
    title = next((f for f in TITLE_FIELDS if f in fields), None)
    descriptive = [f for f in fields if any(part in f.lower() for part in DESCRIPTIVE_FIELD_PARTS)]
    rows = []
    for values in table.loc[table["item_id"].isin(item_nodes.keys())].to_dict("records"):
        label = _text(values.get(title)) if title else None
        parts = [label] if label else []
        parts += [f"{f.replace('_', ' ')}: {_text(values[f])}" for f in descriptive if _text(values[f])]
        if not parts:
            continue
        item_id = values["item_id"]
        if item_nodes[item_id] is None:
            item_nodes[item_id] = ITEM_PREFIX + _quote(item_id)
        rows.append((item_nodes[item_id], label, ". ".join(parts)))
    texts = pd.DataFrame(rows, columns=TEXT_COLUMNS, dtype="object")
    return texts.drop_duplicates("node").reset_index(drop=True)


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value).strip() or None


def _quote(value: str) -> str:
    return quote(value, safe="")
