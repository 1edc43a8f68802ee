"""A log with a header and no records: an error in both modes (there is nothing to drop)."""

import json

import pytest

from kgrec.errors import KgrecError


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    "name, data",
    [
        ("log.csv", "user,item,rating,timestamp\n"),
        ("log.csv", "user,item,rating,timestamp"),  # no final line break
        ("log.csv", "user,item\n\n\n"),  # blank lines are not records
        ("log.tsv", "user\titem\n"),
        ("log.csv", "\ufeffuser,item\r\n"),  # a byte-order mark and Windows line ends
    ],
)
def test_header_only(ws, name, data, lenient):
    path = ws.file(name, data)
    with pytest.raises(KgrecError, match="the file has a header but no records"):
        ws.read_log(path, lenient=lenient)
    ws.clean_error(ws.build(path, lenient=lenient), name, "header but no records")


def test_lenient_log_whose_every_record_is_dropped_says_what_was_dropped(ws):
    path = ws.file("log.csv", ws.csv("u1,i1,five,1", "u2,i2,4,yesterday"))
    message = ws.clean_error(ws.build(path, lenient=True), "log.csv", "no interactions left to use")
    assert "non-numeric rating 1" in message and "bad timestamp 1" in message


def test_jsonl_of_records_without_the_needed_keys(ws):
    path = ws.file("log.jsonl", json.dumps({"when": 1}) + "\n")
    ws.clean_error(ws.build(path), "log.jsonl", "no user column 'user'", "'when'")
