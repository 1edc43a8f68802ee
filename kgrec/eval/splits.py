"""Train / validation / test splits of user-item interactions, and their CSV exchange format.

Three protocols, all per user so that every user keeps most of their history in training:

* ``random``: shuffle each user's interactions (seeded), then cut by ratios with RecBole 1.2.1's
  rounding rule, so counts match a RecBole run with ``group_by: user`` and ``RS``.
* ``temporal``: the same cut after sorting each user's interactions by time: the model is
  trained on the past and judged on the future.
* ``leave-one-out``: the last interaction of each user is the test item, the one before it the
  validation item.

A split can be written to and read from a folder of ``train.csv``, ``valid.csv``,
``test.csv`` with the original ids, so another library can be run on the very same split.

Input ``pairs``: a DataFrame with unique (``user``, ``item``) integer pairs and, for the
temporal protocols, a float ``timestamp`` column (NaN where unknown). Outputs hold only
``user`` and ``item`` (int64), sorted by user then item. Results depend on the seed and on the
set of pairs, not on the row order of ``pairs``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import KgrecError
from kgrec.graph.useritem import UserItemSets

PROTOCOLS = ("random", "temporal", "leave-one-out")
SPLIT_FILES = ("train", "valid", "test")
#: The sparse protocol's left-out training pairs (``withheld.csv``, written only when there are any).
WITHHELD = "withheld"

_TRAIN, _VALID, _TEST = 0, 1, 2


@dataclass
class Split:
    """Three disjoint sets of (user, item) index pairs.

    Attributes:
        train, valid, test: DataFrames with int64 columns ``user`` and ``item``.
        protocol: how the split was made (``random``, ``temporal``, ``leave-one-out``,
            or ``imported`` when read from CSV files).
        withheld: training pairs the sparse protocol left out (or None).
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    protocol: str = "random"
    #: Training pairs left out by the sparse protocol (:func:`thin_training`): in no part, and
    #: removed from the training graph like the held-out pairs. None: nothing left out.
    withheld: pd.DataFrame | None = None

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def user_item_sets(self, num_users: int, num_items: int) -> dict[str, UserItemSets]:
        """Each part as a :class:`UserItemSets`, for masking and evaluation."""
        return {
            name: UserItemSets.from_pairs(part["user"].to_numpy(), part["item"].to_numpy(), num_users, num_items)
            for name, part in self.parts().items()
        }


# --------------------------------------------------------------------------- protocols
def recbole_split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """How many of a user's ``n`` interactions go to each part, by RecBole 1.2.1's rule.

    Round every part but the first down, give the first the rest; then any later part whose
    exact share is strictly between 0 and 1 gets one interaction taken from the first, as long
    as the first keeps at least one (test is served before valid).
    """
    total = sum(ratios)
    ratios = [r / total for r in ratios]
    counts = [int(r * n) for r in ratios]
    counts[0] = n - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * n < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def split_random(pairs: pd.DataFrame, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 2024) -> Split:
    """Per user, shuffle the interactions with a seeded generator and cut by ``ratios``."""
    ratios = _check_ratios(ratios)
    frame = _canonical(pairs)
    frame["_order"] = np.random.default_rng(seed).random(len(frame))
    return _cut_by_ratios(frame.sort_values(["user", "_order"], kind="stable"), ratios, "random")


def split_temporal(pairs: pd.DataFrame, ratios: Sequence[float] = (0.8, 0.1, 0.1)) -> Split:
    """Per user, sort by time (ties by item id) and cut by ``ratios``: train on the past."""
    ratios = _check_ratios(ratios)
    frame = _canonical(pairs, need_timestamps=True)
    return _cut_by_ratios(frame.sort_values(["user", "timestamp", "item"], kind="stable"), ratios, "temporal")


