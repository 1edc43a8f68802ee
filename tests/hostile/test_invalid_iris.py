"""Invalid IRIs: rdflib accepts ``<http://e/a b>`` with a logged warning; kgrec refuses it.

Strict: the error names the file, the line and the IRI. Lenient: every statement with an
invalid IRI is dropped and counted (``dropped: invalid IRI``).
"""

import pytest

from kgrec.errors import KgrecError
from kgrec.ingest.iris import iri_problem
from kgrec.ingest.rdf import parse_rdf
from kgrec.ingest.sources import BuildReport

I = "http://example.org/item/"
RDF_NS = 'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:e="http://e/"'
# Each document: one good statement on line 1, one with an invalid IRI on line 2.
DOCUMENTS = {
    "bad.ttl": (f"<{I}i1> <http://e/genre> <http://e/comedy> .\n<{I}i2> <http://e/genre> <http://e/bad genre> .\n", "a space"),
    "bad.n3": (f"<{I}i1> <http://e/genre> <http://e/comedy> .\n<{I}i2> <http://e/genre> <http://e/{{x}}> .\n", "'{'"),
    "bad.trig": (f"<http://e/g> {{ <{I}i1> <http://e/genre> <http://e/comedy> .\n<{I}i2> <http://e/p^q> <http://e/c> . }}\n", "'^'"),
    "bad.nt": (f"<{I}i1> <http://e/genre> <http://e/comedy> .\n<{I}i2> <http://e/genre> <http://e/a\\u0020b> .\n", "a space"),
    "bad.nq": (f"<{I}i1> <http://e/genre> <http://e/comedy> <http://e/g> .\n<{I}i2> <http://e/genre> <http://e/c> <http://e/g\\u007B> .\n", "'{'"),
    "bad.rdf": (
        f'<rdf:RDF {RDF_NS}><rdf:Description rdf:about="{I}i1"><e:genre rdf:resource="http://e/comedy"/></rdf:Description>\n'
        f'<rdf:Description rdf:about="{I}i2"><e:genre rdf:resource="http://e/bad|genre"/></rdf:Description></rdf:RDF>\n',
        "'|'",
    ),
    "bad.jsonld": (
        f'[{{"@id": "{I}i1", "http://e/genre": {{"@id": "http://e/comedy"}}}},\n'
        f' {{"@id": "{I}i2", "http://e/genre": {{"@id": "http://e/bad genre"}}}}]\n',
        "a space",
    ),
}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_strict_names_file_line_and_iri(ws, name):
    text, what = DOCUMENTS[name]
    path = ws.file(name, text)
    with pytest.raises(KgrecError) as e:
        parse_rdf(path)
    message = str(e.value)
    assert message.startswith(f"{path}, line 2: invalid IRI: ") and f"holds {what}" in message
    ws.clean_error(ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[path]), name, "invalid IRI", line=2)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_lenient_drops_the_statement_and_counts_it(ws, name):
    text, _ = DOCUMENTS[name]
    report = BuildReport()
    graph = parse_rdf(ws.file(name, text), lenient=True, report=report)
    assert [str(s) for s in graph.subjects()] == [f"{I}i1"]
    (reason,) = ws.dropped(report, "rdf")
    assert reason.startswith("invalid IRI") and ws.dropped(report, "rdf")[reason] == 1
    outcome = ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[ws.root / name], lenient=True)
    assert outcome.rc == 0, outcome.err
    assert any(line.startswith("dropped: invalid IRI") for line in ws.report_lines(outcome))


def test_rdflib_warnings_are_not_shown(ws, caplog):
    with pytest.raises(KgrecError):
        parse_rdf(ws.file("bad.ttl", DOCUMENTS["bad.ttl"][0]))
    assert "does not look like a valid URI" not in caplog.text


@pytest.mark.parametrize(
    "iri, problem",
    [
        ("http://e/a b", "a space"),
        ("http://e/a\x00", "a NUL byte"),
        ("http://e/<a>", "'<'"),
        ("http://e/a\tb", "a tab"),
        ("http://e/a\x7f", "U+007F"),
        ("example.org/a", "not an absolute IRI"),
        ("", "is empty"),
    ],
)
def test_iri_problem(iri, problem):
    assert problem in iri_problem(iri)


@pytest.mark.parametrize("iri", ["http://e/a", "urn:isbn:0451450523", "http://e/caf%C3%A9", "http://e/café", "mailto:a@b"])
def test_good_iris(iri):
    assert iri_problem(iri) is None


def test_link_file_and_template(ws):
    log = ws.file("log.csv", ws.csv(*ws.good_rows))
    link = ws.file("links.csv", f"i1,{I}i1\ni2,{I}i 2\n")
    ws.clean_error(ws.build(log, "--link", str(link)), "links.csv", "invalid IRI", "a space", line=2)
    ws.clean_error(ws.build(log, "--item-iri", "http://e/{id}>"), "IRI template", "does not make IRIs")
