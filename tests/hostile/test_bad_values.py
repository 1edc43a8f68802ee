"""Out-of-range values and unknown names: one clear line before any work, nothing written."""

from __future__ import annotations

import pytest

from kgrec.cli.main import main

CASES = [
    ("[train]\nlr = -1\n", [], "train.lr = -1"),
    ("[train]\nepochs = -3\n", [], "train.epochs = -3 must be 1 or more"),
    ("", ["--epochs", "0"], "train.epochs = 0 must be 1 or more (with --epochs 0)"),
    ("[train]\nnum_negatives = 0\n", [], "train.num_negatives = 0 must be 1 or more"),
    ("[eval]\nratios = [0.8, 0.3, 0.1]\n", [], "sum to 1.2; they must sum to 1"),
    ("[eval]\nks = [10, 0]\n", [], "eval.ks = [10, 0] must be distinct positive cut-offs"),
    ("[train]\ntarget_events = [\"purchase\"]\n", [], "no 'purchase' interactions (its behaviours: click)"),
    ("[train]\ntarget_events = [\"click\"]\nauxiliary_events = [\"view\"]\n", [], "train.auxiliary_events = ['view']: the graph has no 'view'"),
    ("[train]\nauxiliary_events = []\n", [], "train.auxiliary_events = [] needs train.target_events"),
    ("[train]\ntarget_events = [\"click\"]\nauxiliary_events = [\"click\"]\n", [], "both name 'click'"),
    ("[train]\nbatch_size = 0\n", [], "train.batch_size = 0 must be 1 or more"),
    ("[train]\ntemperature = 0.0\nloss = \"softmax\"\n", [], "train.temperature = 0.0 must be a positive number"),
]


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory, click_graph):
    clicks = [(u, (u * 3 + j) % 12, j) for u in range(10) for j in range(4)]
    return click_graph(tmp_path_factory.mktemp("g") / "graph", clicks, num_items=12, genres=3)


@pytest.mark.parametrize("toml,extra,message", CASES, ids=[c[2][:40] for c in CASES])
def test_bad_value_is_one_line_before_any_work(graph_dir, tmp_path, capsys, toml, extra, message):
    config = tmp_path / "exp.toml"
    config.write_text('[model]\nuse_text = false\n' + toml if "[model]" not in toml else toml)
    run = tmp_path / "run"
    assert main(["train", "--graph", str(graph_dir), "--config", str(config), "--run", str(run), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not run.exists()


@pytest.mark.parametrize("option", [["--k", "0"], ["--k", "-2"], ["--k", "ten"]])
def test_k_must_be_a_positive_whole_number(option, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["recommend", "--run", "nowhere", *option])
    assert stop.value.code == 2 and "argument --k" in capsys.readouterr().err
