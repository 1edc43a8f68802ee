"""The KGAT data layout (Wang et al., KDD 2019) -> :class:`SourceTables` plus its official test split.

A KGAT dataset folder (``amazon-book``, ``last-fm``, ``yelp2018``) holds:

* ``train.txt`` and ``test.txt``: one line per user, ``user item item ...`` (integer ids);
* ``kg_final.txt``: ``head relation tail`` integer ids. Entity ids below the number of items
  *are* the items (entity 5 is item 5); the rest are other entities.

Everything becomes an IRI-shaped key, ``urn:kgat:entity:<id>`` and ``urn:kgat:relation:<id>``,
and item ``i`` is the node ``urn:kgat:entity:<i>``. The interactions hold train *and* test pairs
(the graph needs every item); the test pairs come back separately so that the caller can store
them as a fixed split and compare with published KGAT numbers on the very same split.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import KgrecError
from kgrec.ingest.sources import INTERACTION_COLUMNS, TRIPLE_COLUMNS, BuildReport, SourceTables

ENTITY_PREFIX = "urn:kgat:entity:"
RELATION_PREFIX = "urn:kgat:relation:"
DEFAULT_EVENT = "interact"


def read_kgat(folder: str | Path, report: BuildReport | None = None) -> tuple[SourceTables, pd.DataFrame]:
    """Read a KGAT dataset folder.

    Returns:
        ``(tables, test_pairs)``: the source tables (interactions = train + test) and the
        official test pairs, columns ``user`` and ``item`` (str ids as in the interactions).

    Raises:
        KgrecError: a missing file or a line that is not made of non-negative integers.
    """
    folder = Path(folder)
    report = report if report is not None else BuildReport()
    train = _read_user_items(folder / "train.txt")
    test = _read_user_items(folder / "test.txt")
    both = pd.concat([train, test], ignore_index=True)
    if both.empty:
        raise KgrecError("train.txt and test.txt hold no interactions", path=folder)
    n_items = int(both["item"].max()) + 1

    interactions = both.astype({"user": "str", "item": "str"})
    interactions["event"] = pd.Series(DEFAULT_EVENT, index=interactions.index, dtype="str")
    interactions["rating"] = np.nan
    interactions["timestamp"] = np.nan
    interactions = interactions[INTERACTION_COLUMNS]
    duplicate = interactions.duplicated(["user", "item", "event"]).to_numpy()
    report.read("interactions", len(interactions))
    report.dropped("interactions", "duplicate", int(duplicate.sum()))
    interactions = interactions.loc[~duplicate].reset_index(drop=True)
    report.kept("interactions", len(interactions))
    test_pairs = test.astype({"user": "str", "item": "str"}).drop_duplicates().reset_index(drop=True)

    kg = _read_kg(folder / "kg_final.txt")
    report.read("kg", len(kg))
    kg = kg.drop_duplicates()
    report.dropped("kg", "duplicate", report.counts["kg"]["read"] - len(kg))
    report.kept("kg", len(kg))
    triples = pd.DataFrame(
        {
            "head": ENTITY_PREFIX + kg["head"].astype("str"),
            "relation": RELATION_PREFIX + kg["relation"].astype("str"),
            "tail": ENTITY_PREFIX + kg["tail"].astype("str"),
        },
        dtype="string",
    )[TRIPLE_COLUMNS].reset_index(drop=True)

    items = interactions["item"].unique()
    item_nodes: dict[str, str | None] = {i: ENTITY_PREFIX + i for i in items}
    in_kg = set(kg["head"].to_numpy()[kg["head"].to_numpy() < n_items]) | set(
        kg["tail"].to_numpy()[kg["tail"].to_numpy() < n_items]
    )
    with_kg = sum(int(i) in in_kg for i in items)
    report.add("items", "read", len(items))
    report.add("items", "items in the knowledge graph", with_kg)
    report.add("items", "items without knowledge", len(items) - with_kg)

    tables = SourceTables(
        interactions=interactions,
        item_nodes=item_nodes,
        triples=triples,
        texts=SourceTables.empty_texts(),
        report=report,
        inputs={
            "interactions": [str(folder / "train.txt"), str(folder / "test.txt")],
            "kg": [str(folder / "kg_final.txt")],
        },
    )
    return tables, test_pairs


def _read_user_items(path: Path) -> pd.DataFrame:
    """``user item item ...`` lines -> (user, item) pairs as int64 columns."""
    if not path.is_file():
        raise KgrecError("KGAT file not found (expected train.txt, test.txt and kg_final.txt)", path=path)
    users: list[int] = []
    items: list[int] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                ids = [int(f) for f in fields]
            except ValueError:
                bad = next(f for f in fields if not f.lstrip("-").isdigit())
                raise KgrecError(
                    f"{bad!r} is not an integer id (lines are 'user item item ...')", path=path, line=number
                ) from None
            if min(ids) < 0:
                raise KgrecError("negative id (lines are 'user item item ...')", path=path, line=number)
            users.extend([ids[0]] * (len(ids) - 1))
            items.extend(ids[1:])
    return pd.DataFrame(
        {"user": np.asarray(users, dtype=np.int64), "item": np.asarray(items, dtype=np.int64)}
    )


def _read_kg(path: Path) -> pd.DataFrame:
    """``head relation tail`` lines -> int64 columns; a bad line is an error naming it."""
    if not path.is_file():
        raise KgrecError("KGAT file not found (expected train.txt, test.txt and kg_final.txt)", path=path)
    try:
        kg = pd.read_csv(
            path, sep=r"\s+", header=None, names=TRIPLE_COLUMNS, dtype="str", skip_blank_lines=True
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in TRIPLE_COLUMNS})
    except pd.errors.ParserError as e:
        found = re.search(r"Expected \d+ fields in line (\d+), saw (\d+)", str(e))
        if found is None:
            raise KgrecError(
                f"expected 'head relation tail' on every line ({str(e).strip()})", path=path
            ) from None
        raise KgrecError(
            f"expected three ids 'head relation tail', saw {found.group(2)} fields",
            path=path,
            line=int(found.group(1)),
        ) from None
    numbers = kg.apply(pd.to_numeric, errors="coerce")
    bad = (numbers.isna() | (numbers < 0)).any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        line = _line_of_record(path, row)
        raise KgrecError(
            f"expected three non-negative integer ids 'head relation tail', got {' '.join(map(str, kg.iloc[row].dropna()))!r}",
            path=path,
            line=line,
        )
    return numbers.astype("int64")


def _line_of_record(path: Path, record: int) -> int:
    """The file line of the ``record``-th non-blank line (pandas skips blank lines)."""
    seen = -1
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                seen += 1
                if seen == record:
                    return number
    return seen + 1
