"""Sequential training: time order, windows, and models that learn (and lose without) order."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from kgrec.config import ExperimentConfig, from_dict
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment
from kgrec.train.sequences import ordered_histories, pack_histories, shuffled, training_windows, windows_per_step

RING = 60


def seq_config(encoder: str = "sasrec", **sequence) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {
        "model": {"encoder": encoder, "dim": 32, "layers": 0, "use_text": False, "use_kg": False},
        "sequence": {"max_len": 8, "layers": 1, "heads": 2, "inner": 64, "dropout": 0.1, **sequence},
        "train": {"loss": "softmax", "temperature": 1.0, "epochs": 60, "batch_size": 256, "lr": 0.01,
                  "kg_loss_weight": 0.0, "patience": 60, "seed": 3},
        "eval": {"split": "leave-one-out", "ks": [10], "metric": "ndcg@10"},
        "coldstart": {"content": "none"},
    })  # fmt: skip


def ring_walks(folder, click_graph):
    """Each user walks a ring of items, one step at a time: the next item is the one after the last.

    Timestamps run backwards against item ids for half the users, and every user's first two
    steps share one timestamp, so only the documented tie rule (item position) orders them.
    """
    rng = np.random.default_rng(0)
    clicks = []
    for u in range(90):
        start = int(rng.integers(RING))
        for step in range(10):
            clicks.append((u, (start + step) % RING, max(step, 1) + 100 * u))
    return click_graph(folder, clicks, num_items=RING, genres=3)


def test_histories_follow_time_then_item_position():
    pairs = pd.DataFrame({"user": [0, 0, 0, 1], "item": [5, 2, 9, 4], "timestamp": [2.0, 2.0, 1.0, 7.0]})
    hist = ordered_histories(pairs, num_users=3)
    assert [h.tolist() for h in hist] == [[9, 2, 5], [4], []]
    packed, lengths = pack_histories(hist, max_len=2)
    assert packed.tolist() == [[2, 5], [4, 0], [0, 0]] and lengths.tolist() == [2, 1, 0]
    assert sorted(shuffled(hist, 1)[0].tolist()) == [2, 5, 9]


@pytest.mark.parametrize("n, max_len", [(2, 4), (5, 2), (11, 3), (50, 50), (51, 50), (120, 50)])
def test_windows_make_every_interaction_but_the_first_a_target_once(n, max_len):
    history = np.arange(100, 100 + n)
    inputs, targets, lengths = training_windows([history, np.array([7])], max_len)
    got = targets[targets >= 0].tolist()
    assert sorted(got) == history[1:].tolist()
    for row_in, row_out, length in zip(inputs.tolist(), targets.tolist(), lengths.tolist()):
        assert 1 <= length <= max_len and row_out[length:] == [-1] * (max_len - length)
        for k in range(length):  # each target is the item right after its input
            assert row_out[k] == row_in[k] + 1


def test_a_step_holds_about_batch_size_targets_even_with_short_windows():
    """Short first windows hold fewer targets than ``max_len``; the step takes more of them."""
    histories = [np.arange(n) for n in (120, 30, 12, 3, 61, 45) * 20]
    inputs, targets, lengths = training_windows(histories, max_len=50)
    per_step = windows_per_step(200, lengths)
    assert per_step > 200 // 50, "dividing by max_len would undershoot"
    steps = [int((targets[lo : lo + per_step] >= 0).sum()) for lo in range(0, len(inputs) - per_step + 1, per_step)]
    assert abs(sum(steps) / len(steps) - 200) < 200 * 0.15
    assert windows_per_step(1, lengths) == 1


def test_no_history_of_two_items_is_an_error():
    with pytest.raises(KgrecError, match="two training interactions"):
        training_windows([np.array([1]), np.array([], dtype=np.int64)], 4)


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["sasrec", "gru4rec"])
def test_sequence_models_learn_the_next_step_and_lose_it_when_shuffled(tmp_path, click_graph, encoder):
    from kgrec.runs import load_run, train_run

    graph = ring_walks(tmp_path / "g", click_graph)
    quiet = {"progress": False, "log": lambda *_: None}
    results = train_run(graph, seq_config(encoder), tmp_path / "run", **quiet)
    assert results["test"]["recall@10"] > 0.8, results["test"]
    assert results["test_history"].startswith("train + valid")
    run = load_run(tmp_path / "run", device="cpu")  # the weights carry the test-time histories
    assert run.evaluate("test")["ndcg@10"] == pytest.approx(results["test"]["ndcg@10"], abs=1e-6)
    recs = run.recommend(["u0"], k=1)
    assert len(recs) == 1

    control = train_run(graph, seq_config(encoder, shuffle_test=True), tmp_path / "shuffled", **quiet)
    assert control["valid"] == results["valid"], "the control changes the test history only"
    assert control["test"]["ndcg@10"] < 0.8 * results["test"]["ndcg@10"], (control["test"], results["test"])
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert "loss_next_item" in json.loads(lines[0])


def test_a_log_without_timestamps_is_refused_before_training(tmp_path, click_graph):
    from kgrec.graph.store import load_graph, save_graph
    from kgrec.runs import train_run

    graph = ring_walks(tmp_path / "g", click_graph)
    kg = load_graph(graph)
    kg.interactions.loc[kg.interactions.index[:3], "timestamp"] = math.nan
    save_graph(kg, tmp_path / "g2")
    with pytest.raises(KgrecError, match=r"3 of 900 interactions have no timestamp \(column 'timestamp'"):
        train_run(tmp_path / "g2", seq_config(), tmp_path / "run", progress=False, log=lambda *_: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("model", "item_item", "ease", "model.item_item is a setting of the graph models"),
        ("train", "kg_loss_weight", 0.1, "train.kg_loss_weight is a setting"),
        ("train", "loss", "bpr", "full softmax"),
        ("sequence", "heads", 3, "sequence.heads = 3 must be positive and divide model.dim = 32"),
        ("sequence", "max_len", 1, "sequence.max_len = 1"),
        ("sequence", "dropout", 1.0, r"sequence.dropout = 1.0 must lie in \[0, 1\)"),
        ("sequence", "future", 0, r"sequence.future = 0 must be 1 or more"),
        ("sequence", "future_weight", -0.5, r"sequence.future_weight = -0.5 must be 0 or more"),
    ],
)
def test_settings_a_sequence_model_cannot_honour_are_refused(section, key, value, message):
    config = seq_config()
    setattr(getattr(config, section), key, value)
    with pytest.raises(KgrecError, match=message):
        check_experiment(config)
