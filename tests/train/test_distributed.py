"""Data-parallel training: two real CPU processes under torchrun (gloo), and the helpers alone."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.eval.sets import SplitSets
from kgrec.eval.splits import make_split
from kgrec.graph.store import load_graph
from kgrec.runs import prepare_model
from kgrec.train import distributed
from kgrec.train.distributed import World, torchrun_env
from kgrec.train.step import make_step
from kgrec.train.view import target_pairs

pytestmark = pytest.mark.slow  # starts processes or trains for real

EPOCHS, STOP_AT = 5, 3
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

# Runs `kgrec train` as torchrun's script, with test hooks: every process saves its weights as
# training ends and the shards of the epochs it trained on; rank 0 can be made to decide to stop
# early (KGREC_TEST_STOP_AT), one rank to fail mid-run (KGREC_TEST_FAIL_RANK).
WORKER = textwrap.dedent(
    """
    import os, sys
    import torch
    from safetensors.torch import save_file
    from kgrec.errors import KgrecError
    from kgrec.train import distributed
    from kgrec.cli.main import main

    World, out = distributed.World, os.environ["KGREC_TEST_OUT"]
    shards, decisions = [], []
    shard, agree, check, mean_loss = World.shard, World.agree, World.check_in_sync, World.mean_loss

    def record_shard(self, order):
        shards.append(shard(self, order).clone())
        return shards[-1]

    def stop_early(self, flag):
        decisions.append(flag)
        if self.is_main and len(decisions) == int(os.environ.get("KGREC_TEST_STOP_AT", 0)):
            flag = True
        return agree(self, flag)

    def keep_weights(self, model):
        tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
        tensors.update({f"shard.{e}": s.cpu() for e, s in enumerate(shards)})
        save_file(tensors, os.path.join(out, f"rank{self.rank}.safetensors"))
        check(self, model)

    def fail(self, total, steps):
        if str(self.rank) == os.environ.get("KGREC_TEST_FAIL_RANK") and len(shards) == 2:
            raise KgrecError("injected failure")
        return mean_loss(self, total, steps)

    World.shard, World.agree, World.check_in_sync, World.mean_loss = record_shard, stop_early, keep_weights, fail
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, click_graph):
    root = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(3)
    clicks = [(u, (i + 5 * (u % 4)) % 60, 0) for u in range(80) for i in rng.choice(60, size=8, replace=False)]
    click_graph(root / "g", clicks, num_items=60, genres=4, relation="http://x/g")
    # the KG loss is on (kg_loss_weight's default): relation embeddings are used outside forward
    (root / "exp.toml").write_text(
        "[model]\nuse_text = false\ndim = 16\nlayers = 2\n"
        f"[train]\nepochs = {EPOCHS}\nbatch_size = 128\nlr = 0.01\npatience = 1000\nseed = 5\n"
    )
    (root / "worker.py").write_text(WORKER)
    return root


def _torchrun(root, run, **env):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(root / "worker.py"),
           "train", "--graph", str(root / "g"), "--config", str(root / "exp.toml"), "--run-dir", str(run)]  # fmt: skip
    # a hang is the failure this guards against: the timeout turns it into a test failure
    return subprocess.run(cmd, env={**ENV, "KGREC_TEST_OUT": str(root), **env}, capture_output=True, text=True, timeout=120)


