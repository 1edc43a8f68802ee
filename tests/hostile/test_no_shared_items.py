"""Logs and RDF that share no item: one message saying how items map to IRIs and how to fix it."""

import pytest

from kgrec.errors import KgrecError
from kgrec.ingest import ingest
from kgrec.config import GraphSpec


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
def test_default_matching(ws, lenient):
    path = ws.file("log.csv", ws.csv("u1,x1", "u2,x2", header="user,item"))
    message = ws.clean_error(ws.build(path, lenient=lenient), "the interaction log (log.csv) and the RDF (items.ttl) share no item")
    assert "--item-iri" in message and "--link" in message and "'x1'" in message and ws.item_iri in message


def test_template_that_names_no_resource(ws):
    path = ws.file("log.csv", ws.csv(*ws.good_rows))
    message = ws.clean_error(ws.build(path, "--item-iri", "http://other.org/{id}"), "share no item")
    assert "'http://other.org/{id}'" in message


def test_template_that_is_not_an_iri(ws):
    path = ws.file("log.csv", ws.csv(*ws.good_rows))
    ws.clean_error(ws.build(path, "--item-iri", "http://example.org/item {id}"), "does not make IRIs", "a space")


def test_link_file_whose_iris_are_not_in_the_rdf(ws):
    link = ws.file("links.csv", "i1,http://other.org/1\ni2,http://other.org/2\n")
    ws.clean_error(ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), "--link", str(link)), "share no item", "--link")


def test_library(ws):
    spec = GraphSpec()
    spec.interactions.path = str(ws.file("log.csv", ws.csv("u1,zz", header="user,item")))
    spec.rdf.paths = [str(ws.items)]
    with pytest.raises(KgrecError, match="share no item"):
        ingest(spec)


def test_partly_shared_is_fine_and_reported(ws):
    path = ws.file("log.csv", ws.csv("u1,i1", "u1,x9", header="user,item"))
    outcome = ws.build(path)
    assert outcome.rc == 0 and "1 of 2 items matched to RDF resources" in outcome.out
