"""The statement table and its vectorised N-Triples / N-Quads reader.

The fast path must give exactly what rdflib's line parser (``parse_rdf``) gives, and every line
it does not take must still meet the same checks, errors and lenient drops.
"""

from __future__ import annotations

import pytest
from rdflib import BNode, Literal

from kgrec.config import RdfSource
from kgrec.errors import KgrecError
from kgrec.ingest.knowledge import extract_knowledge, knowledge_from_statements
from kgrec.ingest.matching import resource_iris
from kgrec.ingest.rdf import parse_rdf
from kgrec.ingest.sources import BuildReport
from kgrec.ingest.statements import (
    BLANK,
    IRI,
    LITERAL,
    graph_statements,
    read_statements,
    statement_iris,
    unique_statements,
)

E = "http://example.org/"
LINES = [
    f"<{E}i1> <{E}genre> <{E}g/comedy> .",  # fast
    f'<{E}i1> <http://www.w3.org/2000/01/rdf-schema#label> "Heat" .',  # fast, plain literal
    f'<{E}i1> <http://schema.org/description> "A film, with <brackets> & a @ sign"@en-GB .',  # fast, language
    f'<{E}i2> <http://schema.org/name> "Hitze"@DE.',  # fast: no space before the dot
    f'<{E}i2> <http://schema.org/name> "caf\u00e9 \u2014 \u65e5\u672c" .',  # fast, non-ASCII literal
    f"<{E}i2>\t<{E}genre>  <{E}g/drama> .",  # slow: tab and two spaces
    f'<{E}i3> <{E}year> "1995"^^<http://www.w3.org/2001/XMLSchema#integer> .',  # slow: datatype
    f'<{E}i3> <{E}note> "say \\"hi\\"\\n" .',  # slow: escapes
    f"<{E}i3> <{E}p> _:b1 .",  # slow: blank node object
    f"_:b1 <{E}p> <{E}i1> .",  # slow: blank node subject (the same node)
    f"<{E}caf\u00e9> <{E}genre> <{E}g/comedy> .",  # slow: non-ASCII IRI
    f"<{E}i4> <{E}genre> <{E}g/comedy> . # a comment",  # slow: trailing comment
    "# a comment line",
    "   ",
    "",
    f"<{E}i1> <{E}genre> <{E}g/comedy> .",  # a repeat
    f'<{E}i5> <{E}label> ""@en .',  # empty literal
    f"<{E}i5> <{E}genre> <{E}g/comedy> .\r",  # CRLF
]


def as_set(statements):
    return {tuple(r) for r in statements.astype(object).where(statements.notna(), None).itertuples(index=False)}


def comparable(statements):
    """Statements without blank-node ids (random per parse), as a sorted list."""
    rows = []
    for r in statements.astype(object).where(statements.notna(), None).itertuples(index=False):
        s = "_" if r.subject_kind == BLANK else r.subject
        o = "_" if r.object_kind == BLANK else r.object
        rows.append((s, r.subject_kind, r.predicate, o, r.object_kind, r.language, r.datatype))
    return sorted(rows)


@pytest.mark.parametrize("ext", [".nt", ".nq"])
def test_fast_reader_matches_rdflib(tmp_path, ext):
    lines = LINES if ext == ".nt" else [*LINES, f"<{E}i6> <{E}genre> <{E}g/x> <{E}graph> .", f'<{E}i6> <{E}n> "x"@en <{E}graph> .']
    path = tmp_path / f"kg{ext}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fast = read_statements(path)
    slow = graph_statements(parse_rdf(path))
    assert comparable(unique_statements(fast)) == comparable(slow)
    assert len(fast) == len(slow) + 1  # the repeat is still there until unique_statements
    assert statement_iris(fast) == resource_iris(parse_rdf(path))


def test_file_order_kinds_and_languages(tmp_path):
    path = tmp_path / "kg.nt"
    path.write_text("\n".join(LINES[:6]) + "\n", encoding="utf-8")
    table = read_statements(path)
    assert table["subject"].tolist() == [f"{E}i1"] * 3 + [f"{E}i2"] * 3
    assert table["object"].tolist()[:3] == [f"{E}g/comedy", "Heat", "A film, with <brackets> & a @ sign"]
    assert table["object_kind"].tolist() == [IRI, LITERAL, LITERAL, LITERAL, LITERAL, IRI]
    assert table["language"].tolist()[:4] == [None, None, "en-GB", "DE"] or table["language"].isna().tolist()[:2] == [True, True]
    assert table["language"].tolist()[2:4] == ["en-GB", "DE"]


def test_language_tags_differing_in_case_are_one_statement(tmp_path):
    path = tmp_path / "kg.nt"
    path.write_text(f'<{E}a> <{E}n> "x"@EN .\n<{E}a> <{E}n> "x"@en .\n', encoding="utf-8")
    assert len(unique_statements(read_statements(path))) == len(parse_rdf(path)) == 1


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (f"<{E}a> <{E}b> c .", "syntax error"),
        (f"<{E}a> <{E}b> <{E}c d> .", "syntax error"),
        (f"<{E}a> <{E}b> <{E}c\\u0020d> .", "invalid IRI"),
        (f"<{E}a> <{E}b> <c> .", "syntax error"),  # rdflib wants a scheme
        (f"<{E}a> <{E}b> <{E}c>", "syntax error"),
        (f'<{E}a> <{E}b> "\\uD800" .', "invalid Unicode escape"),
    ],
)
def test_bad_lines_fail_as_in_parse_rdf(tmp_path, bad, fragment):
    path = tmp_path / "bad.nt"
    path.write_text(f"<{E}ok> <{E}p> <{E}o> .\n{bad}\n<{E}ok2> <{E}p> <{E}o> .\n", encoding="utf-8")
    with pytest.raises(KgrecError) as slow:
        parse_rdf(path)
    with pytest.raises(KgrecError) as fast:
        read_statements(path)
    assert str(fast.value) == str(slow.value)
    assert str(fast.value).startswith(f"{path}, line 2: ") and fragment in str(fast.value)
    report = BuildReport()
    table = read_statements(path, lenient=True, report=report)
    assert table["subject"].tolist() == [f"{E}ok", f"{E}ok2"]
    assert sum(v for k, v in report.counts["rdf"].items() if k.startswith("dropped")) == 1


