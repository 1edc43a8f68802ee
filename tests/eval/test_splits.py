"""Split protocols and the CSV exchange format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgrec.errors import KgrecError
from kgrec.eval.splits import (
    Split,
    make_split,
    read_split,
    recbole_split_counts,
    split_leave_one_out,
    split_random,
    split_temporal,
    write_split,
)

# RecBole 1.2.1 counts for ratios 0.8/0.1/0.1, worked out by hand from its rule.
RECBOLE_COUNTS = {
    1: [1, 0, 0],
    2: [1, 0, 1],
    3: [1, 1, 1],
    4: [2, 1, 1],
    5: [3, 1, 1],
    6: [4, 1, 1],
    7: [5, 1, 1],
    8: [6, 1, 1],
    9: [7, 1, 1],
    10: [8, 1, 1],
    11: [9, 1, 1],
    12: [10, 1, 1],
    15: [13, 1, 1],
    20: [16, 2, 2],
}


def make_pairs(sizes: list[int], seed: int = 0, timestamps: bool = True) -> pd.DataFrame:
    """User u gets sizes[u] distinct items and distinct random timestamps."""
    rng = np.random.default_rng(seed)
    rows = []
    for user, size in enumerate(sizes):
        items = rng.choice(50, size=size, replace=False)
        times = rng.permutation(size) * 10.0 + 1000.0
        rows += [(user, int(i), float(t)) for i, t in zip(items, times)]
    pairs = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    if not timestamps:
        pairs["timestamp"] = np.nan
    return pairs.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def as_set(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame["user"].tolist(), frame["item"].tolist()))


def counts_per_user(split: Split, user: int) -> list[int]:
    return [int((part["user"] == user).sum()) for part in (split.train, split.valid, split.test)]


@pytest.mark.parametrize("n,expected", sorted(RECBOLE_COUNTS.items()))
def test_recbole_counts(n, expected):
    assert recbole_split_counts(n, [0.8, 0.1, 0.1]) == expected


def test_recbole_counts_zero_validation_ratio():
    assert recbole_split_counts(10, [0.8, 0.0, 0.2]) == [8, 0, 2]
    assert recbole_split_counts(3, [0.8, 0.0, 0.2]) == [2, 0, 1]


@pytest.mark.parametrize("protocol", ["random", "temporal", "leave-one-out"])
def test_parts_are_disjoint_and_cover_all_pairs(protocol):
    pairs = make_pairs(list(range(1, 16)))
    split = make_split(pairs, protocol, seed=1)
    train, valid, test = as_set(split.train), as_set(split.valid), as_set(split.test)
    assert not (train & valid) and not (train & test) and not (valid & test)
    assert train | valid | test == as_set(pairs)
    assert split.protocol == protocol
    for part in (split.train, split.valid, split.test):
        assert list(part.columns) == ["user", "item"]
        assert part["user"].dtype == np.int64 and part["item"].dtype == np.int64


@pytest.mark.parametrize("protocol", ["random", "temporal"])
def test_ratio_split_counts_per_user(protocol):
    sizes = list(RECBOLE_COUNTS)
    split = make_split(make_pairs(sizes), protocol, seed=3)
    for user, n in enumerate(sizes):
        assert counts_per_user(split, user) == RECBOLE_COUNTS[n], f"user with {n} interactions"


def test_random_split_is_deterministic_by_seed_and_ignores_row_order():
    pairs = make_pairs([12] * 30)
    first = split_random(pairs, seed=7)
    again = split_random(pairs.sample(frac=1.0, random_state=99), seed=7)
    other = split_random(pairs, seed=8)
    assert as_set(first.test) == as_set(again.test) and as_set(first.valid) == as_set(again.valid)
    assert as_set(first.test) != as_set(other.test)


def test_random_split_actually_shuffles():
    # with 30 users x 12 items, the test items should not always be the largest item ids
    split = split_random(make_pairs([12] * 30), seed=0)
    largest = split.train.groupby("user")["item"].max()
    assert (split.test.set_index("user")["item"] < largest).any()


def test_temporal_split_trains_on_the_past():
    pairs = make_pairs([5, 10, 12, 20])
    split = split_temporal(pairs)
    time = pairs.set_index(["user", "item"])["timestamp"]

    def times(part):
        return part.assign(t=time.loc[list(zip(part["user"], part["item"]))].to_numpy()).groupby("user")["t"]

    assert (times(split.train).max() < times(split.valid).min()).all()
    assert (times(split.valid).max() < times(split.test).min()).all()


def test_temporal_ties_broken_by_item_id():
    pairs = pd.DataFrame({"user": [0] * 10, "item": list(range(9, -1, -1)), "timestamp": [5.0] * 10})
    split = split_temporal(pairs)
    assert split.valid["item"].tolist() == [8] and split.test["item"].tolist() == [9]


def test_temporal_split_needs_timestamps():
    with pytest.raises(KgrecError, match="timestamp"):
        split_temporal(make_pairs([5, 5], timestamps=False))
    partial = make_pairs([5, 5])
    partial.loc[3, "timestamp"] = np.nan
    with pytest.raises(KgrecError, match="1 of 10"):
        make_split(partial, "temporal")


def test_leave_one_out_by_time():
    pairs = make_pairs([1, 2, 3, 8])
    split = split_leave_one_out(pairs)
    assert counts_per_user(split, 0) == [1, 0, 0]
    assert counts_per_user(split, 1) == [2, 0, 0]
    assert counts_per_user(split, 2) == [1, 1, 1]
    assert counts_per_user(split, 3) == [6, 1, 1]
    user3 = pairs[pairs["user"] == 3].sort_values("timestamp")
    assert split.test.loc[split.test["user"] == 3, "item"].item() == user3["item"].iloc[-1]
    assert split.valid.loc[split.valid["user"] == 3, "item"].item() == user3["item"].iloc[-2]


def test_leave_one_out_without_timestamps_is_seeded():
    pairs = make_pairs([10] * 20, timestamps=False)
    a, b, c = (make_split(pairs, "leave_one_out", seed=s) for s in (1, 1, 2))
    assert as_set(a.test) == as_set(b.test) and as_set(a.test) != as_set(c.test)
    assert len(a.test) == len(a.valid) == 20


def test_leave_one_out_with_some_timestamps_missing_is_refused():
    pairs = make_pairs([4, 4])
    pairs.loc[0, "timestamp"] = np.nan
    with pytest.raises(KgrecError, match="1 of 8 have none"):
        split_leave_one_out(pairs)


def test_unknown_protocol_and_bad_ratios():
    pairs = make_pairs([5])
    with pytest.raises(KgrecError, match="unknown split protocol 'cold'"):
        make_split(pairs, "cold")
    with pytest.raises(KgrecError, match="ratios"):
        make_split(pairs, "random", ratios=(0.8, 0.2))
    with pytest.raises(KgrecError, match="ratios"):
        make_split(pairs, "random", ratios=(0.0, 0.5, 0.5))


def test_many_users_is_fast_enough():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(20_000), 10)
    pairs = pd.DataFrame({"user": users, "item": np.tile(np.arange(10), 20_000), "timestamp": rng.random(users.size)})
    split = split_random(pairs, seed=0)  # would take many seconds with a Python loop per user
    assert len(split.test) == len(split.valid) == 20_000


# --------------------------------------------------------------------------- CSV exchange
USER_IDS = ["007", "7", "alice", "bob"]
ITEM_IDS = ["0042", "42", "i,3", "x"]


def small_split() -> Split:
    def frame(rows):
        return pd.DataFrame(rows, columns=["user", "item"], dtype="int64")

    return Split(frame([(0, 0), (0, 1), (1, 1), (2, 2)]), frame([(0, 2)]), frame([(1, 0), (3, 3)]))


def indexes():
    return {u: i for i, u in enumerate(USER_IDS)}, {t: i for i, t in enumerate(ITEM_IDS)}


def test_write_read_round_trip_keeps_string_ids(tmp_path):
    split = small_split()
    write_split(split, tmp_path / "split", USER_IDS, ITEM_IDS)
    text = (tmp_path / "split" / "test.csv").read_text()
    assert text.splitlines() == ["user,item", "7,0042", "bob,x"]
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["test.csv", "train.csv", "valid.csv"]
    back = read_split(tmp_path / "split", *indexes())
    for name, part in split.parts().items():
        pd.testing.assert_frame_equal(back.parts()[name], part, check_dtype=True)
    assert back.protocol == "imported"


def test_empty_part_round_trips(tmp_path):
    split = small_split()
    split.valid = split.valid.iloc[:0]
    write_split(split, tmp_path, USER_IDS, ITEM_IDS)
    assert len(read_split(tmp_path, *indexes()).valid) == 0


def write_files(folder, train="user,item\n007,0042\n", valid="user,item\n", test="user,item\n7,42\n"):
    folder.mkdir(exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        if text is not None:
            (folder / f"{name}.csv").write_text(text)


def test_unknown_id_names_file_line_and_id(tmp_path):
    write_files(tmp_path, test="user,item\n7,42\nbob,x\ncarol,x\n")
    with pytest.raises(KgrecError, match=r"test\.csv, line 4: unknown user id 'carol'"):
        read_split(tmp_path, *indexes())
    write_files(tmp_path, train="user,item\n007,42.0\n")
    with pytest.raises(KgrecError, match=r"train\.csv, line 2: unknown item id '42\.0'"):
        read_split(tmp_path, *indexes())


def test_leading_zeros_are_not_numbers(tmp_path):
    write_files(tmp_path, train="user,item\n0007,0042\n")
    with pytest.raises(KgrecError, match="unknown user id '0007'"):
        read_split(tmp_path, *indexes())


def test_missing_file_and_column(tmp_path):
    write_files(tmp_path, valid=None)
    with pytest.raises(KgrecError, match=r"valid\.csv.*not found"):
        read_split(tmp_path, *indexes())
    write_files(tmp_path, valid="user,product\n")
    with pytest.raises(KgrecError, match=r"valid\.csv: missing column\(s\) item"):
        read_split(tmp_path, *indexes())


def test_overlap_between_train_and_test_is_refused(tmp_path):
    write_files(tmp_path, train="user,item\n007,0042\n7,42\n", test="user,item\n7,42\n")
    with pytest.raises(KgrecError, match="both in train.csv and test.csv"):
        read_split(tmp_path, *indexes())
