"""Unknown file extensions: the message lists what is accepted and the option that overrides it."""

import pytest

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize("name", ["log.xlsx", "log", "log.txt", "log.parquet.gz", "log.gz"])
def test_log(ws, name, lenient):
    path = ws.file(name, ws.csv(*ws.good_rows))
    with pytest.raises(KgrecError, match="cannot tell the interaction log format"):
        ws.read_log(path, lenient=lenient)
    message = ws.clean_error(ws.build(path, lenient=lenient), name, "cannot tell the interaction log format")
    assert ".csv" in message and ".jsonl.gz" in message and "--format" in message


def test_log_with_format_option(ws):
    path = ws.file("log.txt", ws.csv(*ws.good_rows))
    assert ws.build(path, "--format", "csv").rc == 0


def test_unknown_format_option(ws):
    path = ws.file("log.csv", ws.csv(*ws.good_rows))
    ws.clean_error(ws.build(path, "--format", "xlsx"), "unknown interaction format 'xlsx'")


@pytest.mark.parametrize("name", ["items.txt", "items", "items.rdfa", "items.ttl.gz"])
def test_rdf(ws, name):
    path = ws.file(name, ws.items.read_text())
    with pytest.raises(KgrecError, match="cannot tell the RDF format from the extension"):
        parse_rdf(path)
    message = ws.clean_error(ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[path]), name)
    assert "--rdf-format" in message and ".ttl" in message


def test_rdf_with_format_option(ws):
    path = ws.file("items.txt", ws.items.read_text())
    ws.clean_error(
        ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), "--rdf-format", "rdfa", rdf=[path]),
        "unknown RDF format 'rdfa'",
    )
    assert ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), "--rdf-format", "turtle", rdf=[path]).rc == 0


def test_folder_given_as_a_file(ws):
    (ws.root / "logs.csv").mkdir()
    ws.clean_error(ws.build(ws.root / "logs.csv"), "logs.csv", "is a folder")
    (ws.root / "kg.ttl").mkdir()
    ws.clean_error(ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[ws.root / "kg.ttl"]), "kg.ttl", "is a folder")
