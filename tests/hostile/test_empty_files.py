"""Empty files: a log or an RDF file with nothing in it stops the build with a clear message.

Lenient mode cannot drop records that are not there: an empty log is an error in both modes.
An empty RDF file is an error in strict mode and a note in lenient mode (the other RDF files
still count).
"""

import gzip

import pandas as pd
import pytest

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf

EMPTY_LOGS = [
    ("log.csv", b"", "the file is empty"),
    ("log.tsv", b"", "the file is empty"),
    ("log.csv", b"\n\n   \n", "the file is empty"),
    ("log.csv.gz", gzip.compress(b""), "the file is empty"),
    ("log.jsonl", b"", "the file holds no records"),
    ("log.jsonl", b"\n  \n\n", "the file holds no records"),
    ("log.parquet", b"", "not a readable Parquet file"),
]
RDF_EXTENSIONS = [".ttl", ".nt", ".rdf", ".jsonld", ".n3", ".trig", ".nq"]


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize("name, data, what", EMPTY_LOGS)
def test_empty_log(ws, name, data, what, lenient):
    path = ws.file(name, data)
    with pytest.raises(KgrecError, match=what) as e:
        ws.read_log(path, lenient=lenient)
    assert str(e.value).startswith(str(path))
    ws.clean_error(ws.build(path, lenient=lenient), name, what)


def test_parquet_without_rows(ws):
    path = ws.root / "log.parquet"
    pd.DataFrame({"user": pd.Series([], dtype="str"), "item": pd.Series([], dtype="str")}).to_parquet(path)
    ws.clean_error(ws.build(path), "log.parquet", "the file holds no records")


@pytest.mark.parametrize("ext", RDF_EXTENSIONS)
def test_empty_rdf_file_is_an_error_in_strict_mode(ws, ext):
    path = ws.file("empty" + ext, b"")
    with pytest.raises(KgrecError) as e:
        parse_rdf(path)
    assert str(e.value).startswith(str(path))
    ws.clean_error(ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[path]), "empty" + ext)


@pytest.mark.parametrize("ext", [".ttl", ".nt", ".n3", ".trig", ".nq"])
def test_rdf_file_with_comments_only_holds_no_statements(ws, ext):
    path = ws.file("comments" + ext, "# nothing but a comment\n\n")
    with pytest.raises(KgrecError, match="holds no RDF statements"):
        parse_rdf(path)


def test_empty_rdf_file_is_a_note_in_lenient_mode(ws):
    empty = ws.file("empty.ttl", b"")
    outcome = ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[empty, ws.items], lenient=True)
    assert outcome.rc == 0, outcome.err
    assert "empty.ttl: holds no RDF statements" in outcome.out
    assert (ws.graph / "manifest.json").is_file()


def test_empty_link_file(ws):
    link = ws.file("links.csv", b"")
    outcome = ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), "--link", str(link))
    ws.clean_error(outcome, "links.csv", "holds no (item id, IRI) pairs")
