"""The scene column of an interaction log: kept per interaction, mappable, and never one value."""

from __future__ import annotations

import json

import pytest

from kgrec.cli.main import main
from kgrec.config import InteractionSource
from kgrec.errors import KgrecError
from kgrec.graph.build import build_graph
from kgrec.graph.store import load_graph, save_graph
from kgrec.ingest import ingest
from kgrec.config import GraphSpec
from kgrec.ingest.logs import EMPTY_SCENE, read_interactions
from kgrec.ingest.sources import BuildReport


def read(path, lenient=False, report=None, **columns):
    return read_interactions(InteractionSource(path=str(path), **columns), report or BuildReport(), lenient=lenient)


def test_scenes_are_kept_per_interaction_and_a_pair_in_two_scenes_twice(write):
    path = write("log.csv", "user,item,scene\nu1,i1,home\nu1,i1,search\nu1,i1,home\nu2,i2,search\n")
    report = BuildReport()
    table = read(path, report=report)
    assert table[["user", "item", "scene"]].values.tolist() == [["u1", "i1", "home"], ["u1", "i1", "search"], ["u2", "i2", "search"]]
    assert report.counts["interactions"]["dropped: duplicate"] == 1


def test_a_log_without_scenes_has_no_scene_column(write):
    assert "scene" not in read(write("log.csv", "user,item\nu1,i1\n"))
    assert "scene" not in read(write("log.jsonl", '{"user": "u1", "item": "i1"}\n'))


def test_the_scene_column_is_mapped(write):
    table = read(write("log.jsonl", '{"u": 1, "i": 2, "where": "feed"}\n{"u": 1, "i": 3, "where": 7}\n'),
                 user_column="u", item_column="i", scene_column="where")  # fmt: skip
    assert table["scene"].tolist() == ["feed", "7"]


@pytest.mark.parametrize("name", ["log.csv", "log.jsonl"])
def test_a_scene_column_with_one_value_is_refused_naming_file_and_column(write, name):
    text = "user,item,where\nu1,i1,home\nu2,i2,home\n" if name.endswith("csv") else '{"user": "u1", "item": "i1", "where": "home"}\n'
    path = write(name, text)
    with pytest.raises(KgrecError) as e:
        read(path, scene_column="where")
    message = str(e.value)
    assert str(path) in message and "'where'" in message and "one value ('home')" in message
    assert "\n" not in message


def test_one_valued_scene_column_through_the_command_line(write, capsys):
    path = write("log.csv", "user,item,where\nu1,i1,home\nu2,i2,home\n")
    assert main(["build", "--interactions", str(path), "--column", "scene=where", "--out", str(path.parent / "g")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "'where'" in err
    assert not (path.parent / "g").exists()


def test_an_empty_scene_is_a_bad_record(write):
    path = write("log.csv", "user,item,scene\nu1,i1,home\nu2,i2,\nu3,i3,search\n")
    with pytest.raises(KgrecError, match=r"line 3.*empty scene in column 'scene'"):
        read(path)
    report = BuildReport()
    assert len(read(path, lenient=True, report=report)) == 2
    assert report.counts["interactions"][f"dropped: {EMPTY_SCENE}"] == 1


def test_the_graph_keeps_scenes_and_one_edge_per_pair(write, tmp_path):
    path = write("log.csv", "user,item,scene\nu1,i1,home\nu1,i1,search\nu2,i2,search\n")
    spec = GraphSpec(interactions=InteractionSource(path=str(path)))
    kg = build_graph(ingest(spec))
    save_graph(kg, tmp_path / "g")
    back = load_graph(tmp_path / "g")
    for graph in (kg, back):
        assert graph.scenes == ["home", "search"]
        assert graph.data["user", "interact", "item"].edge_index.size(1) == 2
        assert len(graph.interactions) == 3
    assert json.loads((tmp_path / "g" / "manifest.json").read_text())["scenes"] == ["home", "search"]
