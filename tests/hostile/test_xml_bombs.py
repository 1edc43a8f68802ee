"""Entity-expansion bombs in RDF/XML are refused quickly, with bounded memory.

A "billion laughs" document is a few hundred bytes whose nested entities expand to gigabytes;
a "quadratic blowup" repeats one big entity many times. kgrec reads the entity declarations
before the document and refuses both before anything is expanded. Ordinary entity use (OWL files
abbreviate namespaces as ``&rdf;``, ``&owl;``) keeps working.
"""

import subprocess
import sys
import textwrap
import time

import pytest

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import MAX_ENTITY_EXPANSION, parse_rdf

RDF = 'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:e="http://e/"'


def document(dtd: str, body: str = "&lol9;", attribute: str = "http://e/a") -> str:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n{dtd}]>\n'
        f'<rdf:RDF {RDF}><rdf:Description rdf:about="{attribute}"><e:p>{body}</e:p></rdf:Description></rdf:RDF>\n'
    )


LAUGHS = '<!ENTITY lol "lol">\n' + "".join(
    f'<!ENTITY lol{k} "{("&lol" + ("" if k == 1 else str(k - 1)) + ";") * 10}">\n' for k in range(1, 10)
)


def refuse_quickly(path, match: str) -> KgrecError:
    start = time.perf_counter()
    with pytest.raises(KgrecError, match=match) as e:
        parse_rdf(path, lenient=True)  # no mode lets a bomb through
    assert time.perf_counter() - start < 2
    assert str(e.value).startswith(str(path))
    return e.value


def test_billion_laughs(ws):
    path = ws.file("laughs.rdf", document(LAUGHS))
    refuse_quickly(path, "the entity 'lol1' refers to other entities .*billion laughs")
    ws.clean_error(ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[path]), "laughs.rdf", "RDF/XML refused", line=4)


def test_nesting_through_a_character_reference(ws):
    path = ws.file("sneaky.rdf", document('<!ENTITY a "x">\n<!ENTITY b "&#38;a;&#38;a;">\n', body="&b;"))
    refuse_quickly(path, "the entity 'b' refers to other entities")


def test_parameter_entity_nesting(ws):
    path = ws.file("pe.rdf", document('<!ENTITY % a "&#37;b;">\n', body="x"))
    refuse_quickly(path, "parameter entity 'a' refers to other entities")


def test_quadratic_blowup(ws):
    big = "x" * 100_000
    path = ws.file("quadratic.rdf", document(f'<!ENTITY a "{big}">\n', body="&a;" * 2000))
    refuse_quickly(path, r"would expand the [\d,]+-byte document by 200,000,000 characters")


def test_blowup_through_attributes(ws):
    path = ws.file("attrs.rdf", document(f'<!ENTITY a "{"y" * 10_000}">\n', body="x", attribute="http://e/&a;" * 5000))
    refuse_quickly(path, "entity-expansion bomb")


def test_ordinary_entities_still_work(ws):
    """The OWL habit: namespaces as entities, used many times in attributes."""
    dtd = '<!ENTITY e "http://e/">\n<!ENTITY rdf "http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    body = "".join(f'<rdf:Description rdf:about="&e;i{k}"><e:p rdf:resource="&e;o{k}"/></rdf:Description>\n' for k in range(1000))
    path = ws.file("owl.rdf", f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n{dtd}]>\n<rdf:RDF {RDF}>\n{body}</rdf:RDF>\n')
    graph = parse_rdf(path)
    assert len(graph) == 1000 and all(str(s).startswith("http://e/i") for s in graph.subjects())


def test_honest_expansion_below_the_limits_is_fine(ws):
    """4 MB of expansion from a 13 KB body: below kgrec's limit and below expat's own guard."""
    path = ws.file("big-but-fine.rdf", document(f'<!ENTITY a "{"v" * 1000}">\n', body="&a;" * 4000))
    assert len(str(next(parse_rdf(path).objects()))) == 4_000_000


def test_expats_own_amplification_guard_is_reported_as_a_refusal(ws):
    """Below kgrec's limit but more than 100-fold past 8 MiB: expat stops it; same kind of message."""
    path = ws.file("amplified.rdf", document(f'<!ENTITY a "{"v" * 1000}">\n', body="&a;" * 9000))
    assert 9000 * 1000 < MAX_ENTITY_EXPANSION
    refuse_quickly(path, "RDF/XML refused: .*amplification")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["laughs", "quadratic"])
def test_memory_and_time_of_a_refusal_in_a_fresh_process(ws, kind):
    """Peak memory of a whole process that parses a bomb: what a user's machine would see."""
    text = document(LAUGHS) if kind == "laughs" else document(f'<!ENTITY a "{"x" * 100_000}">\n', body="&a;" * 20_000)
    path = ws.file(f"{kind}.rdf", text)
    script = textwrap.dedent(
        f"""
        import resource, time
        from kgrec.ingest.rdf import parse_rdf
        from kgrec.errors import KgrecError
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            parse_rdf({str(path)!r})
        except KgrecError as e:
            print("refused", time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    word, seconds, grown_kib = result.stdout.split()
    assert word == "refused", result.stderr
    assert float(seconds) < 1.0
    assert int(grown_kib) < 64 * 1024  # the refusal itself grows the process by less than 64 MiB
