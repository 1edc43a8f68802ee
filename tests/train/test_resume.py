"""Kill a real training process with SIGKILL, resume it, and get the uninterrupted result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # starts processes or trains for real

EPOCHS = 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory, click_graph):
    root = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(1)
    clicks = [(u, (i + 7 * (u % 5)) % 120, 0) for u in range(150) for i in rng.choice(120, size=12, replace=False)]
    click_graph(root / "g", clicks, num_items=120, genres=6, relation="http://x/g")
    (root / "exp.toml").write_text(
        f"[model]\nuse_text = false\ndim = 32\nlayers = 2\n"
        f"[train]\nepochs = {EPOCHS}\nbatch_size = 128\nlr = 0.005\npatience = 1000\nseed = 7\n"
    )
    return root


def _train_cmd(root, run):
    return [sys.executable, "-m", "kgrec", "train", "--graph", str(root / "g"), "--config", str(root / "exp.toml"), "--run", str(run)]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def test_killed_run_resumes_to_the_same_metrics(setup):
    root = setup
    subprocess.run(_train_cmd(root, root / "whole"), env=ENV, check=True, capture_output=True)
    whole = json.loads((root / "whole" / "results.json").read_text())
    assert not (root / "whole" / "checkpoint").exists(), "a finished run keeps no checkpoint"

    proc = subprocess.Popen(_train_cmd(root, root / "killed"), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = root / "killed" / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if state.is_file():
            try:
                if json.loads(state.read_text())["state"]["epoch"] >= 5:
                    break
            except (json.JSONDecodeError, KeyError):
                pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / "killed" / "results.json").exists(), "the kill came too late to test anything"
    killed_at = json.loads(state.read_text())["state"]["epoch"]
    assert 5 <= killed_at < EPOCHS

    resumed = subprocess.run(
        [sys.executable, "-m", "kgrec", "train", "--resume", "--run", str(root / "killed")],
        env=ENV, capture_output=True, text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads((root / "killed" / "results.json").read_text())
    assert result["best_epoch"] == whole["best_epoch"]
    for key, value in whole["test"].items():
        assert result["test"][key] == pytest.approx(value, abs=1e-4), key  # float order only
    epochs = [json.loads(x)["epoch"] for x in (root / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, EPOCHS + 1)), "one metrics line per epoch, none lost or repeated"


def test_resume_without_checkpoint_is_a_clean_error(setup, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "kgrec", "train", "--resume", "--run", str(tmp_path / "nothing")],
        env=ENV, capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "not a kgrec run folder" in proc.stderr and "Traceback" not in proc.stderr
