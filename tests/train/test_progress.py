"""What a training run says while it trains, when its output goes to a log (kgrec.train.progress)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from kgrec.train.progress import EpochProgress, plot_curves


@pytest.mark.slow
def test_train_into_a_log_writes_one_line_per_epoch(tmp_path, click_graph):
    clicks = [(u, (u * 3 + j) % 12, j) for u in range(16) for j in range(5)]
    click_graph(tmp_path / "graph", clicks, num_items=12, genres=3)
    (tmp_path / "exp.toml").write_text('[model]\ndim = 8\nuse_text = false\n[train]\nepochs = 4\npatience = 10\ndevice = "cpu"\n')
    log = tmp_path / "train.log"
    with log.open("w") as out:  # `kgrec train ... > train.log 2>&1`: no terminal anywhere
        done = subprocess.run(
            [sys.executable, "-m", "kgrec", "train", "--graph", str(tmp_path / "graph"), "--config", str(tmp_path / "exp.toml"), "--run", str(tmp_path / "run")],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300,
        )  # fmt: skip
    text = log.read_text()
    assert done.returncode == 0, text
    lines = re.findall(r"^epoch (\d)/4: loss [\d.]+, valid ndcg@20 [\d.]+, best [\d.]+ \(epoch \d\), .* left$", text, re.M)
    assert lines == ["1", "2", "3", "4"], text
    assert "\r" not in text and "it/s" not in text  # no progress bars in a log
    assert (tmp_path / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_log_lines_only_for_evaluated_epochs_and_an_early_stop_is_said():
    said = []
    p = EpochProgress(1, 10, enabled=True, log=said.append, terminal=False)
    p.epoch(1, 0.5, [1.0])  # not evaluated: no line
    p.epoch(2, 0.4, [1.0, 1.0], "ndcg@20", 0.3, (2, 0.3))
    p.close(stopped_early_at=2)
    assert said[0] == "epoch 2/10: loss 0.4000, valid ndcg@20 0.3000, best 0.3000 (epoch 2), 1.0s, at most 8s left"
    assert said[1].startswith("stopped early after epoch 2")
    quiet = []
    q = EpochProgress(1, 3, enabled=False, log=quiet.append, terminal=False)
    q.epoch(1, 0.5, [1.0], "ndcg@20", 0.3, (1, 0.3))
    q.close(1)
    assert quiet == []


def test_curves_plot_from_metrics(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "loss": 0.7, "valid_ndcg@20": 0.1}\n{"epoch": 2, "loss": 0.6, "valid_ndcg@20": 0.2}\n')
    assert plot_curves(path, tmp_path / "c.png", "ndcg@20").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "empty.jsonl").write_text("")
    assert plot_curves(tmp_path / "empty.jsonl", tmp_path / "d.png", "ndcg@20") is None


def test_tensorboard_without_the_package_is_a_clear_config_error(monkeypatch):
    from kgrec.config import ExperimentConfig
    from kgrec.errors import KgrecError
    from kgrec.experiment import check_experiment

    monkeypatch.setattr("kgrec.experiment.tensorboard_available", lambda: False)
    config = ExperimentConfig()
    config.train.tensorboard = True
    with pytest.raises(KgrecError, match=r"pip install 'kgrec\[tensorboard\]'"):
        check_experiment(config)


@pytest.mark.slow
def test_tensorboard_gets_every_evaluated_epoch(tmp_path, click_graph):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
    from kgrec.runs import train_run

    clicks = [(u, (u * 3 + j) % 12, j) for u in range(16) for j in range(5)]
    click_graph(tmp_path / "graph", clicks, num_items=12, genres=3)
    config = ExperimentConfig(model=ModelConfig(dim=8, use_text=False), train=TrainConfig(epochs=3, patience=10, device="cpu", tensorboard=True))
    train_run(tmp_path / "graph", config, tmp_path / "run", progress=False, log=lambda *_: None)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("valid/ndcg@20")] == [1, 2, 3]
    assert "train/loss" in events.Tags()["scalars"]
