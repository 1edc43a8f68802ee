"""NUL bytes: never part of an id or of RDF text; strict names the line, lenient drops it."""

import json

import pandas as pd
import pytest

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf


@pytest.mark.parametrize("name", ["log.csv", "log.tsv"])
def test_strict_and_lenient(ws, name):
    sep = "\t" if name.endswith("tsv") else ","
    rows = ["user,item", "u1,i1", "u\x002,i2", "u3,i3"]
    path = ws.file(name, "".join(r.replace(",", sep) + "\n" for r in rows))
    with pytest.raises(KgrecError) as e:
        ws.read_log(path)
    assert str(e.value).startswith(f"{path}, line 3: NUL byte")
    ws.clean_error(ws.build(path), name, "NUL byte", line=3)
    table, report = ws.read_log(path, lenient=True)
    assert table["user"].tolist() == ["u1", "u3"] and ws.dropped(report) == {"NUL byte": 1}
    outcome = ws.build(path, lenient=True)
    assert outcome.rc == 0 and ws.report_lines(outcome) == ["dropped: NUL byte 1"]


def test_jsonl_raw_and_escaped(ws):
    raw = ws.file("raw.jsonl", b'{"user": "u1", "item": "i1"}\n{"user": "u\x002", "item": "i2"}\n')
    ws.clean_error(ws.build(raw), "raw.jsonl", "NUL byte", line=2)
    escaped = ws.file("esc.jsonl", "".join(json.dumps(r) + "\n" for r in [{"user": "u1", "item": "i1"}, {"user": "u\x002", "item": "i2"}]))
    ws.clean_error(ws.build(escaped), "esc.jsonl", "invalid user id", line=2)
    table, report = ws.read_log(escaped, lenient=True)
    assert len(table) == 1 and ws.dropped(report) == {"invalid user id": 1}


def test_parquet_string_with_nul(ws):
    path = ws.root / "log.parquet"
    pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i\x002"]}).to_parquet(path)
    ws.clean_error(ws.build(path), "log.parquet", "row 2: invalid item id")
    table, report = ws.read_log(path, lenient=True)
    assert table["item"].tolist() == ["i1"] and ws.dropped(report) == {"invalid item id": 1}


@pytest.mark.parametrize("ext", [".ttl", ".nt", ".rdf", ".jsonld", ".n3", ".trig", ".nq"])
def test_rdf(ws, ext):
    path = ws.file("nul" + ext, b'<http://e/a> <http://e/p> "x" .\n<http://e/a> <http://e/q> "a\x00b" .\n')
    with pytest.raises(KgrecError) as e:
        parse_rdf(path, lenient=True)  # a NUL byte is not a record to drop: the file is damaged
    assert str(e.value).startswith(f"{path}, line 2: holds a NUL (0x00) byte")


def test_escaped_nul_in_an_iri(ws):
    path = ws.file("esc.ttl", '<http://e/a\\u0000> <http://e/p> <http://e/b> .\n')
    with pytest.raises(KgrecError, match="invalid IRI: 'http://e/a\\\\x00' holds a NUL byte"):
        parse_rdf(path)
