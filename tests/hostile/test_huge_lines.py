"""Huge single lines: a log line over the limit is a bad record, read without holding it whole.

The scan reads blocks of bounded size, so a line of gigabytes costs no more memory than a short
one; the tests use a small block size and limit to stay fast, and one real 1 MiB+ line.
"""

import json
import tracemalloc

import pytest

import kgrec.ingest.textscan as textscan
from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf


def test_strict_names_the_line(ws):
    path = ws.file("log.csv", ws.csv("u1,i1,4,1", "u2," + "x" * (textscan.MAX_LINE_BYTES + 10) + ",4,2", "u3,i2,4,3"))
    with pytest.raises(KgrecError) as e:
        ws.read_log(path)
    assert str(e.value).startswith(f"{path}, line 3: line too long")
    ws.clean_error(ws.build(path), "log.csv", "line too long", "the limit is 1,048,576", line=3)


@pytest.mark.parametrize("name", ["log.csv", "log.jsonl"])
def test_lenient_drops_and_counts(ws, name):
    long_id = "x" * 5000
    if name.endswith(".jsonl"):
        rows = [{"user": "u1", "item": "i1"}, {"user": long_id, "item": "i1"}, {"user": "u2", "item": "i2"}]
        path = ws.file(name, "".join(json.dumps(r) + "\n" for r in rows))
    else:
        path = ws.file(name, ws.csv("u1,i1", f"{long_id},i1", "u2,i2", header="user,item"))
    table, report = ws.read_log(path, lenient=True, max_line_bytes=1000)
    assert table["user"].tolist() == ["u1", "u2"]
    assert ws.dropped(report) == {"line too long": 1}
    line = 2 if name.endswith(".jsonl") else 3  # a CSV header is line 1
    with pytest.raises(KgrecError, match=f"line {line}: line too long"):
        ws.read_log(path, max_line_bytes=1000)


def test_a_line_without_end(ws):
    """The last line runs to the end of the file with no line break at all."""
    path = ws.file("log.csv", b"user,item\nu1,i1\n" + b"y" * 50_000)
    with pytest.raises(KgrecError, match="line 3: line too long"):
        ws.read_log(path, max_line_bytes=1000)
    table, _ = ws.read_log(path, lenient=True, max_line_bytes=1000)
    assert table["user"].tolist() == ["u1"]


def test_scan_memory_is_bounded_by_the_block_not_the_line(ws, monkeypatch):
    monkeypatch.setattr(textscan, "BLOCK_BYTES", 64 << 10)
    path = ws.file("log.csv", b"user,item\n" + b"z" * (8 << 20) + b"\nu1,i1\n")
    tracemalloc.start()
    problems = textscan.scan_lines(path, max_line_bytes=1 << 16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [(p.line, p.reason) for p in problems] == [(2, textscan.LINE_TOO_LONG)]
    assert peak < 1 << 20  # an 8 MiB line, scanned in well under 1 MiB


def test_jsonl_reader_memory_is_bounded_too(ws):
    path = ws.file("log.jsonl", b'{"user": "u1", "item": "i1"}\n{"user": "' + b"z" * (8 << 20) + b'", "item": "i1"}\n')
    tracemalloc.start()
    table, report = ws.read_log(path, lenient=True, max_line_bytes=1 << 16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(table) == 1 and ws.dropped(report) == {"line too long": 1}
    assert peak < 4 << 20


def test_a_long_line_of_valid_rdf_is_fine(ws):
    """RDF has no line limit: minified JSON-LD and one-line N-Triples dumps are legitimate."""
    nodes = [{"@id": f"http://e/i{k}", "http://e/p": {"@id": f"http://e/o{k}"}} for k in range(3000)]
    assert len(parse_rdf(ws.file("one-line.jsonld", json.dumps(nodes)))) == 3000
    turtle = " ".join(f"<http://e/i{k}> <http://e/p> <http://e/o{k}> ." for k in range(3000))
    assert len(parse_rdf(ws.file("one-line.ttl", turtle))) == 3000
