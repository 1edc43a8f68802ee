"""Parsing touches no network and no local file it was not given.

Two kinds of proof: a local HTTP listener that counts every connection (and would answer, so a
fetch would succeed, not fail), and a Python audit hook that records every file opened and every
socket used while kgrec builds. A planted "secret" file is what an XML external entity or a
``file:`` JSON-LD context would try to read.
"""

import json
import sys
from pathlib import Path

import pytest
import rdflib

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf

SECRET = "TOP-SECRET-7c1f"
RDF_NS = 'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:e="http://e/"'


class Recorder:
    """Audit events (files opened, sockets, URL requests) while ``active``."""

    active = False
    events: list[tuple[str, object]] = []

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        # socket.__new__ alone is no traffic (some libraries probe for IPv6 when imported)
        network = event.startswith(("socket.", "urllib.", "http.", "ftplib.")) and event != "socket.__new__"
        if cls.active and (event == "open" or network):
            cls.events.append((event, args[0] if args else None))


sys.addaudithook(Recorder.hook)  # hooks cannot be removed; it records nothing unless active


@pytest.fixture
def audit():
    import kgrec.graph.build, kgrec.graph.store  # noqa: E401,F401  (imports are not what is audited)

    Recorder.events = []
    Recorder.active = True
    yield Recorder
    Recorder.active = False


@pytest.fixture
def secret(ws):
    return ws.file("secret.txt", SECRET)


def network_events(recorder) -> list:
    return [e for e in recorder.events if e[0] != "open"]


def files_opened(recorder) -> set[Path]:
    """Data files opened: absolute paths, Python's own modules (lazy imports) left aside."""
    opened = {Path(p) for event, p in recorder.events if event == "open" and isinstance(p, str)}
    code = (".py", ".pyc", ".so", ".pyd")
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return {p for p in opened if p.is_absolute() and not (p.suffix in code and any(str(p).startswith(x) for x in prefixes))}


# ----------------------------------------------------------------------------- JSON-LD contexts
@pytest.mark.parametrize(
    "context",
    [
        "{url}/context.jsonld",
        ["{url}/context.jsonld"],
        {"@import": "{url}/context.jsonld"},
        {"ex": {"@id": "http://example.org/p", "@context": "{url}/scoped.jsonld"}},
        "{secret_uri}",
    ],
    ids=["string", "list", "import", "scoped", "local-file"],
)
def test_jsonld_context_references_are_refused_without_a_fetch(ws, listener, secret, audit, context):
    text = json.dumps({"@context": context, "@id": "http://e/a", "ex:p": "v"})
    path = ws.file("remote.jsonld", text.replace("{url}", listener.url).replace("{secret_uri}", secret.as_uri()))
    with pytest.raises(KgrecError, match="kgrec never fetches contexts") as e:
        parse_rdf(path)
    assert str(e.value).startswith(str(path))
    assert listener.connections == 0 and network_events(audit) == []
    assert files_opened(audit) == {path}


def test_the_listener_would_see_a_fetch(listener):
    """The tests above can fail: rdflib left to itself does fetch a referenced context."""
    rdflib.Graph().parse(data=json.dumps({"@context": listener.url + "/c.jsonld", "@id": "ex:a", "ex:p": "v"}), format="json-ld")
    assert listener.connections >= 1


def test_the_audit_would_see_a_file_read(ws, secret, audit):
    """...and the audit hook sees a file that Python opens."""
    secret.read_text()
    assert secret in files_opened(audit)


# ----------------------------------------------------------------------------- XML entities
@pytest.mark.parametrize(
    "doctype, refused",
    [
        ('<!DOCTYPE rdf:RDF [ <!ENTITY x SYSTEM "{secret_uri}"> ]>', "external entity 'x'"),
        ('<!DOCTYPE rdf:RDF [ <!ENTITY x SYSTEM "{url}/entity"> ]>', "external entity 'x'"),
        ('<!DOCTYPE rdf:RDF [ <!ENTITY x PUBLIC "-//E//x" "{url}/entity"> ]>', "external entity 'x'"),
        ('<!DOCTYPE rdf:RDF [ <!ENTITY % pe SYSTEM "{url}/pe.dtd"> %pe; ]>', "external parameter entity 'pe'"),
        ('<!DOCTYPE rdf:RDF SYSTEM "{url}/external.dtd">', None),  # not read; the document is fine
        ('<!DOCTYPE rdf:RDF PUBLIC "-//E//DTD" "{secret_uri}">', None),
    ],
    ids=["local-entity", "remote-entity", "public-entity", "parameter-entity", "remote-dtd", "local-dtd"],
)
def test_xml_external_entities_and_dtds_are_never_read(ws, listener, secret, audit, doctype, refused):
    uses_x = "&x;" if "ENTITY x" in doctype else ""
    text = (
        '<?xml version="1.0"?>\n'
        + doctype.replace("{url}", listener.url).replace("{secret_uri}", secret.as_uri())
        + f'\n<rdf:RDF {RDF_NS}>\n  <rdf:Description rdf:about="http://e/a"><e:p>v{uses_x}</e:p></rdf:Description>\n</rdf:RDF>\n'
    )
    path = ws.file("doc.rdf", text)
    if refused:
        with pytest.raises(KgrecError, match=refused) as e:
            parse_rdf(path)
        assert str(e.value).startswith(f"{path}, line 2: RDF/XML refused")
    else:
        graph = parse_rdf(path)
        assert [str(o) for o in graph.objects()] == ["v"]
    assert listener.connections == 0 and network_events(audit) == []
    assert files_opened(audit) == {path}


# ----------------------------------------------------------------------------- names that look like URLs
def test_url_given_as_a_file_name_is_never_fetched(ws, listener, audit):
    outcome = ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[f"{listener.url}/kg.ttl"])
    ws.clean_error(outcome, "RDF file not found")
    outcome = ws.cli("build", "--interactions", f"{listener.url}/log.csv", "--out", ws.graph)
    ws.clean_error(outcome, "interaction log not found")
    assert listener.connections == 0 and network_events(audit) == []


# ----------------------------------------------------------------------------- a whole build
def test_a_build_opens_only_its_inputs_and_its_output(ws, listener, audit):
    log = ws.file("log.csv", ws.csv(*ws.good_rows))
    jsonld = ws.file("kg.jsonld", json.dumps({"@context": {"e": "http://e/"}, "@id": f"{ws.item_iri}i2", "e:p": {"@id": "e:x"}}))
    xml = ws.file("kg.rdf", f'<rdf:RDF {RDF_NS}><rdf:Description rdf:about="{ws.item_iri}i3"><e:q rdf:resource="http://e/z"/></rdf:Description></rdf:RDF>')
    nt = ws.file("kg.nt", f"<{ws.item_iri}i1> <http://e/p> <{listener.url}/not-fetched> .\n")
    outcome = ws.build(log, rdf=[ws.items, jsonld, xml, nt])
    assert outcome.rc == 0, outcome.err
    assert listener.connections == 0 and network_events(audit) == []
    inputs = {log, ws.items, jsonld, xml, nt}
    opened = files_opened(audit)
    outputs = {p for p in opened if p.is_relative_to(ws.root) and p.relative_to(ws.root).parts[0].startswith(("graph", ".graph"))}
    assert opened - outputs == inputs
