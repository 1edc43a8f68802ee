"""The sparse protocol (eval.train_fraction): less training history, the same held-out pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgrec.eval.splits import Split, read_split, thin_training, write_split


def _split():
    rng = np.random.default_rng(0)
    rows = [(u, i) for u in range(30) for i in rng.choice(50, size=1 + u % 12, replace=False)]
    train = pd.DataFrame(rows, columns=["user", "item"])
    valid = pd.DataFrame({"user": [0, 1], "item": [49, 48]})
    test = pd.DataFrame({"user": [2, 3], "item": [47, 46]})
    return Split(train, valid, test)


def test_each_user_keeps_the_fraction_and_at_least_one():
    split = _split()
    thin = thin_training(split, 0.2, seed=1)
    before = split.train.groupby("user").size()
    after = thin.train.groupby("user").size()
    assert (after.index == before.index).all()  # nobody loses their whole history
    expected = np.maximum(1, np.rint(0.2 * before.to_numpy()))
    assert (after.to_numpy() == expected).all()
    both = pd.concat([thin.train, thin.withheld]).sort_values(["user", "item"]).reset_index(drop=True)
    assert both.equals(split.train.sort_values(["user", "item"]).reset_index(drop=True))
    assert thin.valid is split.valid and thin.test is split.test
    again = thin_training(split, 0.2, seed=1)
    assert again.train.equals(thin.train)  # seeded
    assert not thin_training(split, 0.2, seed=2).train.equals(thin.train)
    assert thin_training(split, 1.0, seed=1) is split


def test_withheld_pairs_are_written_and_read_back(tmp_path):
    thin = thin_training(_split(), 0.5, seed=3)
    users, items = [f"u{k}" for k in range(30)], [f"i{k}" for k in range(50)]
    write_split(thin, tmp_path, users, items)
    back = read_split(tmp_path, {u: k for k, u in enumerate(users)}, {i: k for k, i in enumerate(items)})
    assert len(back.withheld) == len(thin.withheld) and len(back.train) == len(thin.train)


def test_the_withheld_pairs_leave_the_training_graph(tmp_path, click_graph):
    from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
    from kgrec.runs import load_run, train_run
    from kgrec.config import EvalConfig

    clicks = [(u, (u * 3 + j) % 20, j) for u in range(20) for j in range(10)]
    click_graph(tmp_path / "graph", clicks, num_items=20, genres=4)
    config = ExperimentConfig(
        model=ModelConfig(dim=8, layers=1, use_text=False),
        train=TrainConfig(epochs=2, device="cpu"),
        eval=EvalConfig(train_fraction=0.25),
    )
    train_run(tmp_path / "graph", config, tmp_path / "run", progress=False, log=lambda *_: None)
    run = load_run(tmp_path / "run", device="cpu")
    assert len(run.split.withheld) > 0
    g = run.trained_graph
    src, dst = g.edge_index[0].numpy(), g.edge_index[1].numpy()
    edges = set(zip(src.tolist(), dst.tolist()))
    nu = run.kg.num_users
    for pairs in (run.split.withheld, run.split.valid, run.split.test):
        for u, i in zip(pairs["user"], pairs["item"]):
            assert (u, nu + i) not in edges and (nu + i, u) not in edges
    assert any((u, nu + i) in edges or (nu + i, u) in edges for u, i in zip(run.split.train["user"], run.split.train["item"]))


@pytest.mark.parametrize("value", [0.0, 1.5, -0.2])
def test_fraction_outside_zero_one_is_refused(value):
    from kgrec.config import ExperimentConfig
    from kgrec.errors import KgrecError
    from kgrec.experiment import check_experiment

    config = ExperimentConfig()
    config.eval.train_fraction = value
    with pytest.raises(KgrecError, match=r"eval.train_fraction = .* must lie in \(0, 1\]"):
        check_experiment(config)
