"""Duplicate rows: a repeat of an earlier (user, item, event) is not malformed, so it stops no build.

Click logs repeat themselves (a user views the same film twice); a graph has one edge per
(user, item, behaviour). In both modes the first occurrence is kept (with its rating and
timestamp) and every repeat is counted in the build report as ``dropped: duplicate``.
"""

import pytest


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
def test_repeats_are_dropped_and_counted(ws, lenient):
    rows = ["u1,i1,4,100", "u1,i1,4,100", "u1,i1,2,300", "u2,i2,5,200", "u1,i1,4,100"]
    path = ws.file("log.csv", ws.csv(*rows))
    table, report = ws.read_log(path, lenient=lenient)
    assert table[["user", "item", "rating", "timestamp"]].values.tolist() == [["u1", "i1", 4.0, 100.0], ["u2", "i2", 5.0, 200.0]]
    assert ws.dropped(report) == {"duplicate": 3} and report.counts["interactions"]["kept"] == 2
    outcome = ws.build(path, lenient=lenient)
    assert outcome.rc == 0, outcome.err
    assert ws.report_lines(outcome) == ["dropped: duplicate 3"]


def test_same_pair_with_different_events_is_not_a_duplicate(ws):
    path = ws.file("log.csv", ws.csv("u1,i1,view", "u1,i1,buy", "u1,i1,view", header="user,item,event"))
    table, report = ws.read_log(path)
    assert table["event"].tolist() == ["view", "buy"] and ws.dropped(report) == {"duplicate": 1}


def test_duplicates_across_chunks_and_after_id_cleaning(ws):
    rows = ["u1,i1", " u1 ,i1 ", "u2,i2", "u1, i1", "u2,i2"]
    table, report = ws.read_log(ws.file("log.csv", ws.csv(*rows, header="user,item")), chunk_rows=2)
    assert len(table) == 2 and ws.dropped(report) == {"duplicate": 3}


def test_a_log_of_nothing_but_one_row_repeated(ws):
    path = ws.file("log.csv", ws.csv(*["u1,i1,4,1"] * 50))
    outcome = ws.build(path)
    assert outcome.rc == 0 and ws.report_lines(outcome) == ["dropped: duplicate 49"]


def test_duplicate_rdf_statements_are_one_edge(ws):
    twice = ws.file("twice.nt", f"<{ws.item_iri}i1> <http://e/genre> <http://e/comedy> .\n" * 2)
    outcome = ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)), rdf=[twice, twice])
    assert outcome.rc == 0, outcome.err
    assert "item -[genre]-> entity: 1 edges" in outcome.out
