"""Preparing a model for training: the text switch and the item-item view given at build time."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import kgrec.runs.training as training
from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
from kgrec.eval.splits import make_split
from kgrec.graph.build import build_graph
from kgrec.graph.useritem import UserItemSets
from kgrec.models.item_item import ease_weights
from kgrec.train.view import target_pairs


@pytest.fixture(scope="module")
def kg_and_split(tiny_helper):
    kg = build_graph(tiny_helper.tiny_tables(), name="tiny")
    return kg, make_split(target_pairs(kg), "random", [0.8, 0.1, 0.1], seed=1)


def _config(**model):
    return ExperimentConfig(model=ModelConfig(dim=8, layers=1, **model), train=TrainConfig(device="cpu"))


def test_without_text_no_description_is_encoded(kg_and_split, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("build_node_features must not be called with model.use_text = false")

    monkeypatch.setattr(training, "build_node_features", refuse)
    kg, split = kg_and_split
    model, g = training.prepare_model(kg, _config(use_text=False), split, torch.device("cpu"))
    assert g.feature_dim == 0 and model.item_item is None


def test_with_text_the_features_come_from_the_encoder(kg_and_split, monkeypatch):
    calls = []

    def fake(kg, text_config, device="cpu"):
        calls.append(device)
        return torch.ones(kg.num_nodes, 5), torch.ones(kg.num_nodes, dtype=torch.bool)

    monkeypatch.setattr(training, "build_node_features", fake)
    kg, split = kg_and_split
    _, g = training.prepare_model(kg, _config(use_text=True), split, torch.device("cpu"))
    assert calls == ["cpu"] and g.feature_dim == 5


def test_item_item_view_is_fitted_on_training_pairs_and_given_at_build(kg_and_split, monkeypatch):
    monkeypatch.setattr(training, "build_node_features", lambda *a, **k: (None, None))
    kg, split = kg_and_split
    model, _ = training.prepare_model(kg, _config(use_text=False, item_item="ease"), split, torch.device("cpu"))
    assert model.item_item is not None and model.item_item.num_items == kg.num_items
    # Fitted on the training positives only (like the graph): the same weights as EASE on them.
    train = UserItemSets.from_pairs(split.train["user"].to_numpy(), split.train["item"].to_numpy(), kg.num_users, kg.num_items)
    torch.testing.assert_close(model.item_item.weights, ease_weights(train, ModelConfig().item_item_l2))
    everything = torch.cat([torch.as_tensor(s[["user", "item"]].to_numpy()) for s in (split.train, split.valid, split.test)])
    full = UserItemSets.from_pairs(everything[:, 0].numpy(), everything[:, 1].numpy(), kg.num_users, kg.num_items)
    assert not torch.allclose(model.item_item.weights, ease_weights(full, ModelConfig().item_item_l2))
