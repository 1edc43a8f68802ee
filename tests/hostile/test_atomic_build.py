"""Nothing half-written: a failed build leaves no partial graph and leaves an earlier one alone.

The graph folder is written to a temporary sibling and moved into place when complete
(:func:`kgrec.io.atomic_folder`); ingestion and graph building happen in memory before that,
so a bad input stops the build before anything is written at all.
"""

import hashlib

import pandas as pd
import pytest

from kgrec.graph.store import load_graph, save_graph


def snapshot(folder) -> dict[str, str]:
    """Relative path -> content hash of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def good_graph(ws):
    outcome = ws.build(ws.file("log.csv", ws.csv(*ws.good_rows)))
    assert outcome.rc == 0, outcome.err
    return snapshot(ws.graph)


BAD_INPUTS = {
    "ragged log": ("log.csv", b"user,item\nu1,i1\nu2,i2,extra\n", None),
    "binary log": ("log.csv", bytes(range(256)) * 8, None),
    "truncated rdf": ("log.csv", b"user,item\nu1,i1\n", ("kg.ttl", b"<http://example.org/item/i1> <http://e/p> <http://e/")),
    "rdf bomb": (
        "log.csv",
        b"user,item\nu1,i1\n",
        ("kg.rdf", b'<!DOCTYPE r [<!ENTITY a "x"><!ENTITY b "&a;&a;">]><r>&b;</r>'),
    ),
    "no shared item": ("log.csv", b"user,item\nu1,zz\n", None),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_failed_build_writes_nothing(ws, case):
    name, data, rdf = BAD_INPUTS[case]
    rdf_paths = [ws.file(*rdf)] if rdf else None
    outcome = ws.build(ws.file(name, data), rdf=rdf_paths)
    ws.clean_error(outcome)  # also checks: no graph folder, no temporary sibling


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
def test_failed_build_leaves_the_earlier_graph_alone(ws, good_graph, case, lenient):
    name, data, rdf = BAD_INPUTS[case]
    rdf_paths = [ws.file(*rdf)] if rdf else None
    outcome = ws.build(ws.file("bad-" + name, data), rdf=rdf_paths, lenient=lenient)
    if outcome.rc == 0:  # lenient mode may build from what is left: then it is a complete new graph
        assert lenient and load_graph(ws.graph).num_users >= 1
        return
    assert outcome.rc == 2 and snapshot(ws.graph) == good_graph
    assert ws.leftovers() == ["graph"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_while_writing_keeps_the_old_graph_and_no_temporary(ws, good_graph, monkeypatch, error):
    kg = load_graph(ws.graph)
    calls = {"n": 0}
    original = pd.DataFrame.to_parquet

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # one table written, then the failure
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", failing)
    with pytest.raises(type(error)):
        save_graph(kg, ws.graph, force=True)
    assert snapshot(ws.graph) == good_graph
    assert ws.leftovers() == ["graph"]


def test_a_successful_rebuild_replaces_the_graph_whole(ws, good_graph):
    outcome = ws.build(ws.file("log2.csv", ws.csv("u7,i1,4,1", "u8,i3,5,2")))
    assert outcome.rc == 0
    assert load_graph(ws.graph).nodes["user"]["id"].tolist() == ["u7", "u8"]
    assert ws.leftovers() == ["graph"]


def test_an_existing_graph_is_replaced_only_with_force(ws, good_graph):
    outcome = ws.build(ws.file("log2.csv", ws.csv("u7,i1,4,1", "u8,i3,5,2")), force=False)
    assert outcome.rc == 2 and "a graph is already there; add --force" in outcome.err
    assert snapshot(ws.graph) == good_graph and ws.leftovers() == ["graph"]


def test_out_pointing_at_a_folder_of_user_files_is_refused(ws):
    """`--out data/` must not delete data/: only a kgrec graph or an empty folder is replaced."""
    data = ws.root / "data"
    log = data / "log.csv"
    data.mkdir()
    log.write_bytes(ws.csv(*ws.good_rows))
    outcome = ws.cli("build", "--interactions", log, "--rdf", ws.items, "--out", data)
    assert log.is_file() and outcome.rc == 2
