"""RDF syntax errors and truncated RDF, in every supported format.

Strict: one error naming the file and the line. Lenient: N-Triples and N-Quads drop the bad
line and count it (``dropped: syntax error``); the other formats cannot resume after an error,
so it stops the build in both modes.
"""

import time

import pytest
import rdflib

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf
from kgrec.ingest.sources import BuildReport

EX = "http://example.org/"
FORMATS = {"turtle": ".ttl", "nt": ".nt", "xml": ".rdf", "json-ld": ".jsonld", "n3": ".n3", "trig": ".trig", "nquads": ".nq"}
LINE_FORMATS = {"nt", "nquads"}


def document(fmt: str) -> str:
    """Four items with a genre and a name, serialised by rdflib in ``fmt``."""
    graph = rdflib.Graph()
    for k in range(1, 5):
        item = rdflib.URIRef(f"{EX}item/i{k}")
        graph.add((item, rdflib.URIRef(f"{EX}genre"), rdflib.URIRef(f"{EX}genre/g{k % 2}")))
        graph.add((item, rdflib.URIRef("http://schema.org/name"), rdflib.Literal(f"Item {k}")))
    if fmt in ("trig", "nquads"):
        dataset = rdflib.Dataset()
        named = dataset.graph(rdflib.URIRef(EX + "g"))
        for triple in graph:
            named.add(triple)
        return dataset.serialize(format=fmt)
    return graph.serialize(format=fmt)


def with_junk_line(fmt: str) -> tuple[str, int]:
    """The document with a line of junk in its middle, and that line's number."""
    lines = document(fmt).split("\n")
    middle = len(lines) // 2
    junk = "</broken>" if fmt == "xml" else "!!junk!! ;;"
    return "\n".join(lines[:middle] + [junk] + lines[middle:]), middle + 1


def truncated(fmt: str) -> tuple[str, int]:
    """The document cut inside its last IRI (as a half-finished download would be)."""
    text = document(fmt)
    cut = text[: text.rindex("http://") + 12]
    return cut, cut.count("\n") + 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_intact_document_parses(ws, fmt):
    assert len(parse_rdf(ws.file("ok" + FORMATS[fmt], document(fmt)))) == 8


@pytest.mark.parametrize("damage", [with_junk_line, truncated], ids=["syntax-error", "truncated"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_strict_names_file_and_line(ws, fmt, damage):
    text, line = damage(fmt)
    path = ws.file("bad" + FORMATS[fmt], text)
    with pytest.raises(KgrecError) as e:
        parse_rdf(path)
    assert str(e.value).startswith(f"{path}, line {line}: ")
    assert e.value.__cause__ is None and (e.value.__context__ is None or e.value.__suppress_context__)
    ws.clean_error(ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[path]), "bad" + FORMATS[fmt], line=line)


@pytest.mark.parametrize("damage", [with_junk_line, truncated], ids=["syntax-error", "truncated"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_lenient(ws, fmt, damage):
    text, line = damage(fmt)
    path = ws.file("bad" + FORMATS[fmt], text)
    if fmt not in LINE_FORMATS:
        with pytest.raises(KgrecError, match=f", line {line}: "):
            parse_rdf(path, lenient=True)
        return
    report = BuildReport()
    graph = parse_rdf(path, lenient=True, report=report)
    lost = 0 if damage is with_junk_line else 1  # the cut line held one statement
    assert len(graph) == 8 - lost
    assert ws.dropped(report, "rdf") == {"syntax error": 1}
    outcome = ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[path], lenient=True)
    assert outcome.rc == 0, outcome.err
    assert "dropped: syntax error 1" in ws.report_lines(outcome)


def test_nothing_of_a_bad_file_is_merged(ws):
    merged = parse_rdf(ws.file("good.ttl", document("turtle")))
    text, _ = truncated("turtle")
    with pytest.raises(KgrecError):
        parse_rdf(ws.file("bad.ttl", text), into=merged)
    assert len(merged) == 8


def test_a_long_literal_in_rdfxml_parses_in_linear_time(ws):
    """rdflib's own reader joins text piece by piece; 4 MB of text took 10 s, now well under 1."""
    body = ("y" * 99 + "\n") * 40_000
    path = ws.file(
        "long.rdf",
        f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:e="{EX}">'
        f'<rdf:Description rdf:about="{EX}a"><e:p>{body}</e:p></rdf:Description></rdf:RDF>',
    )
    start = time.perf_counter()
    graph = parse_rdf(path)
    assert time.perf_counter() - start < 3
    assert len(str(next(graph.objects()))) == len(body)
