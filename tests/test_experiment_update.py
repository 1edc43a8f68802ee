"""The ``[update]`` section (``kgrec update``): read, range-checked, one message per bad value."""

from __future__ import annotations

import pytest

from kgrec.config import ExperimentConfig, UpdateConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment, load_experiment


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("epochs", -1, "update.epochs = -1 must be 0 or more"),
        ("lr", 0.0, "update.lr = 0.0 must be a positive number"),
        ("replay_ratio", -0.5, "update.replay_ratio = -0.5 must be 0 or more"),
        ("distill_weight", float("nan"), "update.distill_weight = nan must be 0 or more"),
        ("user_init", "mean", "update.user_init = 'mean' is not one of: items, zero"),
        ("fold_in_steps", -3, "update.fold_in_steps = -3 must be 0 or more"),
        ("fold_in_lr", float("inf"), "update.fold_in_lr = inf must be a positive number"),
    ],
)
def test_a_bad_update_setting_is_named(key, value, message):
    config = ExperimentConfig(update=UpdateConfig(**{key: value}))
    with pytest.raises(KgrecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_experiment(config)


def test_the_update_table_is_read_with_the_rest(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text("[update]\nepochs = 2\nreplay_ratio = 0.5\nuser_init = \"zero\"\n")
    config = load_experiment(path)
    assert (config.update.epochs, config.update.replay_ratio, config.update.user_init) == (2, 0.5, "zero")
    path.write_text("[update]\nepoch = 2\n")
    with pytest.raises(KgrecError, match="unknown key 'update.epoch'"):
        load_experiment(path)
