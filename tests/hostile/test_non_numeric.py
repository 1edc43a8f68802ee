"""Non-numeric ratings and timestamps: strict names line, column and value; lenient counts them."""

import json

import pandas as pd
import pytest

from kgrec.errors import KgrecError


@pytest.mark.parametrize(
    "row, what",
    [
        ("u9,i1,five,100", "non-numeric rating in column 'rating': 'five'"),
        ("u9,i1,inf,100", "non-numeric rating in column 'rating': 'inf'"),
        ("u9,i1,4,yesterday", "bad timestamp in column 'timestamp': 'yesterday'"),
        ("u9,i1,4,2024-13-45", "bad timestamp in column 'timestamp': '2024-13-45'"),
    ],
)
def test_strict_names_line_column_and_value(ws, row, what):
    path = ws.file("log.csv", ws.csv(*ws.good_rows[:2], row, *ws.good_rows[2:]))
    with pytest.raises(KgrecError) as e:
        ws.read_log(path)
    assert str(e.value).startswith(f"{path}, line 4: {what}")
    ws.clean_error(ws.build(path), "log.csv", what, line=4)


def test_accepted_forms(ws):
    path = ws.file("log.csv", ws.csv("u1,i1,4.5,1700000000", "u2,i2,,2024-01-02T03:04:05Z", "u3,i3, 3 ,"))
    table, _ = ws.read_log(path)
    assert table["rating"].tolist()[0] == 4.5 and pd.isna(table["rating"].tolist()[1])
    assert table["timestamp"].tolist()[1] == pd.Timestamp("2024-01-02T03:04:05Z").timestamp()


def test_lenient_counts_each_reason(ws):
    rows = ["u1,i1,4,1", "u2,i1,x,2", "u3,i2,y,3", "u4,i3,4,soon", "u5,i1,5,5"]
    path = ws.file("log.csv", ws.csv(*rows))
    table, report = ws.read_log(path, lenient=True)
    assert table["user"].tolist() == ["u1", "u5"]
    assert ws.dropped(report) == {"non-numeric rating": 2, "bad timestamp": 1}
    outcome = ws.build(path, lenient=True)
    assert outcome.rc == 0
    assert ws.report_lines(outcome) == ["dropped: bad timestamp 1", "dropped: non-numeric rating 2"]


def test_jsonl_and_parquet(ws):
    records = [{"user": "u1", "item": "i1", "rating": 4}, {"user": "u2", "item": "i2", "rating": [5]}]
    jsonl = ws.file("log.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    ws.clean_error(ws.build(jsonl), "log.jsonl", "non-numeric rating", line=2)
    parquet = ws.root / "log.parquet"
    pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i2"], "timestamp": ["1", "never"]}).to_parquet(parquet)
    ws.clean_error(ws.build(parquet), "log.parquet", "row 2: bad timestamp in column 'timestamp': 'never'")
    _, report = ws.read_log(parquet, lenient=True)
    assert ws.dropped(report) == {"bad timestamp": 1}