def split_leave_one_out(pairs: pd.DataFrame, seed: int = 2024) -> Split:
    """Per user, last interaction -> test, the one before -> valid, the rest -> train.

    "Last" is by timestamp (ties by item id) when the pairs have timestamps, else (all
    timestamps NaN or no column) a seeded random order; some but not all missing is an error.
    Users with fewer than 3 interactions keep everything in train: holding out their only
    items would leave nothing to learn them from.
    """
    if "timestamp" in pairs and pairs["timestamp"].notna().any():  # some known: all must be
        frame = _canonical(pairs, need_timestamps=True).sort_values(["user", "timestamp", "item"], kind="stable")
    else:
        frame = _canonical(pairs)
        frame["_order"] = np.random.default_rng(seed).random(len(frame))
        frame = frame.sort_values(["user", "_order"], kind="stable")
    from_end = frame.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    size = frame.groupby("user", sort=False)["item"].transform("size").to_numpy()
    part = np.full(len(frame), _TRAIN)
    part[(size >= 3) & (from_end == 0)] = _TEST
    part[(size >= 3) & (from_end == 1)] = _VALID
    return _assemble(frame, part, "leave-one-out")


def thin_training(split: Split, fraction: float, seed: int) -> Split:
    """The sparse protocol: keep a random ``fraction`` of each user's training pairs.

    Each user keeps ``max(1, round(fraction * n))`` of their ``n`` training pairs, drawn
    uniformly (``seed``); validation and test are unchanged, so the same held-out interactions
    are ranked with less history. The rest go to :attr:`Split.withheld`.
    """
    if fraction >= 1.0:
        return split
    train = split.train.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    key = rng.random(len(train))
    order = np.lexsort((key, train["user"].to_numpy()))
    users = train["user"].to_numpy()[order]
    starts = np.r_[0, np.flatnonzero(users[1:] != users[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    keep_n = np.maximum(1, np.rint(fraction * counts)).astype(np.int64)
    kept = np.zeros(len(train), dtype=bool)
    kept[order] = rank < np.repeat(keep_n, counts)
    withheld = train[~kept].reset_index(drop=True)
    return Split(train[kept].reset_index(drop=True), split.valid, split.test, split.protocol, withheld)


def make_split(
    pairs: pd.DataFrame, protocol: str, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 2024
) -> Split:
    """Split by protocol name (``random``, ``temporal``, ``leave-one-out``); ratios are ignored by
    leave-one-out, the seed by temporal."""
    name = protocol.strip().lower().replace("_", "-")
    if name == "random":
        return split_random(pairs, ratios, seed)
    if name == "temporal":
        return split_temporal(pairs, ratios)
    if name == "leave-one-out":
        return split_leave_one_out(pairs, seed)
    raise KgrecError(f"unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def _check_ratios(ratios: Sequence[float]) -> list[float]:
    ratios = [float(r) for r in ratios]
    if len(ratios) != 3 or any(not np.isfinite(r) or r < 0 for r in ratios) or ratios[0] <= 0:
        raise KgrecError(
            f"split ratios must be three non-negative numbers (train, valid, test) with train > 0, got {ratios}"
        )
    return ratios


def _canonical(pairs: pd.DataFrame, need_timestamps: bool = False) -> pd.DataFrame:
    """user/item (and timestamp) columns in (user, item) order, so row order of input is irrelevant."""
    missing = {"user", "item"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs lack columns {sorted(missing)}")
    columns = ["user", "item"]
    if need_timestamps:
        if not _has_timestamps(pairs):
            unknown = int(pairs["timestamp"].isna().sum()) if "timestamp" in pairs else len(pairs)
            raise KgrecError(
                f"ordering interactions by time needs a timestamp on every interaction; "
                f"{unknown} of {len(pairs)} have none (use the random protocol instead)"
            )
        columns.append("timestamp")
    frame = pairs[columns].astype({"user": "int64", "item": "int64"})
    if frame.duplicated(["user", "item"]).any():
        raise ValueError("pairs must hold each (user, item) pair once")
    return frame.sort_values(["user", "item"], kind="stable").reset_index(drop=True)


def _has_timestamps(pairs: pd.DataFrame) -> bool:
    return "timestamp" in pairs and len(pairs) > 0 and not pairs["timestamp"].isna().any()


def _cut_by_ratios(ordered: pd.DataFrame, ratios: list[float], protocol: str) -> Split:
    """Assign each user's first rows (in the given order) to train, the next to valid, the rest to test."""
    position = ordered.groupby("user", sort=False).cumcount().to_numpy()
    size = ordered.groupby("user", sort=False)["item"].transform("size").to_numpy()
    # The rule depends only on a user's size, so evaluate it once per distinct size.
    sizes = np.unique(size)
    counts = np.array([recbole_split_counts(int(n), ratios) for n in sizes], dtype=np.int64).reshape(-1, 3)
    row = np.searchsorted(sizes, size)
    train_end = counts[row, 0]
    valid_end = train_end + counts[row, 1]
    part = np.where(position < train_end, _TRAIN, np.where(position < valid_end, _VALID, _TEST))
    return _assemble(ordered, part, protocol)


def _assemble(frame: pd.DataFrame, part: np.ndarray, protocol: str) -> Split:
    def select(code: int) -> pd.DataFrame:
        chosen = frame.loc[part == code, ["user", "item"]]
        return chosen.sort_values(["user", "item"]).reset_index(drop=True)

    return Split(select(_TRAIN), select(_VALID), select(_TEST), protocol)


# --------------------------------------------------------------------------- CSV exchange
def write_split(split: Split, folder: str | os.PathLike, user_ids: Sequence[str], item_ids: Sequence[str]) -> None:
    """Write ``train.csv``, ``valid.csv``, ``test.csv`` (columns ``user,item``, original ids).

    Each file is written to a temporary file in the same folder and then renamed over the
    target, so a crash never leaves a half-written split behind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    users = np.asarray(user_ids, dtype=object)
    items = np.asarray(item_ids, dtype=object)
    parts = dict(split.parts())
    if split.withheld is not None and len(split.withheld):
        parts[WITHHELD] = split.withheld
    for name, part in parts.items():
        table = pd.DataFrame({"user": users[part["user"].to_numpy()], "item": items[part["item"].to_numpy()]})
        _write_atomically(table, folder / f"{name}.csv")


def _write_atomically(table: pd.DataFrame, path: Path) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            table.to_csv(out, index=False)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_split(folder: str | os.PathLike, user_index: dict[str, int], item_index: dict[str, int]) -> Split:
    """Read a split written by :func:`write_split` (or by hand, or by another library).

    Ids are read as strings, so ``007`` stays ``007``, and mapped through the given indexes.
    Duplicate rows within a file are dropped.

    Raises:
        KgrecError: a file or column is missing, a line names an unknown user or item (the
            message gives file, line and id), or a pair appears in two parts.
    """
    folder = Path(folder)
    parts = {name: _read_part(folder / f"{name}.csv", user_index, item_index) for name in SPLIT_FILES}
    for first, second in (("train", "test"), ("train", "valid"), ("valid", "test")):
        both = parts[first].merge(parts[second], on=["user", "item"])
        if len(both):
            raise KgrecError(
                f"{len(both)} (user, item) pairs are both in {first}.csv and {second}.csv, "
                f"which would leak held-out interactions into training or double-count them",
                path=folder,
            )
    withheld = _read_part(folder / f"{WITHHELD}.csv", user_index, item_index) if (folder / f"{WITHHELD}.csv").is_file() else None
    return Split(parts["train"], parts["valid"], parts["test"], protocol="imported", withheld=withheld)


def _read_part(path: Path, user_index: dict[str, int], item_index: dict[str, int]) -> pd.DataFrame:
    if not path.is_file():
        raise KgrecError("split file not found (a split folder holds train.csv, valid.csv and test.csv)", path=path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise KgrecError(f"not a readable CSV file: {error}", path=path) from None
    missing = [c for c in ("user", "item") if c not in table.columns]
    if missing:
        raise KgrecError(f"missing column(s) {', '.join(missing)}; found {list(table.columns)}", path=path)
    columns = {}
    for column, index in (("user", user_index), ("item", item_index)):
        ids = table[column]
        codes = ids.map(index)
        unknown = codes.isna().to_numpy()
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise KgrecError(
                f"unknown {column} id {ids.iloc[row]!r} ({int(unknown.sum())} unknown in this file); "
                f"the split must use the ids of the graph it is applied to",
                path=path,
                line=row + 2,  # 1-based, after the header line
            )
        columns[column] = codes.astype("int64").to_numpy()
    part = pd.DataFrame(columns).drop_duplicates()
    return part.sort_values(["user", "item"]).reset_index(drop=True)
