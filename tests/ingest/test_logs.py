import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest

from kgrec.config import InteractionSource
from kgrec.errors import KgrecError
from kgrec.ingest.logs import read_interactions
from kgrec.ingest.sources import INTERACTION_COLUMNS, BuildReport

RECORDS = [
    {"user": "u1", "item": "i1", "event": "click", "rating": 4.0, "timestamp": 100.0},
    {"user": "u1", "item": "i2", "event": "buy", "rating": 2.5, "timestamp": 200.0},
    {"user": "u2", "item": "i1", "event": "click", "rating": 5.0, "timestamp": 300.0},
]


def write_log(path, records=RECORDS):
    """Write records in the format the file name says (gzip for a .gz suffix)."""
    frame = pd.DataFrame(records)
    name = path.name.removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        frame.to_parquet(path)
        return path
    if name.endswith((".jsonl", ".ndjson")):
        text = "".join(json.dumps(r) + "\n" for r in records)
    else:
        text = frame.to_csv(index=False, sep="\t" if name.endswith((".tsv", ".tab")) else ",")
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read(path, report=None, lenient=False, **kwargs):
    chunk_rows = kwargs.pop("chunk_rows", 1000)
    return read_interactions(
        InteractionSource(path=str(path), **kwargs),
        report or BuildReport(),
        lenient=lenient,
        chunk_rows=chunk_rows,
    )


@pytest.mark.parametrize(
    "name",
    [
        "log.csv",
        "log.tsv",
        "log.tab",
        "log.parquet",
        "log.pq",
        "log.jsonl",
        "log.ndjson",
        "log.csv.gz",
        "log.tsv.gz",
        "log.jsonl.gz",
    ],
)
def test_every_format_round_trips(tmp_path, name):
    table = read(write_log(tmp_path / name))
    assert list(table.columns) == INTERACTION_COLUMNS
    expected = pd.DataFrame(RECORDS)[INTERACTION_COLUMNS]
    pd.testing.assert_frame_equal(table.astype(object), expected.astype(object))
    assert table["rating"].dtype == np.float64 and table["timestamp"].dtype == np.float64


def test_format_flag_overrides_the_extension(tmp_path):
    path = write_log(tmp_path / "log.tsv")
    renamed = path.rename(tmp_path / "log.data")
    assert len(read(renamed, format="tsv")) == 3


def test_unknown_extension_names_file_and_accepted_formats(tmp_path, write):
    path = write("log.xlsx", "user,item\n1,2\n")
    with pytest.raises(KgrecError) as e:
        read(path)
    assert "log.xlsx" in str(e.value) and ".csv" in str(e.value) and ".parquet" in str(e.value)


def test_column_names_are_mapped(write):
    path = write("log.csv", "uid,mid,stars,when,kind\n7,99,3,10,view\n")
    table = read(
        path,
        user_column="uid",
        item_column="mid",
        rating_column="stars",
        timestamp_column="when",
        event_column="kind",
    )
    assert table.iloc[0].to_dict() == {
        "user": "7",
        "item": "99",
        "event": "view",
        "rating": 3.0,
        "timestamp": 10.0,
    }


def test_optional_columns_absent_gives_default_event_and_nan(write):
    table = read(write("log.csv", "user,item\na,b\n"), default_event="watch")
    assert table["event"].tolist() == ["watch"]
    assert math.isnan(table["rating"][0]) and math.isnan(table["timestamp"][0])


def test_missing_user_column_lists_the_columns_found(write):
    with pytest.raises(KgrecError) as e:
        read(write("log.csv", "userId,item\n1,2\n"))
    message = str(e.value)
    assert "log.csv" in message and "'user'" in message and "'userId'" in message and "'item'" in message


def test_missing_item_key_in_jsonl_lists_the_keys_found(write):
    with pytest.raises(KgrecError, match="movieId"):
        read(write("log.jsonl", '{"user": 1, "movieId": 2}\n'))


def test_ids_are_stripped_strings_and_na_is_a_valid_id(write):
    table = read(write("log.csv", "user,item\n  u1 , NA \n"))
    assert table["user"].tolist() == ["u1"] and table["item"].tolist() == ["NA"]


