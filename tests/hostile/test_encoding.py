"""Non-UTF-8 bytes: strict names the line (and the byte); lenient drops exactly those lines.

Latin-1 or Windows-1252 exports are the usual culprit. pandas would otherwise stop with a
UnicodeDecodeError that names a byte offset of a buffer, not a line of the file.
"""

import gzip
import json

import pytest

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf
from kgrec.ingest.sources import BuildReport

LATIN1_ROW = "u9,caf\xe9,4,900".encode("latin-1")


def log_with_latin1(ws, name="log.csv"):
    rows = [r.encode() for r in ws.good_rows]
    return ws.file(name, b"user,item,rating,timestamp\n" + b"\n".join(rows[:2] + [LATIN1_ROW] + rows[2:]) + b"\n")


def test_strict_names_file_line_and_byte(ws):
    path = log_with_latin1(ws)
    with pytest.raises(KgrecError) as e:
        ws.read_log(path)
    assert str(e.value).startswith(f"{path}, line 4: not UTF-8 text: byte 0xe9 at column 7")
    ws.clean_error(ws.build(path), "log.csv", "not UTF-8 text", line=4)


def test_a_bad_record_above_is_reported_first(ws):
    rows = [r.encode() for r in ["u1,i1,4,1", "u2,i2,bad,2", "u3,i3,4,3"]]
    path = ws.file("log.csv", b"user,item,rating,timestamp\n" + b"\n".join(rows + [LATIN1_ROW]) + b"\n")
    with pytest.raises(KgrecError, match="line 3: non-numeric rating"):
        ws.read_log(path)


@pytest.mark.parametrize("name", ["log.csv", "log.csv.gz"])
def test_lenient_drops_the_line_and_counts_it(ws, name):
    path = log_with_latin1(ws)
    if name.endswith(".gz"):
        path = ws.file(name, gzip.compress(path.read_bytes()))
    table, report = ws.read_log(path, lenient=True)
    assert len(table) == 4 and "u9" not in set(table["user"])
    assert ws.dropped(report) == {"not UTF-8 text": 1}
    assert report.counts["interactions"]["read"] == 5
    outcome = ws.build(path, lenient=True)
    assert outcome.rc == 0, outcome.err
    assert ws.report_lines(outcome) == ["dropped: not UTF-8 text 1"]


def test_line_numbers_after_dropped_lines_stay_right(ws):
    rows = [r.encode() for r in ["u1,i1,4,1", "u2,i2,4,2"]] + [LATIN1_ROW] * 3 + [b"u4,i3,4,4", b"u5,i1,x,5"]
    path = ws.file("log.csv", b"user,item,rating,timestamp\n" + b"\n".join(rows) + b"\n")
    table, report = ws.read_log(path, lenient=True)
    assert ws.dropped(report) == {"not UTF-8 text": 3, "non-numeric rating": 1}
    assert table["user"].tolist() == ["u1", "u2", "u4"]


def test_bad_bytes_in_the_header(ws):
    path = ws.file("log.csv", b"us\xe9r,item\nu1,i1\n")
    for lenient in (False, True):
        ws.clean_error(ws.build(path, lenient=lenient), "log.csv", "header line is unreadable", line=1)


def test_jsonl(ws):
    lines = [json.dumps({"user": "u1", "item": "i1"}).encode(), b'{"user": "u\xe9", "item": "i2"}']
    path = ws.file("log.jsonl", b"\n".join(lines) + b"\n")
    ws.clean_error(ws.build(path), "log.jsonl", "not UTF-8 text", line=2)
    table, report = ws.read_log(path, lenient=True)
    assert len(table) == 1 and ws.dropped(report) == {"not UTF-8 text": 1}


def test_utf16_export_is_named(ws):
    path = ws.file("log.csv", ws.csv(*ws.good_rows).decode().encode("utf-16"))
    ws.clean_error(ws.build(path), "log.csv", "UTF-16")


