"""Property-based tests: random and mutated logs and RDF either build or fail cleanly.

For any input bytes, ingestion must end in one of two ways: a valid result (the invariants
below hold) or a :class:`~kgrec.errors.KgrecError` whose message starts with the file's name.
Any other exception, a hang or a network connection is a bug. ``max_examples`` is kept modest
so that the module runs in seconds; raise it locally to search harder.
"""

import json
import socket
from contextlib import contextmanager

import pandas as pd
import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgrec.config import GraphSpec, InteractionSource
from kgrec.errors import KgrecError
from kgrec.graph.build import build_graph
from kgrec.ingest import ingest
from kgrec.ingest.iris import iri_problem
from kgrec.ingest.logs import read_interactions
from kgrec.ingest.rdf import parse_rdf
from kgrec.ingest.sources import INTERACTION_COLUMNS, BuildReport

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EX = "http://example.org/item/"
RDF_FORMATS = {"turtle": ".ttl", "nt": ".nt", "xml": ".rdf", "json-ld": ".jsonld", "n3": ".n3", "trig": ".trig", "nquads": ".nq"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("properties")


@contextmanager
def no_network():
    """Fail loudly if anything tries to connect while parsing."""
    original = socket.socket.connect

    def refuse(self, *args):
        raise AssertionError(f"ingestion tried to connect to {args}")

    socket.socket.connect = refuse
    try:
        yield
    finally:
        socket.socket.connect = original


# ----------------------------------------------------------------------------- strategies
ids = st.one_of(st.sampled_from(["u1", "u2", "i1", "i2", "i3", "NA", "0", " x ", ""]), st.text(max_size=6))
numbers = st.one_of(
    st.sampled_from(["", "4", "4.5", "-1", "1e3", "inf", "nan", "five", "2024-01-02", "1700000000"]),
    st.floats(allow_nan=True).map(str),
    st.text(max_size=4),
)
events = st.sampled_from(["", "view", "click", "buy", "rate"])
record = st.tuples(ids, ids, numbers, numbers, events)


@st.composite
def raw_bytes_mutation(draw, data: bytes) -> bytes:
    """``data`` with a few random byte-level edits: cuts, insertions, deletions, duplicated lines."""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["cut", "insert", "delete", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if kind == "cut":
            data = data[:at]
        elif kind == "insert":
            junk = draw(st.one_of(st.binary(max_size=8), st.sampled_from([b"\x00", b"\xff\xfe", b'"', b"\n", b",,", b"\t", b"\xe9", b"{", b"<"])))
            data = data[:at] + junk + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        else:
            lines = data.split(b"\n")
            k = draw(st.integers(0, max(len(lines) - 1, 0)))
            data = b"\n".join(lines[: k + 1] + lines[k:])
    return data


@st.composite
def logs(draw) -> tuple[str, bytes]:
    """A CSV, TSV or JSONL log of random records, then mutated."""
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl"]))
    records = draw(st.lists(record, max_size=12))
    header = ["user", "item", "rating", "timestamp", "event"]
    if fmt == "jsonl":
        text = "".join(json.dumps(dict(zip(header, r))) + "\n" for r in records)
    else:
        sep = "," if fmt == "csv" else "\t"
        text = pd.DataFrame(records, columns=header).to_csv(index=False, sep=sep) if records else sep.join(header) + "\n"
    data = text.encode("utf-8")
    return fmt, draw(raw_bytes_mutation(data))


@st.composite
def rdf_documents(draw) -> tuple[str, bytes]:
    """A small random graph serialised by rdflib in a random format, then mutated."""
    fmt = draw(st.sampled_from(sorted(RDF_FORMATS)))
    graph = rdflib.Graph()
    for _ in range(draw(st.integers(1, 6))):
        s = rdflib.URIRef(EX + draw(st.sampled_from(["i1", "i2", "i3"])))
        p = rdflib.URIRef("http://e/" + draw(st.sampled_from(["genre", "name", "p"])))
        o = draw(st.one_of(st.sampled_from(["g1", "g2"]).map(lambda x: rdflib.URIRef("http://e/" + x)), st.text(max_size=8).map(rdflib.Literal)))
        graph.add((s, p, o))
    if fmt in ("trig", "nquads"):
        dataset = rdflib.Dataset()
        named = dataset.graph(rdflib.URIRef("http://e/g"))
        for t in graph:
            named.add(t)
        text = dataset.serialize(format=fmt)
    else:
        text = graph.serialize(format=fmt)
    return fmt, draw(raw_bytes_mutation(text.encode("utf-8")))


# ----------------------------------------------------------------------------- properties
def check_log_outcome(path, lenient: bool):
    report = BuildReport()
    try:
        with no_network():
            table = read_interactions(InteractionSource(path=str(path)), report, lenient=lenient, chunk_rows=3)
    except KgrecError as e:
        assert str(e).startswith(str(path)), str(e)
        return None
    assert list(table.columns) == INTERACTION_COLUMNS and len(table) > 0
    for column in ("user", "item", "event"):
        values = table[column].tolist()
        assert all(isinstance(v, str) and v == v.strip() and v and "\x00" not in v for v in values), values
    for column in ("rating", "timestamp"):
        assert table[column].dtype == "float64"
        assert table[column].dropna().map(lambda x: x == x and abs(x) != float("inf")).all()
    assert not table.duplicated(["user", "item", "event"]).any()
    counts = report.counts["interactions"]
    dropped = sum(v for k, v in counts.items() if k.startswith("dropped: "))
    assert counts["read"] == counts["kept"] + dropped  # every record accounted for
    assert counts["kept"] == len(table)
    return table


@SETTINGS
@given(log=logs())
def test_random_logs_give_a_table_or_a_clean_error(folder, log):
    fmt, data = log
    path = folder / f"log.{fmt}"
    path.write_bytes(data)
    strict = check_log_outcome(path, lenient=False)
    lenient = check_log_outcome(path, lenient=True)
    if strict is not None:  # what strict mode accepts, lenient mode reads the same
        assert lenient is not None and strict.equals(lenient)


@SETTINGS
@given(doc=rdf_documents(), lenient=st.booleans())
def test_random_rdf_gives_a_graph_or_a_clean_error(folder, doc, lenient):
    fmt, data = doc
    path = folder / f"kg{RDF_FORMATS[fmt]}"
    path.write_bytes(data)
    try:
        with no_network():
            graph = parse_rdf(path, lenient=lenient, report=BuildReport())
    except KgrecError as e:
        assert str(e).startswith(str(path)), str(e)
        return
    assert len(graph) > 0 or lenient  # lenient mode notes an empty file instead of failing
    for triple in graph:
        for term in triple:
            if isinstance(term, rdflib.URIRef):
                assert iri_problem(str(term)) is None, term


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs(), doc=rdf_documents(), lenient=st.booleans())
def test_random_inputs_build_a_valid_graph_or_fail_cleanly(folder, log, doc, lenient):
    (fmt, log_data), (rdf_fmt, rdf_data) = log, doc
    log_path, rdf_path = folder / f"build.{fmt}", folder / f"build{RDF_FORMATS[rdf_fmt]}"
    log_path.write_bytes(log_data)
    rdf_path.write_bytes(rdf_data)
    spec = GraphSpec(lenient=lenient)
    spec.interactions.path = str(log_path)
    spec.rdf.paths = [str(rdf_path)]
    spec.rdf.item_iri = EX + "{id}"
    try:
        with no_network():
            tables = ingest(spec)
    except KgrecError as e:
        assert str(e).startswith((str(log_path), str(rdf_path), f"the interaction log ({log_path.name})")), str(e)
        return
    kg = build_graph(tables)
    assert kg.num_users == tables.interactions["user"].nunique()
    assert kg.num_items == tables.interactions["item"].nunique()
    for edge_type in kg.data.edge_types:
        index = kg.data[edge_type].edge_index
        assert index.shape[0] == 2
        if index.numel():
            assert int(index[0].max()) < len(kg.nodes[edge_type[0]]) and int(index[1].max()) < len(kg.nodes[edge_type[2]])
