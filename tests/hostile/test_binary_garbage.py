"""Binary garbage under a text extension: one clean error that says what the file is."""

import gzip
import io
import random
import zipfile

import pandas as pd
import pytest

from kgrec.errors import KgrecError
from kgrec.ingest.rdf import parse_rdf

GARBAGE = random.Random(7).randbytes(8192)
RDF_EXTENSIONS = [".ttl", ".nt", ".rdf", ".jsonld", ".n3", ".trig", ".nq"]


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize("name", ["log.csv", "log.tsv", "log.jsonl"])
def test_random_bytes_as_a_log(ws, name, lenient):
    path = ws.file(name, GARBAGE)
    with pytest.raises(KgrecError, match="binary data, not text"):
        ws.read_log(path, lenient=lenient)
    ws.clean_error(ws.build(path, lenient=lenient), name, "binary data, not text")


@pytest.mark.parametrize("name", ["log.parquet", "log.csv.gz", "log.jsonl.gz"])
def test_random_bytes_in_a_binary_format(ws, name):
    path = ws.file(name, GARBAGE)
    message = ws.clean_error(ws.build(path), name)
    assert "Parquet" in message or "gzip" in message


def test_truncated_gzip(ws):
    path = ws.file("log.csv.gz", gzip.compress(ws.csv(*ws.good_rows) * 50)[:-40])
    ws.clean_error(ws.build(path), "log.csv.gz", "damaged gzip data")
    jsonl = ws.file("log.jsonl.gz", gzip.compress(b'{"user": "u1", "item": "i1"}\n' * 50)[:-40])
    ws.clean_error(ws.build(jsonl), "log.jsonl.gz", "damaged gzip data")


def test_truncated_parquet(ws):
    buffer = io.BytesIO()
    pd.DataFrame({"user": ["u1"] * 100, "item": ["i1"] * 100}).to_parquet(buffer)
    path = ws.file("log.parquet", buffer.getvalue()[:-30])
    ws.clean_error(ws.build(path), "log.parquet", "not a readable Parquet file")


@pytest.mark.parametrize(
    "data, what",
    [
        (gzip.compress(b"user,item\nu1,i1\n"), "gzip-compressed"),
        (b"PAR1" + bytes(64), "Parquet file"),
        (b"PK\x03\x04" + bytes(64), "zip archive"),
        ("user,item\nu1,i1\n".encode("utf-16"), "UTF-16"),
    ],
)
def test_known_binary_formats_are_named(ws, data, what):
    ws.clean_error(ws.build(ws.file("log.csv", data)), "log.csv", what)


def test_a_spreadsheet_renamed_to_csv(ws):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>")
    ws.clean_error(ws.build(ws.file("log.csv", buffer.getvalue())), "log.csv", "zip archive", "export the sheet as CSV")


@pytest.mark.parametrize("ext", RDF_EXTENSIONS)
def test_random_bytes_as_rdf(ws, ext):
    path = ws.file("kg" + ext, GARBAGE)
    with pytest.raises(KgrecError, match="binary data, not text"):
        parse_rdf(path, lenient=True)
    ws.clean_error(ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[path]), "kg" + ext, "binary data")


@pytest.mark.parametrize("ext", RDF_EXTENSIONS)
def test_printable_garbage_as_rdf(ws, ext):
    """Text that is no RDF at all: a syntax error, never a traceback or an empty graph."""
    junk = "".join(random.Random(3).choice("abc<>{}[]\"'@:;.,_ \n#") for _ in range(3000))
    with pytest.raises(KgrecError):
        parse_rdf(ws.file("junk" + ext, junk))