def test_two_processes_train_one_model_and_write_one_run(setup):
    root, run = setup, setup / "run"
    proc = _torchrun(root, run, KGREC_TEST_STOP_AT=str(STOP_AT))
    assert proc.returncode == 0, proc.stderr[-3000:]

    # one writer: one set of files, one metrics line per epoch, the results printed once
    assert sorted(p.name for p in run.iterdir()) == [
        "config.toml", "content_model.json", "content_model.safetensors", "curves.png", "metrics.jsonl", "model.safetensors",
        "results.json", "run.json", "split", "test_per_user.csv",
    ]  # fmt: skip
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == list(range(1, STOP_AT + 1))
    assert proc.stdout.count("validation (selected epoch") == 1 and proc.stdout.count("split: random") == 1
    assert json.loads((run / "run.json").read_text())["processes"] == 2

    # rank 0 decided to stop at epoch STOP_AT of EPOCHS, and the other process stopped with it
    results = json.loads((run / "results.json").read_text())
    assert results["epochs_run"] == STOP_AT and 1 <= results["best_epoch"] <= STOP_AT
    for metrics in (results["valid"], results["test"]):
        assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if "@" in k)
        assert metrics["recall@50"] >= metrics["recall@10"] and metrics["ndcg@20"] > 0.0
    assert all(math.isfinite(x["loss"]) for x in lines)

    # DDP kept the replicas identical, bit for bit
    rank0, rank1 = load_file(str(root / "rank0.safetensors")), load_file(str(root / "rank1.safetensors"))
    weights = [k for k in rank0 if k.startswith("model.")]
    assert weights and all(torch.equal(rank0[k], rank1[k]) for k in weights)
    assert not torch.equal(rank0["model.relation_embedding.weight"], torch.ones_like(rank0["model.relation_embedding.weight"]))

    # each epoch was split between the processes, not repeated: every training pair once
    n_train = len(pd.read_csv(run / "split" / "train.csv"))
    for epoch in range(STOP_AT):
        a, b = rank0[f"shard.{epoch}"], rank1[f"shard.{epoch}"]
        assert a.numel() == b.numel() == -(-n_train // 2)
        assert set(torch.cat([a, b]).tolist()) == set(range(n_train))
    assert not torch.equal(rank0["shard.0"], rank0["shard.1"]), "a new permutation every epoch"


def test_a_failing_process_ends_the_run_with_its_message(setup):
    run = setup / "failed"
    proc = _torchrun(setup, run, KGREC_TEST_FAIL_RANK="1")
    assert proc.returncode != 0
    assert "kgrec: error (rank 1 of 2): injected failure" in proc.stderr
    assert "kgrec: error (rank 0 of 2): another training process failed first" in proc.stderr
    assert not (run / "results.json").exists()


# --------------------------------------------------------------------------- the helpers, in-process
def test_torchrun_environment():
    assert torchrun_env({}) is None and torchrun_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    full = {"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    assert torchrun_env(full) == (2, 4, 0)
    assert distributed.rank_label(full) == " (rank 2 of 4)" and distributed.rank_label({}) == ""
    with pytest.raises(KgrecError, match="LOCAL_RANK"):
        torchrun_env({k: v for k, v in full.items() if k != "LOCAL_RANK"})
    with pytest.raises(KgrecError, match="inconsistent"):
        torchrun_env({**full, "RANK": "4"})


@pytest.mark.parametrize("n", [1, 7, 8, 9])
def test_shards_split_an_epoch_into_equal_parts(n):
    order = torch.randperm(n)
    shards = [World(rank=r, size=4).shard(order) for r in range(4)]
    assert len({s.numel() for s in shards}) == 1, "equal sizes: every process takes as many steps"
    assert set(torch.cat(shards).tolist()) == set(range(n))
    assert World().shard(order) is order


def test_negative_generators_differ_by_rank_and_epoch():
    def draws(rank, epoch):
        world = World(rank=rank, size=2)
        gen = world.sampling_generator(torch.Generator())
        world.seed_epoch(gen, 7, epoch)
        return torch.randint(1000, (8,), generator=gen)

    assert torch.equal(draws(1, 3), draws(1, 3))
    assert not torch.equal(draws(0, 3), draws(1, 3)) and not torch.equal(draws(1, 3), draws(1, 4))
    shared = torch.Generator()
    assert World().sampling_generator(shared) is shared, "one process: behaviour unchanged"


@pytest.mark.parametrize(
    "kg_loss_weight,sampler,contrast", [(0.1, "full", 0.0), (0.0, "full", 0.0), (0.1, "neighbor", 0.1), (0.1, "full", 0.1)]
)
def test_ddp_replica_trains_the_recommender(setup, kg_loss_weight, sampler, contrast):
    """The real training step through DDP, with the KG loss (relation embeddings used outside
    forward) and without it (relation embeddings unused): both need DDP's static graph. The
    sampled step goes through the replica's forward too, so DDP averages its gradients."""
    kg = load_graph(setup / "g")
    cfg = ExperimentConfig()
    cfg.model.dim = 8
    cfg.model.use_text = False
    cfg.train.kg_loss_weight = kg_loss_weight
    cfg.train.sampler, cfg.train.fanouts, cfg.train.contrast_weight = sampler, [5, 5, 5], contrast
    split = make_split(target_pairs(kg, None), "random", [0.8, 0.1, 0.1], 1)
    device = torch.device("cpu")
    model, g = prepare_model(kg, cfg, split, device)
    sets = SplitSets.from_split(split, g.num_users, g.num_items, device)
    users, items = sets.train.pairs()
    before = model.relation_embedding.weight.detach().clone()
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    net = step = None
    try:
        net = distributed.replica(model, device)
        step = make_step(model, net, g, sets, cfg, torch.Generator().manual_seed(0))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for lo in range(0, 96, 32):  # several steps: DDP's errors about unused parameters come at the second
            terms = step(users[lo : lo + 32], items[lo : lo + 32])
            assert ("contrast" in terms) == (contrast > 0)
            loss = sum(terms.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        # the DDP wrapper (and its reducer) must go before its process group: freed when the
        # test's frame went, after the group, it hung the suite now and then (1 run in ~8)
        del net, step
        distributed.end_process_group()
    moved = not torch.equal(before, model.relation_embedding.weight)
    assert moved == (kg_loss_weight > 0)
