"""The GPU paths, end to end, where a CUDA device exists; skipped cleanly everywhere else.

CI has no GPU, so every path here also has a CPU twin in the other test modules. What these
tests add on a GPU machine: the loop trains on the device under bf16 autocast and lands close
to the CPU result, ranking runs on the device, and sampled negatives are drawn there.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from kgrec.config import ExperimentConfig
from kgrec.graph.useritem import UserItemSets
from kgrec.runs import train_run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory, click_graph):
    rng = np.random.default_rng(1)
    clicks = []
    for u in range(60):
        items = rng.choice([i for i in range(40) if i % 4 == u % 4], size=6, replace=False)
        clicks += [(u, i, t) for t, i in enumerate(items)]
    return click_graph(tmp_path_factory.mktemp("g") / "g", clicks, num_items=40, genres=4)


def _config(device: str, amp: bool, loss: str = "softmax") -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.model.use_text = False
    cfg.model.dim = 16
    cfg.model.layers = 2
    cfg.train.loss = loss
    cfg.train.num_negatives = 16 if loss == "softmax" else 1
    cfg.train.temperature = 1.0
    cfg.train.epochs = 20
    cfg.train.batch_size = 64
    cfg.train.lr = 0.01
    cfg.train.patience = 100
    cfg.train.device = device
    cfg.train.amp = amp
    return cfg


@pytest.mark.parametrize("loss", ["softmax", "bpr"])
def test_training_on_cuda_with_autocast_learns_like_cpu(graph_dir, tmp_path, loss):
    quiet = dict(progress=False, log=lambda *_: None)
    gpu = train_run(graph_dir, _config("cuda", amp=True, loss=loss), tmp_path / "gpu", **quiet)
    cpu = train_run(graph_dir, _config("cpu", amp=False, loss=loss), tmp_path / "cpu", **quiet)
    assert gpu["device"].startswith("cuda")
    # different random streams and bf16 matmuls: not equal, but the same quality on clustered data
    assert gpu["test"]["recall@20"] > 0.5
    assert abs(gpu["test"]["recall@20"] - cpu["test"]["recall@20"]) < 0.15


def test_full_ranking_on_cuda_equals_cpu():
    from kgrec.eval.metrics import full_ranking_metrics

    gen = torch.Generator().manual_seed(0)
    users, items = 50, 200
    scores = torch.randn(users, items, generator=gen)
    train = UserItemSets.from_pairs(np.repeat(np.arange(users), 3), np.arange(users * 3) % items, users, items)
    test = UserItemSets.from_pairs(np.arange(users), (np.arange(users) * 7 + 100) % items, users, items)
    cpu = full_ranking_metrics(lambda u: scores[u], test, train, batch_size=16)
    dev = torch.device("cuda")
    scores_d = scores.to(dev)
    gpu = full_ranking_metrics(lambda u: scores_d[u.to(dev)], test.to(dev), train.to(dev), batch_size=16)
    for key, value in cpu.items():
        assert gpu[key] == pytest.approx(value, abs=1e-6), key


def test_negatives_are_drawn_on_the_device():
    from kgrec.train.sampling import sample_negative_items

    dev = torch.device("cuda")
    train = UserItemSets.from_pairs(np.array([0, 0, 1]), np.array([1, 2, 3]), 2, 10).to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    neg = sample_negative_items(torch.tensor([0, 1], device=dev), train, 10, 4, gen)
    assert neg.device.type == "cuda"
    assert not torch.isin(neg[0], torch.tensor([1, 2], device=dev)).any()


@pytest.mark.parametrize("encoder", ["sasrec", "gru4rec"])
def test_sequence_models_learn_on_cuda(tmp_path, click_graph, encoder):
    """The sequence models' CUDA path (PyTorch's dropout kernel, packed positions on the device)."""
    from tests.train.test_sequences import ring_walks, seq_config

    graph = ring_walks(tmp_path / "g", click_graph)
    cfg = seq_config(encoder)
    cfg.train.device = "cuda"
    results = train_run(graph, cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    assert results["device"].startswith("cuda")
    assert results["test"]["recall@10"] > 0.8, results["test"]
