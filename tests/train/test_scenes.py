"""Scenes: a planted world where a user's taste shifts from one scene to the other.

80 users, 60 items in 4 segments (item ``i`` in segment ``i % 4``). A user of segment ``h``
(``u % 4``) takes 8 items of segment ``h`` in the ``home`` scene and 4 of segment ``h + 1`` in
``search``, so both scenes share the catalogue and the taste moves by one segment in search. A
scene-blind model learns both segments for every user and mixes them in each scene; the adapted
model (the global model, then scene parts on top of it) learns the shift once for every user
(its search adapter) and ranks each scene's segment first.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment, check_for_graph
from kgrec.graph.build import build_graph
from kgrec.graph.store import load_graph, save_graph
from kgrec.ingest.sources import BuildReport, SourceTables
from kgrec.runs import train_run
from kgrec.train.scenes import pooled, scene_catalogues, scene_of_pairs


def planted(rows_extra=()) -> SourceTables:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(80):
        h = u % 4
        home = rng.choice([i for i in range(60) if i % 4 == h], 8, replace=False)
        search = rng.choice([i for i in range(60) if i % 4 == (h + 1) % 4], 4, replace=False)
        rows += [(f"u{u}", f"i{i}", "interact", math.nan, float(t), "home") for t, i in enumerate(home)]
        rows += [(f"u{u}", f"i{i}", "interact", math.nan, float(10 + t), "search") for t, i in enumerate(search)]
    rows += list(rows_extra)
    inter = pd.DataFrame(rows, columns=["user", "item", "event", "rating", "timestamp", "scene"])
    return SourceTables(inter, {f"i{i}": None for i in range(60)}, SourceTables.empty_triples(), SourceTables.empty_texts(), BuildReport())


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("g") / "graph"
    save_graph(build_graph(planted()), folder)
    return folder


def config(mode: str, **scenes) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.model.use_text = False
    cfg.model.use_kg = False
    cfg.model.item_item = "none"
    cfg.model.dim = 16
    cfg.model.layers = 1
    cfg.train.loss = "bpr"
    cfg.train.num_negatives = 4
    cfg.train.kg_loss_weight = 0.0
    cfg.train.epochs = 12
    cfg.train.patience = 12
    cfg.train.lr = 0.03
    cfg.train.batch_size = 256
    cfg.train.device = "cpu"
    cfg.eval.ks = [10]
    cfg.eval.metric = "recall@10"
    cfg.coldstart.content = "none"
    cfg.scenes.mode = mode
    for key, value in scenes.items():
        setattr(cfg.scenes, key, value)
    check_experiment(cfg)
    return cfg


def quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def runs(graph_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    configs = {"global": config("global"), "adapted": config("adapted"), "no parts": config("adapted", parts_epochs=0)}
    return {name: train_run(graph_dir, cfg, out / name.replace(" ", "-"), progress=False, log=quiet) for name, cfg in configs.items()}


@pytest.mark.slow
def test_the_adapted_model_learns_each_scenes_taste(runs):
    glob, adapted = runs["global"]["test_scenes"], runs["adapted"]["test_scenes"]
    assert adapted["home"]["recall@10"] >= glob["home"]["recall@10"], (glob, adapted)
    assert adapted["search"]["recall@10"] > glob["search"]["recall@10"] + 0.5, (glob, adapted)
    assert runs["adapted"]["scenes"]["parts"]["search"]["kept"]


@pytest.mark.slow
def test_the_adapted_model_without_scene_parts_is_the_global_model(runs):
    # its shared part trains exactly as the global model: same weights, same figures
    assert runs["no parts"]["test_scenes"] == runs["global"]["test_scenes"]
    assert runs["no parts"]["valid_scenes"] == runs["global"]["valid_scenes"]
    assert runs["adapted"]["best_epoch"] == runs["global"]["best_epoch"]


@pytest.mark.slow
def test_a_scene_keeps_its_parts_only_where_they_improve_its_validation(runs):
    glob, adapted = runs["global"], runs["adapted"]
    for scene, chosen in adapted["scenes"]["parts"].items():
        assert chosen["valid_shared"] == glob["valid_scenes"][scene]["recall@10"]
        assert adapted["valid_scenes"][scene]["recall@10"] == pytest.approx(chosen["valid"])
        if chosen["kept"]:
            assert chosen["valid"] > chosen["valid_shared"] and chosen["lr"] in (0.01, 0.001)
        else:  # served by the shared model: the global model's figures
            assert adapted["test_scenes"][scene] == glob["test_scenes"][scene]


@pytest.mark.slow
def test_results_hold_metrics_per_scene_and_pooled(runs, graph_dir):
    res = runs["adapted"]
    assert set(res["test_scenes"]) == set(res["valid_scenes"]) == {"home", "search"}
    assert res["test"]["num_users"] == sum(m["num_users"] for m in res["test_scenes"].values())
    assert res["test"]["recall@10"] == pytest.approx(pooled({0: res["test_scenes"]["home"], 1: res["test_scenes"]["search"]})["recall@10"])
    assert res["scenes"]["mode"] == "adapted"
    assert res["selection_metric"] == "valid recall@10, mean over scenes"


def test_one_model_per_scene_and_fine_tuning_run(graph_dir, tmp_path):
    cfg = config("separate")
    cfg.train.epochs = 1
    res = train_run(graph_dir, cfg, tmp_path / "separate", progress=False, log=quiet)
    assert set(res["test_scenes"]) == {"home", "search"}
    cfg = config("adapted", finetune_epochs=1, freeze="top")
    cfg.train.epochs = 1
    res = train_run(graph_dir, cfg, tmp_path / "tuned", progress=False, log=quiet)
    assert set(res["scenes"]["finetuned"]) == {"home", "search"}
    assert json.loads((tmp_path / "tuned" / "results.json").read_text())["scenes"]["freeze"] == "top"
    assert (tmp_path / "tuned" / "scenes.safetensors").is_file()


def test_a_pair_in_two_scenes_belongs_to_its_first(tmp_path):
    extra = [("u0", "i1", "interact", math.nan, 50.0, "search"), ("u0", "i1", "interact", math.nan, 40.0, "home")]
    kg = build_graph(planted(extra))
    pairs, set_aside = scene_of_pairs(kg)
    assert set_aside == 1
    row = pairs[(pairs["user"] == kg.user_index["u0"]) & (pairs["item"] == kg.item_index["i1"])]
    assert kg.scenes[int(row["scene"].iloc[0])] == "home"  # the earlier timestamp, not the earlier row
    assert scene_catalogues(kg)[kg.scenes.index("search"), kg.item_index["i1"]]


def test_scene_modes_need_scenes_in_the_graph(tmp_path):
    tables = planted()
    tables.interactions = tables.interactions.drop(columns="scene")
    save_graph(build_graph(tables), tmp_path / "g")
    with pytest.raises(KgrecError, match="no scene column"):
        check_for_graph(config("adapted"), load_graph(tmp_path / "g"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: setattr(c.scenes, "mode", "both"), "scenes.mode"),
        (lambda c: setattr(c.scenes, "freeze", "bottom"), "scenes.freeze"),
        (lambda c: setattr(c.model, "item_item", "ease"), "model.item_item"),
        (lambda c: setattr(c.train, "kg_loss_weight", 0.1), "train.kg_loss_weight"),
        (lambda c: setattr(c.train, "loss", "softmax"), "train.loss"),
        (lambda c: (setattr(c.scenes, "mode", "global"), setattr(c.scenes, "finetune_epochs", 3)), "finetune_epochs"),
        (lambda c: setattr(c.scenes, "parts_lr", []), "scenes.parts_lr"),
        (lambda c: setattr(c.scenes, "parts_lr", [0.01, 0.0]), r"scenes.parts_lr\[1\]"),
        (lambda c: setattr(c.scenes, "parts_l2", [-1e-3]), r"scenes.parts_l2\[0\]"),
        (lambda c: setattr(c.scenes, "parts_epochs", -1), "scenes.parts_epochs"),
    ],
)
def test_scene_settings_are_checked(change, message):
    cfg = config("adapted")
    change(cfg)
    with pytest.raises(KgrecError, match=message):
        check_experiment(cfg)
