"""CKE (kgrec.models.cke): TransR by hand, the settings it refuses, and that it trains."""

from __future__ import annotations


import math

import pandas as pd
import pytest
import torch

from kgrec.cli.main import main
from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment
from kgrec.models.transr import transr_score


def _config(**model):
    return ExperimentConfig(
        model=ModelConfig(encoder="cke", layers=0, dim=16, use_text=False, **model),
        train=TrainConfig(epochs=15, batch_size=64, lr=0.02, kg_loss_weight=0.5, patience=15, device="cpu"),
    )


def test_transr_score_by_hand():
    from kgrec.models.cke import CKERecommender
    from kgrec.models.inputs import NodeInput

    model = CKERecommender(NodeInput(10, 3, 0, use_id=True, use_text=False), torch.nn.Identity(), 2, 3, 4, 3)
    with torch.no_grad():
        model.relation_projection[1] = torch.tensor([[2.0, 0, 0], [0, 1, 0], [0, 0, 0]])
        model.relation_embedding.weight[1] = torch.tensor([1.0, 0, 0])
    h, t = torch.tensor([[1.0, 1.0, 5.0]]), torch.tensor([[1.0, 3.0, -5.0]])
    # without the norm constraints: M h + r - M t = (2 + 1 - 2, 1 - 3, 0) = (1, -2, 0): f = 5
    plain = transr_score(model.relation_projection, model.relation_embedding, h, torch.tensor([1]), t)
    assert plain.item() == pytest.approx(-5.0)
    # CKE scores unit vectors: M h = (2, 1, 0) / sqrt 5, r = (1, 0, 0), M t = (2, 3, 0) / sqrt 13
    x = 2 / math.sqrt(5) + 1 - 2 / math.sqrt(13)
    y = 1 / math.sqrt(5) - 3 / math.sqrt(13)
    assert model.kg_score(h, torch.tensor([1]), t).item() == pytest.approx(-(x * x + y * y))
    both = model.kg_score(h, torch.tensor([1]), t.unsqueeze(1).repeat(1, 2, 1))
    assert both.shape == (1, 2) and both[0].tolist() == pytest.approx([-(x * x + y * y)] * 2)
    # scaling a vector changes nothing under the constraints
    assert model.kg_score(3 * h, torch.tensor([1]), 0.5 * t).item() == pytest.approx(-(x * x + y * y))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"layers": 2}, 'model.layers = 2: model.encoder = "cke" does not propagate'),
        ({"use_kg": False}, "model.use_kg = false"),
        ({"edge_dropout": 0.1}, "model.edge_dropout = 0.1 has nothing to act on"),
    ],
)
def test_settings_cke_cannot_honour_are_refused(change, message):
    config = _config()
    for key, value in change.items():
        setattr(config.model, key, value)
    with pytest.raises(KgrecError, match=message):
        check_experiment(config)


def test_without_transr_is_cke_own_ablation():
    """kg_loss_weight = 0 keeps the model and drops TransR: the control that says whether the KG pays."""
    config = _config()
    config.train.kg_loss_weight = 0.0
    check_experiment(config)  # accepted
    config.train.kg_loss_weight = -1.0
    with pytest.raises(KgrecError, match="kg_loss_weight"):
        check_experiment(config)


def _write(config: ExperimentConfig, path):
    from kgrec.config import dump_toml

    dump_toml(config, path)
    return path


def test_a_graph_without_knowledge_edges_is_refused_before_training(tmp_path, capsys):
    pd.DataFrame({"user": ["u1", "u2", "u2"], "item": ["i1", "i1", "i2"]}).to_csv(tmp_path / "log.csv", index=False)
    assert main(["build", "--interactions", str(tmp_path / "log.csv"), "--out", str(tmp_path / "g")]) == 0
    capsys.readouterr()
    assert main(["train", "--graph", str(tmp_path / "g"), "--config", str(_write(_config(), tmp_path / "c.toml")), "--run", str(tmp_path / "run")]) == 2
    assert "'cke' learns from the knowledge graph, and this graph has no knowledge edges" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cke_learns_tastes_that_follow_genres(tmp_path, genre_tastes):
    results, run, first = genre_tastes(tmp_path, _config())
    # every user's top 3 among the items not in their training clicks: a random ranking puts
    # about a fifth of them in the user's genre (4 to 6 of the 24 to 26 items left)
    recs = run.recommend([f"u{u}" for u in range(60)], k=3)
    in_genre = [int(r.item[1:]) % 3 == int(r.user[1:]) % 3 for r in recs.itertuples()]
    assert sum(in_genre) / len(in_genre) > 0.85
    assert first["loss_kg"] > 0
