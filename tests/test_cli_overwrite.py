"""Nothing a user made is overwritten unasked; a run finds (and checks) its graph by content."""

from __future__ import annotations

import json
import shutil

import pytest

from kgrec.cli.main import main


@pytest.fixture
def work(tmp_path, click_graph):
    clicks = [(u, (u * 3 + j) % 12, j) for u in range(16) for j in range(5)]
    click_graph(tmp_path / "graph", clicks, num_items=12, genres=3)
    (tmp_path / "exp.toml").write_text(
        '[model]\ndim = 8\nlayers = 1\nuse_text = false\n[train]\nepochs = 2\nbatch_size = 64\ndevice = "cpu"\n'
    )
    return tmp_path


def _train(work, run="run", *extra):
    return main(["train", "--graph", str(work / "graph"), "--config", str(work / "exp.toml"), "--run", str(work / run), *extra])


def test_train_refuses_an_existing_run_and_leaves_it_untouched(work, capsys):
    assert _train(work) == 0
    before = {p.name: p.read_bytes() for p in (work / "run").iterdir() if p.is_file()}
    capsys.readouterr()
    assert _train(work, "run", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert "a finished run is already there; add --force" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in (work / "run").iterdir() if p.is_file()} == before


def test_force_replaces_the_run_whole(work, capsys):
    assert _train(work) == 0
    (work / "run" / "recommendations.csv").write_text("user,item\n")  # a file of the old run
    (work / "run" / "added_items").mkdir()
    assert _train(work, "run", "--epochs", "1", "--force") == 0
    names = {p.name for p in (work / "run").iterdir()}
    assert "recommendations.csv" not in names and "added_items" not in names
    assert json.loads((work / "run" / "results.json").read_text())["epochs_run"] == 1
    assert sorted(p.name for p in work.iterdir()) == ["exp.toml", "graph", "run"]  # no staging left


def test_a_failed_forced_run_keeps_the_old_one(work, capsys, monkeypatch):
    assert _train(work) == 0
    before = (work / "run" / "model.safetensors").read_bytes()
    from kgrec.train import loop

    def broken(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_weights", broken)
    assert _train(work, "run", "--force") == 130  # interrupted (Ctrl-C) while saving the new weights
    assert (work / "run" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in work.iterdir()) == ["exp.toml", "graph", "run"]


def test_a_folder_that_is_not_a_run_is_refused_even_with_force(work, capsys):
    (work / "notes").mkdir()
    (work / "notes" / "mine.txt").write_text("keep me")
    assert _train(work, "notes", "--force") == 2
    assert "is not a kgrec run folder" in capsys.readouterr().err
    assert (work / "notes" / "mine.txt").read_text() == "keep me"


def test_a_moved_graph_is_found_relative_to_the_run_or_given_with_graph(work, capsys):
    assert _train(work) == 0
    project = work / "moved"
    project.mkdir()
    shutil.move(str(work / "graph"), project / "graph")
    shutil.move(str(work / "run"), project / "run")  # graph and run moved together: found
    capsys.readouterr()
    assert main(["evaluate", "--run", str(project / "run"), "--format", "json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    shutil.move(str(project / "graph"), work / "elsewhere")  # the graph alone moved: say where
    assert main(["evaluate", "--run", str(project / "run")]) == 2
    assert "give its folder with --graph" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(project / "run"), "--graph", str(work / "elsewhere"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics


def test_a_graph_with_other_content_is_refused(work, capsys, click_graph, tmp_path_factory):
    assert _train(work) == 0
    other = tmp_path_factory.mktemp("other") / "graph"
    click_graph(other, [(u, (u * 5 + j) % 12, j) for u in range(16) for j in range(5)], num_items=12, genres=3)
    assert main(["evaluate", "--run", str(work / "run"), "--graph", str(other)]) == 2
    err = capsys.readouterr().err
    assert "is not the one this run was trained on" in err and "Traceback" not in err


def test_an_unfinished_run_points_to_resume(work, capsys):
    assert _train(work) == 0
    (work / "run" / "results.json").unlink()
    assert _train(work) == 2
    assert "unfinished run (continue it with --resume)" in capsys.readouterr().err
