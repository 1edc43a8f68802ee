"""`kgrec export` and `kgrec sparql` through their argparse registration."""

from __future__ import annotations

import argparse

import networkx as nx
import pandas as pd
import pytest

from kgrec.cli.export import register
from kgrec.cli.main import main
from kgrec.export import FORMATS


def test_register_adds_both_commands():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "--graph", "g", "--format", "neo4j", "--out", "o", "--user", "7", "--hops", "1"])
    assert (args.command, args.format, args.user, args.hops, args.k) == ("export", "neo4j", "7", 1, 10)
    args = parser.parse_args(["sparql", "--graph", "g", "ASK {}"])
    assert (args.command, args.query) == ("sparql", "ASK {}")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_every_format(export_graph_dir, tmp_path, capsys, fmt):
    out = tmp_path / ("out" + FORMATS[fmt][1])
    assert main(["export", "--graph", str(export_graph_dir), "--format", fmt, "--out", str(out)]) == 0
    assert out.is_file() if FORMATS[fmt][0] == "file" else out.is_dir()
    assert f"{fmt}: " in capsys.readouterr().out


def test_format_from_extension_and_filters(export_graph_dir, export_run_dir, tmp_path, capsys):
    out = tmp_path / "sub.graphml"
    argv = ["export", "--graph", str(export_graph_dir), "--run", str(export_run_dir), "--out", str(out)]
    assert main(argv + ["--user", "4", "--hops", "1", "--node-types", "user,item", "--k", "2", "--device", "cpu"]) == 0
    g = nx.read_graphml(out)
    assert {d["type"] for _, d in g.nodes(data=True)} == {"user", "item"}
    assert sum(d["relation"] == "recommended" for _, _, d in g.edges(data=True)) == 2
    assert "embedding" in g.nodes["user:4"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "x.unknown"], "give --format"),
        (["--out", "x.ttl", "--hops", "3"], "--hops needs --user"),
        (["--out", "x.ttl", "--node-types", "user,Movie"], "unknown node type"),
    ],
)
def test_export_errors_exit_2_with_a_message(export_graph_dir, tmp_path, capsys, extra, message):
    extra = [tmp_path / a if a.startswith("x.") else a for a in extra]
    assert main(["export", "--graph", str(export_graph_dir)] + [str(a) for a in extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kgrec: error:") and message in err and "Traceback" not in err


def test_sparql_prints_a_table_or_writes_csv(export_graph_dir, tmp_path, capsys):
    query = "SELECT ?id WHERE { ?u a kgrec:User ; kgrec:id ?id } ORDER BY xsd:integer(?id)"
    assert main(["sparql", "--graph", str(export_graph_dir), query]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == "id" and printed[1:] == [str(u) for u in range(1, 13)]

    (tmp_path / "q.rq").write_text(query)
    out = tmp_path / "users.csv"
    assert main(["sparql", "--graph", str(export_graph_dir), "--query-file", str(tmp_path / "q.rq"), "--out", str(out)]) == 0
    assert pd.read_csv(out)["id"].tolist() == list(range(1, 13))


def test_sparql_with_run_sees_recommendations(export_graph_dir, export_run_dir, capsys):
    query = "SELECT (COUNT(*) AS ?n) WHERE { ?u kgrec:recommended ?i }"
    assert main(["sparql", "--graph", str(export_graph_dir), "--run", str(export_run_dir), "--k", "3", "--device", "cpu", query]) == 0
    assert capsys.readouterr().out.split() == ["n", str(3 * 12)]


def test_sparql_errors(export_graph_dir, tmp_path, capsys):
    assert main(["sparql", "--graph", str(export_graph_dir), "SELECT WHERE {"]) == 2
    assert "SPARQL syntax error" in capsys.readouterr().err
    assert main(["sparql", "--graph", str(export_graph_dir)]) == 2
    assert "give a SPARQL query" in capsys.readouterr().err
    assert main(["sparql", "--graph", str(tmp_path / "missing"), "ASK {}"]) == 2
    assert "not a kgrec graph" in capsys.readouterr().err
