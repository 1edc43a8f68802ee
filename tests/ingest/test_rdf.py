import json

import pytest
from rdflib import Graph, Literal, URIRef

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf

EX = "http://example.org/"
EXPECTED = {
    (URIRef(EX + "film1"), URIRef(EX + "director"), URIRef(EX + "ann")),
    (URIRef(EX + "film1"), URIRef(EX + "title"), Literal("Heat", lang="en")),
}

DOCUMENTS = {
    "g.ttl": f'@prefix ex: <{EX}> .\nex:film1 ex:director ex:ann ;\n  ex:title "Heat"@en .\n',
    "g.n3": f'@prefix ex: <{EX}> .\nex:film1 ex:director ex:ann ;\n  ex:title "Heat"@en .\n',
    "g.nt": f'<{EX}film1> <{EX}director> <{EX}ann> .\n<{EX}film1> <{EX}title> "Heat"@en .\n',
    "g.rdf": (
        '<?xml version="1.0"?>\n'
        f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="{EX}">\n'
        f'  <rdf:Description rdf:about="{EX}film1">\n'
        f'    <ex:director rdf:resource="{EX}ann"/>\n'
        '    <ex:title xml:lang="en">Heat</ex:title>\n'
        "  </rdf:Description>\n</rdf:RDF>\n"
    ),
    "g.jsonld": json.dumps(
        {
            "@context": {"ex": EX},
            "@id": "ex:film1",
            "ex:director": {"@id": "ex:ann"},
            "ex:title": {"@value": "Heat", "@language": "en"},
        }
    ),
    "g.trig": f'@prefix ex: <{EX}> .\nex:g1 {{ ex:film1 ex:director ex:ann . }}\nex:g2 {{ ex:film1 ex:title "Heat"@en . }}\n',
    "g.nq": f'<{EX}film1> <{EX}director> <{EX}ann> <{EX}g1> .\n<{EX}film1> <{EX}title> "Heat"@en <{EX}g2> .\n',
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_format_parses_to_the_same_triples(write, name):
    graph = parse_rdf(write(name, DOCUMENTS[name]), None)
    assert type(graph) is Graph
    assert set(graph) == EXPECTED


@pytest.mark.parametrize("ext", [".owl", ".xml"])
def test_rdfxml_extensions(write, ext):
    assert set(parse_rdf(write("g" + ext, DOCUMENTS["g.rdf"]), None)) == EXPECTED


def test_json_extension_is_jsonld(write):
    assert set(parse_rdf(write("g.json", DOCUMENTS["g.jsonld"]), None)) == EXPECTED


def test_format_flag_overrides_extension(write):
    path = write("g.data", DOCUMENTS["g.ttl"])
    assert set(parse_rdf(path, "turtle")) == EXPECTED


def test_unknown_extension_names_file_and_option(write):
    with pytest.raises(KgrecError) as e:
        parse_rdf(write("g.data", DOCUMENTS["g.ttl"]), None)
    assert "g.data" in str(e.value) and "--rdf-format" in str(e.value)


def test_unknown_format_flag(write):
    with pytest.raises(KgrecError, match="unknown RDF format 'yaml'"):
        parse_rdf(write("g.ttl", DOCUMENTS["g.ttl"]), "yaml")


def test_into_merges_files(write):
    graph = parse_rdf(write("a.nt", DOCUMENTS["g.nt"].splitlines()[0] + "\n"), None)
    parse_rdf(write("b.nq", DOCUMENTS["g.nq"].splitlines()[1] + "\n"), None, into=graph)
    assert set(graph) == EXPECTED


def test_missing_file(tmp_path):
    with pytest.raises(KgrecError, match="not found"):
        parse_rdf(tmp_path / "nope.ttl", None)


@pytest.mark.parametrize(
    "name, text, line",
    [
        ("bad.ttl", f"@prefix ex: <{EX}> .\nex:a ex:b ex:c .\nex:a ex:b ex:d ex ;\n", 3),
        (
            "bad.rdf",
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n<rdf:Description>\n</rdf:RDF>\n',
            3,
        ),
        ("bad.jsonld", '{"@id": "http://e/a",\n "http://e/b": {"@id": "http://e/c"}, }', 2),
    ],
)
def test_syntax_errors_name_file_and_line(write, name, text, line):
    with pytest.raises(KgrecError) as e:
        parse_rdf(write(name, text), None)
    assert f"{name}, line {line}:" in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__  # no chained traceback


def test_ntriples_syntax_error_names_file_and_line(write):
    with pytest.raises(KgrecError, match=r"bad\.nt, line 1: N-Triples syntax error"):
        parse_rdf(write("bad.nt", f"<{EX}a> <{EX}b> c .\n"), None)


# ----------------------------------------------------------------------------- no network
@pytest.mark.parametrize(
    "context",
    [
        "{url}/context.jsonld",
        ["{url}/context.jsonld"],
        {"@import": "{url}/context.jsonld"},
        {"ex": {"@id": "http://example.org/p", "@context": "{url}/scoped.jsonld"}},
    ],
)
def test_jsonld_remote_context_is_never_fetched(write, listener, context):
    text = json.dumps({"@context": context, "@id": "ex:film1", "ex:p": "v"}).replace("{url}", listener.url)
    path = write("remote.jsonld", text)
    with pytest.raises(KgrecError) as e:
        parse_rdf(path, None)
    assert "remote.jsonld" in str(e.value) and listener.url in str(e.value)
    assert listener.connections == 0


def test_listener_would_notice_a_fetch(listener):
    """The no-network test above can fail: rdflib on its own does fetch the context."""
    graph = Graph()
    graph.parse(
        data=json.dumps({"@context": listener.url + "/c.jsonld", "@id": "ex:a", "ex:p": "v"}),
        format="json-ld",
    )
    assert listener.connections >= 1


def test_xml_external_entities_are_not_resolved(write, listener, tmp_path):
    secret = write("secret.txt", "TOP-SECRET")
    text = (
        '<?xml version="1.0"?>\n'
        "<!DOCTYPE rdf:RDF [\n"
        f'  <!ENTITY local SYSTEM "{secret.as_uri()}">\n'
        f'  <!ENTITY remote SYSTEM "{listener.url}/entity">\n'
        "]>\n"
        f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="{EX}">\n'
        f'  <rdf:Description rdf:about="{EX}a"><ex:p>x&local;&remote;</ex:p></rdf:Description>\n'
        "</rdf:RDF>\n"
    )
    try:
        graph = parse_rdf(write("xxe.rdf", text), None)
    except KgrecError:
        graph = Graph()  # refusing the document is fine too
    assert all("TOP-SECRET" not in str(o) for o in graph.objects())
    assert listener.connections == 0


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE rdf:RDF SYSTEM "{url}/external.dtd">',
        '<!DOCTYPE rdf:RDF [ <!ENTITY % pe SYSTEM "{url}/pe.dtd"> %pe; ]>',
    ],
)
def test_xml_external_dtd_and_parameter_entities_are_not_fetched(write, listener, doctype):
    text = (
        '<?xml version="1.0"?>\n' + doctype.replace("{url}", listener.url) + "\n"
        f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="{EX}">\n'
        f'  <rdf:Description rdf:about="{EX}a"><ex:p>x</ex:p></rdf:Description>\n'
        "</rdf:RDF>\n"
    )
    try:
        parse_rdf(write("dtd.rdf", text), None)
    except KgrecError:
        pass
    assert listener.connections == 0
