"""Growing a built graph (``kgrec build --append``): the same graph as a fresh build of every
row, the same checks and strict/lenient rules, a build report for the append."""

from __future__ import annotations

import pandas as pd
import pytest

from kgrec.cli.main import main
from kgrec.errors import KgrecError
from kgrec.graph.append import append_spec, append_tables, node_map
from kgrec.graph.container import ITEM, USER
from kgrec.graph.store import load_graph
from kgrec.ingest import ingest


def _grow(kg, log, rdf=(), lenient=False):
    spec = append_spec(kg, log, list(rdf), lenient=lenient)
    return append_tables(kg, ingest(spec), lenient=lenient, rdf=spec.rdf)


def _content(kg):
    """A graph as sets of named things: nodes by type, edges by ids, texts, interactions."""
    nodes = {t: set(kg.nodes[t]["id"]) for t in kg.node_types if len(kg.nodes[t])}
    edges = set()
    for et in kg.data.edge_types:
        src, dst = kg.nodes[et[0]]["id"].tolist(), kg.nodes[et[2]]["id"].tolist()
        edges |= {(et, src[a], dst[b]) for a, b in kg.data[et].edge_index.t().tolist()}
    texts = {(t, i, lab, txt) for t in kg.node_types for i, lab, txt in zip(kg.nodes[t]["id"], kg.nodes[t]["label"], kg.nodes[t]["text"])}
    users, items = kg.nodes[USER]["id"].to_numpy(), kg.nodes[ITEM]["id"].to_numpy()
    inter = {(users[u], items[i], e, t) for u, i, e, t in kg.interactions[["user", "item", "event", "timestamp"]].itertuples(index=False)}
    return nodes, edges, texts, inter


def test_an_appended_graph_holds_what_a_fresh_build_of_every_row_holds(tmp_path, stream_helper):
    w = stream_helper.world(tmp_path)
    kg = load_graph(w["graph"])
    grown = _grow(kg, w["new_log"], [w["new_rdf"]])

    both = tmp_path / "both.csv"
    pd.concat([pd.read_csv(w["base_log"]), pd.read_csv(w["new_log"])]).to_csv(both, index=False)
    fresh = load_graph(stream_helper.build(tmp_path / "fresh", both, [w["catalogue"], w["new_rdf"]]))
    assert _content(grown) == _content(fresh)

    # old nodes keep their type and index within it; new ones come after
    for t in kg.node_types:
        assert grown.nodes[t]["id"].tolist()[: len(kg.nodes[t])] == kg.nodes[t]["id"].tolist()
    added = grown.manifest["appends"][-1]["added"]
    assert (added["users"], added["items"], added["entities"]) == (6, 3, 0)
    assert added["interactions"] == len(pd.read_csv(w["new_log"]))
    assert grown.manifest["appends"][-1]["report"]["counts"]["append"]["items added"] == 3


def test_node_map_follows_identity_across_moved_blocks(tmp_path, stream_helper):
    w = stream_helper.world(tmp_path)
    kg = load_graph(w["graph"])
    grown = _grow(kg, w["new_log"], [w["new_rdf"]])
    rows = node_map(kg, grown)
    old_names = [(t, i) for t in kg.node_types for i in kg.nodes[t]["id"]]
    new_names = [(t, i) for t in grown.node_types for i in grown.nodes[t]["id"]]
    assert [new_names[r] for r in rows] == old_names
    assert rows[kg.num_users] == grown.num_users  # the first item moved by the six new users


def test_a_new_item_without_rdf_is_refused_strict_and_dropped_lenient(tmp_path, stream_helper):
    w = stream_helper.world(tmp_path)
    kg = load_graph(w["graph"])
    with pytest.raises(KgrecError, match=r"new\.csv: item 'i18' \(\d+ interaction\(s\)\) is not in the graph and no RDF describes it.*--rdf.*--lenient"):
        _grow(kg, w["new_log"])
    grown = _grow(kg, w["new_log"], lenient=True)
    report = grown.manifest["appends"][-1]["report"]["counts"]
    assert report["items"]["dropped: new item: new item without RDF"] == 3
    new = pd.read_csv(w["new_log"])
    unknown = new["item"].isin(["i18", "i19", "i20"])
    assert report["interactions"]["dropped: new item refused (see items)"] == int(unknown.sum())
    assert grown.num_items == kg.num_items and len(grown.interactions) == len(kg.interactions) + int((~unknown).sum())


def test_rows_already_in_the_graph_are_counted_not_repeated(tmp_path, stream_helper):
    w = stream_helper.world(tmp_path)
    kg = load_graph(w["graph"])
    grown = _grow(kg, w["base_log"])  # the same log again
    assert len(grown.interactions) == len(kg.interactions)
    assert grown.manifest["appends"][-1]["report"]["counts"]["interactions"]["dropped: already in the graph"] == len(kg.interactions)


def test_an_entity_the_rdf_described_before_anyone_clicked_it_becomes_the_item(tmp_path, stream_helper):
    # the catalogue describes films 0-20, the base log names 0-17: films 18-20 are entities of
    # the base graph (typed by nothing: "entity"), and a later click makes each an item
    base_log = stream_helper.write_log(tmp_path / "base.csv", stream_helper.clicks(range(24), range(18)))
    catalogue = stream_helper.write_catalogue(tmp_path / "films.ttl", range(21))
    kg = load_graph(stream_helper.build(tmp_path / "graph", base_log, [catalogue]))
    assert kg.num_items == 18
    later = stream_helper.write_log(tmp_path / "later.csv", stream_helper.clicks(range(3), range(18, 21), start=99.0, per_user=1))
    grown = _grow(kg, later)  # no --rdf: the graph's own RDF describes them
    assert grown.num_items == 21 and grown.manifest["appends"][-1]["added"]["items_from_entities"] == 3
    both = tmp_path / "both.csv"
    pd.concat([pd.read_csv(base_log), pd.read_csv(later)]).to_csv(both, index=False)
    fresh = load_graph(stream_helper.build(tmp_path / "fresh", both, [catalogue]))
    assert _content(grown) == _content(fresh)


def test_build_append_writes_a_grown_graph_with_its_report_and_refuses_an_existing_out(tmp_path, stream_helper, capsys):
    w = stream_helper.world(tmp_path)
    before = stream_helper.files_of(w["graph"])
    out = tmp_path / "grown"
    args = ["build", "--append", str(w["graph"]), "--interactions", str(w["new_log"]), "--rdf", str(w["new_rdf"]), "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "items added" in printed and "Graph: 30 users, 21 items" in printed
    report = (out / "report.txt").read_text()
    assert report.startswith("Build report") and "Append 1 (" in report and "new.csv" in report
    assert stream_helper.files_of(w["graph"]) == before  # the old graph is not changed
    assert load_graph(out).manifest["content_hash"] != load_graph(w["graph"]).manifest["content_hash"]

    assert main(args) == 2  # --out exists: one line, nothing written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a graph is already there" in err[0]
    assert main(args[:-1] + [str(tmp_path / "g2")]) == 0  # the same append, elsewhere