def test_numeric_ids_become_text(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user": [1, 2], "item": [10.0, 20.0]}).to_parquet(path)
    table = read(path)
    assert table["user"].tolist() == ["1", "2"] and table["item"].tolist() == ["10", "20"]


def test_iso_timestamps_become_epoch_seconds(write):
    path = write(
        "log.csv",
        "user,item,timestamp\na,1,2020-01-01T00:00:00Z\nb,1,1970-01-02\nc,1,1970-01-01T01:00:00+01:00\nd,1,60\n",
    )
    assert read(path)["timestamp"].tolist() == [1577836800.0, 86400.0, 0.0, 60.0]


def test_parquet_datetime_column_becomes_epoch_seconds(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame(
        {"user": ["a"], "item": ["b"], "timestamp": pd.to_datetime(["1970-01-01 00:01:00"])}
    ).to_parquet(path)
    assert read(path)["timestamp"].tolist() == [60.0]


# ----------------------------------------------------------------------------- strict errors
@pytest.mark.parametrize(
    "text, line, what",
    [
        ("user,item,rating\na,b,1\nc,d,lots\n", 3, "non-numeric rating"),
        ("user,item,rating\na,b,1\n\n ,d,1\n", 4, "empty user id"),
        ("user,item,rating\na,,1\n", 2, "empty item id"),
        ("user,item,timestamp\na,b,yesterday\n", 2, "bad timestamp"),
        ("user,item,rating\na,b,1\nc,d,1,extra\n", 3, "wrong number of fields"),
    ],
)
def test_strict_error_names_file_line_and_problem(write, text, line, what):
    with pytest.raises(KgrecError) as e:
        read(write("log.csv", text))
    assert f"log.csv, line {line}: {what}" in str(e.value)


def test_strict_error_is_the_first_bad_record_even_before_a_bad_field_count(write):
    path = write("log.csv", "user,item,rating\na,b,x\nc,d,1,extra\n")
    with pytest.raises(KgrecError, match="line 2: non-numeric rating"):
        read(path)


def test_strict_error_line_numbers_hold_across_chunks(write):
    rows = "".join(f"u{i},i{i},1\n" for i in range(7))
    path = write("log.csv", "user,item,rating\n" + rows + "u,i,bad\n")
    with pytest.raises(KgrecError, match=r"line 9: non-numeric rating"):
        read(path, chunk_rows=3)


@pytest.mark.parametrize(
    "text, line, what",
    [
        ('{"user": "a", "item": "b"}\n\n{"user": "a", "item": \n', 3, "malformed JSON"),
        ('{"user": "a", "item": "b"}\n[1, 2]\n', 2, "not a JSON object"),
        ('{"user": "a", "item": "b", "rating": "x"}\n', 1, "non-numeric rating"),
        ('{"user": "a", "item": "b"}\n{"user": {"id": 1}, "item": "b"}\n', 2, "invalid user id"),
    ],
)
def test_strict_jsonl_errors_name_the_line(write, text, line, what):
    with pytest.raises(KgrecError) as e:
        read(write("log.jsonl", text))
    assert f"log.jsonl, line {line}: {what}" in str(e.value)


def test_strict_parquet_error_names_the_row(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user": ["a", "b", None], "item": ["x", "y", "z"]}).to_parquet(path)
    with pytest.raises(KgrecError, match=r"log.parquet: row 3: empty user id"):
        read(path)


def test_empty_file_and_header_only_are_clear_errors(write):
    with pytest.raises(KgrecError, match="empty"):
        read(write("empty.csv", ""))
    with pytest.raises(KgrecError, match="header but no records"):
        read(write("header.csv", "user,item\n"))
    with pytest.raises(KgrecError, match="no records"):
        read(write("empty.jsonl", "\n\n"))


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(KgrecError, match="not found"):
        read(tmp_path / "nope.csv")


def test_relative_path_resolves_against_base_dir(tmp_path):
    write_log(tmp_path / "log.csv")
    table = read_interactions(
        InteractionSource(path="log.csv"), BuildReport(), lenient=False, base_dir=tmp_path
    )
    assert len(table) == 3


# ----------------------------------------------------------------------------- lenient
def test_lenient_drops_bad_records_and_counts_them_per_reason(write, report):
    path = write(
        "log.csv",
        "user,item,rating,timestamp\n"
        "a,1,5,1\n"
        "b,1,five,1\n"  # non-numeric rating
        ",1,5,1\n"  # empty user id
        "c,,5,1\n"  # empty item id
        "d,1,5,soon\n"  # bad timestamp
        "e,1,5,1,9\n"  # wrong number of fields
        "a,1,4,2\n",  # duplicate of the first
    )
    table = read(path, report, lenient=True, chunk_rows=2)
    assert table["user"].tolist() == ["a"] and table["rating"].tolist() == [5.0]  # first occurrence kept
    counts = report.counts["interactions"]
    assert counts["read"] == 7 and counts["kept"] == 1
    for reason in [
        "non-numeric rating",
        "empty user id",
        "empty item id",
        "bad timestamp",
        "wrong number of fields",
        "duplicate",
    ]:
        assert counts[f"dropped: {reason}"] == 1, reason


def test_lenient_jsonl_counts_malformed_lines(write, report):
    path = write("log.jsonl", '{"user": "a", "item": "b"}\n{oops\n7\n{"user": "c", "item": "d"}\n')
    table = read(path, report, lenient=True)
    assert table["user"].tolist() == ["a", "c"]
    assert report.counts["interactions"]["dropped: malformed JSON"] == 1
    assert report.counts["interactions"]["dropped: not a JSON object"] == 1


def test_nothing_left_is_an_error(write):
    with pytest.raises(KgrecError, match="no interactions left"):
        read(write("log.csv", "user,item,rating\na,b,x\n"), lenient=True)


# ----------------------------------------------------------------------------- implicit rule
def test_rating_threshold_keeps_ratings_at_or_above_it(write, report):
    path = write("log.csv", "user,item,rating\na,1,4\na,2,3.5\na,3,5\na,4,\n")
    table = read(path, report, rating_threshold=4)
    assert table["item"].tolist() == ["1", "3"]
    counts = report.counts["interactions"]
    assert counts["dropped: below rating threshold"] == 1
    assert counts["dropped: no rating (rating_threshold is set)"] == 1


def test_rating_split_turns_ratings_into_two_behaviours(write, report):
    path = write("log.csv", "user,item,event,rating\na,1,rate,4\na,2,rate,3.5\na,3,rate,5\na,4,rate,\n")
    table = read(path, report, rating_split=4)
    assert table["item"].tolist() == ["1", "2", "3"]
    assert table["event"].tolist() == ["like", "rated", "like"]  # the log's own event is replaced
    assert report.counts["interactions"]["dropped: no rating (rating_split is set)"] == 1


def test_rating_split_names_are_the_users_and_the_events_filter_sees_them(write):
    path = write("log.csv", "user,item,rating\na,1,1\na,2,5\n")
    table = read(path, rating_split=3, rating_events=["good", "bad"], events=["good"])
    assert table["item"].tolist() == ["2"] and table["event"].tolist() == ["good"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"rating_split": 4, "rating_threshold": 4}, "both set"),
        ({"rating_split": 4, "rating_events": ["like"]}, "two different behaviour names"),
        ({"rating_split": 4, "rating_events": ["like", "like"]}, "two different behaviour names"),
    ],
)
def test_rating_split_refuses_contradictions(write, options, message):
    with pytest.raises(KgrecError, match=message):
        read(write("log.csv", "user,item,rating\na,1,4\n"), **options)


def test_without_threshold_every_row_is_positive(write):
    assert len(read(write("log.csv", "user,item,rating\na,1,0\na,2,-1\na,3,\n"))) == 3


def test_events_filter(write, report):
    path = write("log.csv", "user,item,event\na,1,click\na,2,buy\na,3,view\na,4,\n")
    table = read(path, report, events=["buy", "interact"])
    assert table["item"].tolist() == ["2", "4"]  # an empty event is the default one
    assert report.counts["interactions"]["dropped: event not selected"] == 2


def test_duplicates_keep_the_first_and_are_dropped_in_strict_mode_too(write, report):
    path = write("log.csv", "user,item,event,rating\na,1,click,1\na,1,buy,2\na,1,click,3\n")
    table = read(path, report, chunk_rows=1)
    assert table[["event", "rating"]].values.tolist() == [["click", 1.0], ["buy", 2.0]]
    assert report.counts["interactions"]["dropped: duplicate"] == 1
    assert report.counts["interactions"]["kept"] == 2


def test_custom_delimiter(write):
    table = read(write("log.csv", "user;item\na;b\n"), delimiter=";")
    assert table[["user", "item"]].values.tolist() == [["a", "b"]]