@pytest.mark.parametrize("ext", [".ttl", ".nt", ".rdf", ".jsonld", ".n3", ".trig", ".nq"])
def test_rdf_names_the_line(ws, ext):
    good = {
        ".ttl": '<http://e/a> <http://e/p> "x" .\n<http://e/a> <http://e/q> "caf\xe9" .\n',
        ".nt": '<http://e/a> <http://e/p> "x" .\n<http://e/a> <http://e/q> "caf\xe9" .\n',
        ".n3": '<http://e/a> <http://e/p> "x" .\n<http://e/a> <http://e/q> "caf\xe9" .\n',
        ".trig": '<http://e/g> {\n<http://e/a> <http://e/q> "caf\xe9" .\n}\n',
        ".nq": '<http://e/a> <http://e/p> "x" <http://e/g> .\n<http://e/a> <http://e/q> "caf\xe9" <http://e/g> .\n',
        ".jsonld": '{"@id": "http://e/a",\n "http://e/q": "caf\xe9"}\n',
        ".rdf": '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:e="http://e/">\n'
        '<rdf:Description rdf:about="http://e/a"><e:q>caf\xe9</e:q></rdf:Description></rdf:RDF>\n',
    }[ext]
    assert len(parse_rdf(ws.file("ok" + ext, good.encode("utf-8")))) >= 1
    path = ws.file("bad" + ext, good.encode("latin-1"))
    with pytest.raises(KgrecError) as e:
        parse_rdf(path)
    assert str(e.value).startswith(f"{path}, line 2: not UTF-8 text: byte 0xe9")


def test_rdfxml_may_declare_another_encoding(ws):
    """XML says its encoding in its declaration; then Latin-1 is legitimate, and read as such."""
    doc = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:e="http://e/">\n'
        '<rdf:Description rdf:about="http://e/a"><e:p>caf\xe9</e:p></rdf:Description></rdf:RDF>\n'
    )
    assert [str(o) for o in parse_rdf(ws.file("latin.rdf", doc.encode("latin-1"))).objects()] == ["caf\xe9"]
    with pytest.raises(KgrecError, match="unknown encoding 'x-nonsense'"):
        parse_rdf(ws.file("odd.rdf", doc.replace("ISO-8859-1", "x-nonsense").encode("latin-1")))


def test_lone_surrogate_escape_in_jsonl(ws):
    """``"\\ud800"`` is valid JSON syntax but no text: it could be stored in no UTF-8 file."""
    path = ws.file("log.jsonl", '{"user": "u1", "item": "i1"}\n{"user": "u\\ud800", "item": "i2"}\n{"user": "\\ud83d\\ude00", "item": "i2"}\n')
    ws.clean_error(ws.build(path), "log.jsonl", "invalid Unicode escape", line=2)
    table, report = ws.read_log(path, lenient=True)
    assert table["user"].tolist() == ["u1", "\U0001f600"]  # a whole pair is fine
    assert ws.dropped(report) == {"invalid Unicode escape": 1}


@pytest.mark.parametrize(
    "name, text",
    [
        ("kg.nt", '<http://example.org/item/i1> <http://e/p> "ok" .\n<http://example.org/item/i1> <http://e/q> "x\\uD800" .\n'),
        ("kg.ttl", '<http://example.org/item/i1> <http://e/p> "ok" .\n<http://example.org/item/i1> <http://e/q> "x\\uD800" .\n'),
        ("kg.jsonld", '{"@id": "http://example.org/item/i1", "http://e/p": "ok", "http://e/q": "x\\ud800"}'),
    ],
)
def test_lone_surrogate_escape_in_rdf(ws, name, text):
    path = ws.file(name, text)
    with pytest.raises(KgrecError, match="invalid Unicode escape"):
        parse_rdf(path)
    report = BuildReport()
    graph = parse_rdf(path, lenient=True, report=report)
    assert [str(o) for o in graph.objects()] == ["ok"]
    assert ws.dropped(report, "rdf") == {"invalid Unicode escape": 1}
    outcome = ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[path], lenient=True)
    assert outcome.rc == 0, outcome.err