def test_the_first_bad_line_is_named_when_several_are_bad(tmp_path):
    path = tmp_path / "bad.nt"
    good = f"<{E}ok> <{E}p> <{E}o> ."
    path.write_text("\n".join([good] * 5 + ["junk", good, "<x> <y> <z> ."]) + "\n", encoding="utf-8")
    with pytest.raises(KgrecError, match=", line 6: "):
        read_statements(path)


def test_empty_file_and_comments_only(tmp_path):
    path = tmp_path / "empty.nt"
    path.write_text("# nothing here\n\n", encoding="utf-8")
    with pytest.raises(KgrecError, match="holds no RDF statements"):
        read_statements(path)
    report = BuildReport()
    assert read_statements(path, lenient=True, report=report).empty
    assert any("holds no RDF statements" in note for note in report.notes)


def test_other_formats_go_through_rdflib(tmp_path):
    path = tmp_path / "kg.ttl"
    path.write_text(f'@prefix e: <{E}> .\ne:i1 e:genre e:g1 ; e:name "One"@en .\n', encoding="utf-8")
    table = read_statements(path)
    assert sorted(table["object"].tolist()) == ["One", f"{E}g1"]


def test_knowledge_from_statements_equals_extract_knowledge(tmp_path):
    text = "\n".join(
        LINES
        + [
            f"<{E}i1> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://schema.org/Movie> .",
            f"<{E}g/comedy> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{E}onto#Film-Genre> .",
            f"<{E}g/comedy> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{E}onto#Alpha> .",
            f'<{E}g/comedy> <http://www.w3.org/2000/01/rdf-schema#label> "  " .',
            f'<{E}g/comedy> <http://www.w3.org/2000/01/rdf-schema#label> "Comedy"@fr .',
            f'<{E}g/comedy> <http://schema.org/name> "Comedy" .',
            f'<{E}i1> <http://www.w3.org/2000/01/rdf-schema#comment> "a comment" .',
            f"<{E}i1> <{E}sameAs> <{E}other> .",
        ]
    )
    path = tmp_path / "kg.nt"
    path.write_text(text + "\n", encoding="utf-8")
    rdf = RdfSource(ignore_predicates=[f"{E}sameAs"])
    old_report, new_report = BuildReport(), BuildReport()
    old = extract_knowledge(parse_rdf(path), rdf, old_report)
    new = knowledge_from_statements(unique_statements(read_statements(path)), rdf, new_report)
    assert sorted(map(tuple, old[0].values.tolist())) == sorted(map(tuple, new[0].values.tolist()))
    assert old[1].to_dict("records") == new[1].to_dict("records")
    assert old[2] == new[2] == {f"{E}i1": "Movie", f"{E}g/comedy": "Alpha"}
    assert old_report.to_dict() == new_report.to_dict()


def test_graph_statements_kinds():
    from rdflib import Graph, URIRef

    graph = Graph()
    b = BNode()
    graph.add((URIRef(E + "a"), URIRef(E + "p"), b))
    graph.add((b, URIRef(E + "p"), Literal("x", lang="en")))
    table = graph_statements(graph)
    kinds = sorted(zip(table["subject_kind"], table["object_kind"]))
    assert kinds == [(IRI, BLANK), (BLANK, LITERAL)]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 bytes: every test file spans many of them, and lines cross their borders."""
    import kgrec.ingest.statements as statements

    monkeypatch.setattr(statements, "BLOCK_BYTES", 64)


@pytest.mark.parametrize("ext", [".nt", ".nq"])
def test_blocks_give_the_same_statements(tmp_path, small_blocks, ext):
    long_line = f'<{E}i9> <{E}note> "{"x" * 500}" .'  # longer than a block
    path = tmp_path / f"kg{ext}"
    path.write_bytes(("\ufeff" + "\n".join([*LINES, long_line]) + "\n").encode("utf-8"))  # with a BOM
    assert comparable(unique_statements(read_statements(path))) == comparable(graph_statements(parse_rdf(path)))


@pytest.mark.parametrize(
    "data, fragment, line",
    [
        (b"<http://e/a> <http://e/b> <http://e/c> .\n" * 5 + b"junk\n", "syntax error", 6),
        (b"<http://e/a> <http://e/b> <http://e/c> .\n" * 5 + b'<http://e/a> <http://e/b> "\xff" .\n', "not UTF-8", 6),
        (b"<http://e/a> <http://e/b> <http://e/c> .\n" * 5 + b"junk\n" + b"<http://e/a> <http://e/b> <http://e/\x00> .\n", "NUL", 7),
        (b"junk\n" + b"<http://e/a> <http://e/b> <http://e/c> .\n" * 5 + b'"\xff"\n', "not UTF-8", 7),
    ],
)
def test_blocks_name_the_same_line(tmp_path, small_blocks, data, fragment, line):
    path = tmp_path / "bad.nt"
    path.write_bytes(data)
    with pytest.raises(KgrecError) as slow:
        parse_rdf(path)
    with pytest.raises(KgrecError) as fast:
        read_statements(path)
    assert str(fast.value) == str(slow.value)
    assert f", line {line}: " in str(fast.value) and fragment in str(fast.value)
