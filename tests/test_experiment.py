"""The experiment configuration is checked once, when it is read (kgrec/experiment.py).

Every enumerated value with a typo, through ``kgrec train`` as a user would meet it: exit 2,
one message naming the file, the key, the bad value and the allowed values, and no run folder.
"""

from __future__ import annotations

import pytest

from kgrec.cli.main import main
from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment, load_experiment

#: (section, key, typo, allowed values the message must list)
TYPOS = [
    ("model", "encoder", "lightgnc", ["lightgcn", "relational"]),
    ("model", "item_item", "eas", ["none", "ease"]),
    ("train", "loss", "sofmax", ["bpr", "softmax"]),
    ("train", "sampler", "neighbour", ["full", "neighbor"]),
    ("train", "device", "gpu", ["auto", "cpu", "cuda"]),
    ("eval", "split", "random-user", ["random", "temporal", "leave-one-out"]),
    ("eval", "metric", "ndgc@20", ["ndcg@20", "recall@20"]),
    ("eval", "metric", "ndcg@25", ["ndcg@20", "recall@10"]),
]


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory, click_graph):
    clicks = [(u, (u * 3 + j) % 12, j) for u in range(10) for j in range(4)]
    return click_graph(tmp_path_factory.mktemp("g") / "graph", clicks, num_items=12, genres=3)


@pytest.mark.parametrize("section,key,typo,allowed", TYPOS, ids=[f"{s}.{k}={v}" for s, k, v, _ in TYPOS])
def test_a_typo_stops_train_before_anything_is_written(section, key, typo, allowed, graph_dir, tmp_path, capsys):
    config = tmp_path / "exp.toml"
    config.write_text(f'[{section}]\n{key} = "{typo}"\n')
    run = tmp_path / "run"
    assert main(["train", "--graph", str(graph_dir), "--config", str(config), "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and f"{section}.{key}" in err and repr(typo) in err, err
    for value in allowed:
        assert value in err, f"{value!r} missing from: {err}"
    assert "Traceback" not in err
    assert not run.exists()


def test_the_same_check_runs_on_a_config_built_in_python():
    config = ExperimentConfig()
    config.train.loss = "sofmax"
    with pytest.raises(KgrecError, match=r"train.loss = 'sofmax' is not one of: bpr, softmax"):
        check_experiment(config)


def test_every_bundled_experiment_passes_the_check():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "experiments"
    files = sorted(root.glob("*.toml"))
    assert files
    for path in files:
        if "[[runs]]" in path.read_text() or "[suite]" in path.read_text():
            continue  # a benchmark suite: its base is checked by `kgrec bench` (tests/bench)
        load_experiment(path)
