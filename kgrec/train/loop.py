"""The training loop: link-prediction self-supervision with early stopping on validation.

One epoch walks over the training user-item pairs in shuffled mini-batches. Each step
propagates over the whole training graph (full-graph message passing, as LightGCN does),
scores the batch's positives against sampled negatives (BPR, or a sampled softmax), adds
LightGCN's L2 penalty on the layer-0 embeddings and, when enabled, an auxiliary
link-prediction loss on knowledge edges. After every ``eval_every`` epochs the model ranks
all items for the validation users; the best validation metric decides the kept weights and
early stopping. The test set is touched once, at the end, with the selected weights.

The per-step loss is a function chosen by ``train.sampler`` (:func:`make_step_loss`): with
``"neighbor"`` each step propagates over the batch's sampled neighbourhood instead of the whole
graph (:mod:`kgrec.train.minibatch`); everything else here is shared.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from kgrec import __version__
from kgrec.config import ExperimentConfig, dump_toml
from kgrec.errors import KgrecError
from kgrec.eval.metrics import full_ranking_metrics
from kgrec.eval.splits import Split
from kgrec.graph.useritem import UserItemSets
from kgrec.io import atomic_path, write_json
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.recommender import Recommender
from kgrec.train.blend import select_blend
from kgrec.train.checkpoint import LoopState, load_checkpoint, save_checkpoint
from kgrec.train.distributed import World
from kgrec.train.losses import (
    bpr_loss,
    kg_link_loss,
    l2_regularisation,
    sampled_softmax_loss,
    structural_contrast_loss,
)
from kgrec.train.sampling import NodeTypeIndex, sample_kg_triples, sample_negative_items


@dataclass
class SplitSets:
    """A split as per-user item sets on the training device."""

    train: UserItemSets
    valid: UserItemSets
    test: UserItemSets

    @classmethod
    def from_split(cls, split: Split, num_users: int, num_items: int, device) -> "SplitSets":
        def sets(df):
            return UserItemSets.from_pairs(df["user"].to_numpy(), df["item"].to_numpy(), num_users, num_items).to(device)

        return cls(sets(split.train), sets(split.valid), sets(split.test))


def embeddings(model: Recommender, g: GraphTensors) -> tuple[torch.Tensor, torch.Tensor]:
    """User and item embeddings in fp32, in inference mode."""
    model.eval()
    with torch.inference_mode():
        emb, _ = model(g)
        users, items = model.user_item(emb.float(), g)
    return users, items


def evaluate_sets(
    model: Recommender, g: GraphTensors, truth: UserItemSets, exclude: UserItemSets, ks, batch_size: int
) -> dict[str, float]:
    """Full-ranking metrics of ``truth`` with ``exclude`` masked out of the ranking."""
    user_emb, item_emb = embeddings(model, g)
    return full_ranking_metrics(
        lambda users: model.rank_scores(user_emb, item_emb, users), truth, exclude, ks=ks, batch_size=batch_size
    )


#: Above this many ``batch x items`` cells the softmax masks accidental positives by key look-up.
_DENSE_MASK_LIMIT = 1 << 24


def _shared_softmax_loss(user_emb, item_emb, users, pos, train: UserItemSets, train_keys, tc, generator):
    """Sampled softmax with one set of ``num_negatives`` items shared by the whole batch.

    Sharing makes many negatives cheap (one ``[B, n]`` matrix product instead of a gather of
    ``B * n`` rows); negatives that happen to be a user's training positive are masked out of
    that user's softmax rather than pushed down. With ``num_negatives`` at least the number of
    items, every item is a negative once: the full softmax, affordable on catalogues of a few
    thousand items. Returns the loss and the negatives.
    """
    n = tc.num_negatives
    if n >= item_emb.size(0):  # as many negatives as items: the exact (full) softmax, no sampling noise
        neg = torch.arange(item_emb.size(0), device=users.device)
    else:
        neg = torch.randint(item_emb.size(0), (n,), generator=generator, device=generator.device).to(users.device)
    u = user_emb[users]
    pos_scores = (u * item_emb[pos]).sum(-1)
    neg_scores = u @ item_emb[neg].T
    if users.numel() * item_emb.size(0) <= _DENSE_MASK_LIMIT:  # small catalogue: one dense row per user
        accidental = train.dense_rows(users)[:, neg]  # [B, n]; cheaper than n * B key look-ups
    else:  # large catalogue: B * n sorted-key look-ups, no [B, items] mask and no host sync
        accidental = train.contains(users.unsqueeze(1), neg.unsqueeze(0), keys=train_keys)
    neg_scores = neg_scores.float().masked_fill(accidental, float("-inf"))
    return sampled_softmax_loss(pos_scores.float(), neg_scores, tc.temperature), neg


#: ``step_loss(users, pos) -> loss``: the training loss of one batch of (user, positive item) pairs.
StepLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def full_graph_step(
    model: Recommender, g: GraphTensors, sets: SplitSets, config: ExperimentConfig, generator: torch.Generator
) -> StepLoss:
    """The per-batch loss of full-graph training (``train.sampler = "full"``).

    Each call propagates over the whole training graph, scores the batch's positives against
    sampled negatives (BPR, or a sampled softmax), adds LightGCN's L2 penalty on the layer-0
    embeddings and, when enabled, the auxiliary knowledge-edge loss.
    """
    tc = config.train
    train_keys = sets.train.keys()
    kg_weight = tc.kg_loss_weight if g.kg_edge_index.size(1) else 0.0
    tail_index = NodeTypeIndex.from_node_type(g.node_type)

    contrast = tc.contrast_weight > 0

    def step_loss(users: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        if contrast:
            emb, ego, layers = model(g, return_layers=True)
        else:
            emb, ego = model(g)
        user_emb, item_emb = model.user_item(emb, g)
        ego_users, ego_items = model.user_item(ego, g)
        if tc.loss == "softmax":
            loss, neg = _shared_softmax_loss(user_emb, item_emb, users, pos, sets.train, train_keys, tc, generator)
        else:
            neg = sample_negative_items(users, sets.train, g.num_items, tc.num_negatives, generator, keys=train_keys)
            u = user_emb[users]
            pos_scores = (u * item_emb[pos]).sum(-1)
            neg_scores = torch.einsum("bd,bnd->bn", u, item_emb[neg])
            loss = bpr_loss(pos_scores.float(), neg_scores.float())
        loss = loss + tc.reg_weight * l2_regularisation(
            ego_users[users], ego_items[pos], ego_items[neg].reshape(-1, ego.size(-1)), batch_size=users.numel()
        )
        if kg_weight > 0:
            heads, rels, tails, neg_tails = sample_kg_triples(
                g.kg_edge_index, g.kg_edge_type, g.node_type, tc.kg_batch_size, generator, users.device, tail_index
            )
            loss = loss + kg_weight * kg_link_loss(model, emb, heads, rels, tails, neg_tails)
        if contrast:
            loss = loss + tc.contrast_weight * _neighbour_contrast(layers, users, pos, g, tc)
        return loss

    return step_loss


def _neighbour_contrast(layers: list[torch.Tensor], users, pos, g: GraphTensors, tc) -> torch.Tensor:
    """NCL's structural contrast for the batch's distinct users and items (equal weights)."""
    if tc.contrast_layer >= len(layers):
        raise KgrecError(
            f"train.contrast_layer = {tc.contrast_layer} needs at least that many model.layers "
            f"(got {len(layers) - 1})"
        )
    deep, ego = layers[tc.contrast_layer], layers[0]
    u = torch.unique(users)
    i = torch.unique(pos) + g.num_users
    return structural_contrast_loss(deep[u], ego[u], tc.contrast_temperature) + structural_contrast_loss(
        deep[i], ego[i], tc.contrast_temperature
    )


def make_step_loss(
    model: Recommender, g: GraphTensors, sets: SplitSets, config: ExperimentConfig, generator: torch.Generator
) -> StepLoss:
    """The per-batch loss that ``train.sampler`` selects; everything else in :func:`fit` is shared.

    ``"full"`` propagates over the whole graph at every step; ``"neighbor"`` over the sampled
    neighbourhood of the batch only (:mod:`kgrec.train.minibatch`), for graphs too large for that.
    """
    sampler = config.train.sampler
    if sampler == "full":
        return full_graph_step(model, g, sets, config, generator)
    if sampler == "neighbor":
        from kgrec.train.minibatch import neighbor_step  # imported here: it imports this module

        return neighbor_step(model, g, sets, config, generator)
    raise KgrecError(f"unknown train.sampler {sampler!r} (full or neighbor)")


def save_weights(model: Recommender, path: Path) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path, ".safetensors") as tmp:
        save_file(state, str(tmp), metadata={"kgrec_version": __version__})


def _metric_name(metric: str, ks) -> str:
    name, _, k = metric.partition("@")
    if name not in {"recall", "ndcg", "hit", "precision", "mrr"} or not k.isdigit() or int(k) not in ks:
        raise KgrecError(f"eval.metric {metric!r} must be one of recall/ndcg/hit/precision/mrr @ a K in eval.ks {list(ks)}")
    return metric


def fit(
    model: Recommender,
    g: GraphTensors,
    split: Split,
    config: ExperimentConfig,
    run_dir: Path,
    *,
    device: torch.device,
    generator: torch.Generator,
    progress: bool = True,
    resume: bool = False,
    world: World | None = None,
) -> dict:
    """Train ``model`` on ``split.train``, select on ``split.valid``, report on ``split.test``.

    Writes ``metrics.jsonl`` (one line per evaluated epoch), ``model.safetensors`` (the
    weights selected so far, rewritten at every improvement), ``checkpoint/`` (after every
    epoch, removed at the end) and ``results.json`` into ``run_dir``, and returns the results.
    With ``resume`` the loop continues from ``checkpoint/``. With a ``world`` of several
    processes (torchrun) the model trains as a DDP replica on this process's share of each
    epoch, and rank 0 alone evaluates and writes (:mod:`kgrec.train.distributed`).
    """
    tc, ec = config.train, config.eval
    world = world or World(device=device)
    metric = _metric_name(ec.metric, ec.ks)
    sets = SplitSets.from_split(split, g.num_users, g.num_items, device)
    train_users, train_items = sets.train.pairs()
    n_train = train_users.numel()
    if n_train == 0:
        raise KgrecError("the training split is empty: nothing to learn from")
    if sets.valid.nnz == 0:
        raise KgrecError("the validation split is empty: model selection needs validation interactions")
    seen_at_test = sets.train.union(sets.valid).to(device)

    # fused: one kernel for the whole update instead of a dozen passes over every parameter
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)
    use_amp = tc.amp and device.type == "cuda"
    sampling = world.sampling_generator(generator)  # `generator` itself in one process
    step_loss = make_step_loss(world.wrap(model), g, sets, config, sampling)

    metrics_path = run_dir / "metrics.jsonl"
    checkpoint_dir = run_dir / "checkpoint"
    if resume:
        state = load_checkpoint(checkpoint_dir, model, optimizer, generator)
        if world.is_main:
            _truncate_metrics(metrics_path, state.epoch)
    else:
        state = LoopState()
        if world.is_main:
            metrics_path.write_text("")
    start = time.perf_counter() - state.train_seconds
    bar = tqdm(
        range(state.epoch + 1, tc.epochs + 1),
        desc="train",
        unit="epoch",
        initial=state.epoch,
        total=tc.epochs,
        disable=None if progress and world.is_main else True,
        mininterval=1.0,
        dynamic_ncols=True,
    )
    stop = state.waited >= tc.patience
    for epoch in bar:
        if stop:
            break
        model.train()
        t0 = time.perf_counter()
        world.seed_epoch(sampling, tc.seed, epoch)
        order = world.shard(torch.randperm(n_train, generator=generator, device=generator.device).to(device))
        total, steps = torch.zeros((), device=device), 0
        for lo in range(0, order.numel(), tc.batch_size):
            idx = order[lo : lo + tc.batch_size]
            users, pos = train_users[idx], train_items[idx]
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = step_loss(users, pos)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            steps += 1
        epoch_loss = world.mean_loss(total, steps)
        if not math.isfinite(epoch_loss):
            raise KgrecError(f"training diverged at epoch {epoch} (loss {epoch_loss}); lower train.lr")
        state.epoch_times.append(time.perf_counter() - t0)
        state.epoch = epoch

        decay = False
        if (epoch % tc.eval_every == 0 or epoch == tc.epochs) and world.is_main:
            valid = evaluate_sets(model, g, sets.valid, sets.train, ec.ks, ec.batch_size)
            record = {"epoch": epoch, "loss": epoch_loss, "seconds": state.epoch_times[-1], **{f"valid_{k}": v for k, v in valid.items()}}
            with metrics_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            if valid[metric] > state.best_value:
                state.best_epoch, state.best_value, state.best_valid = epoch, valid[metric], valid
                state.waited = 0
                save_weights(model, run_dir / "model.safetensors")
            else:
                state.waited += 1
                decay = state.waited % tc.lr_patience == 0
            bar.set_postfix(loss=f"{epoch_loss:.4f}", **{f"valid_{metric}": f"{valid[metric]:.4f}", "best": state.best_epoch})
            stop = state.waited >= tc.patience
        stop = world.agree(stop)  # rank 0 decided; every process stops at the same epoch
        if tc.lr_decay < 1.0 and world.agree(decay):  # a plateau: smaller steps (kept in the checkpoint)
            for group in optimizer.param_groups:
                group["lr"] *= tc.lr_decay
        state.train_seconds = time.perf_counter() - start
        if world.is_main:
            save_checkpoint(checkpoint_dir, model, optimizer, generator, state)

    world.check_in_sync(model)
    if not world.is_main:  # rank 0 alone selects, tests and writes; the others return its results
        return world.share(None)
    model.load_state_dict(load_file(str(run_dir / "model.safetensors"), device=str(device)))
    valid, item_item = state.best_valid, None
    if model.item_item is not None:  # the blend weight, on validation; saved with the weights
        item_item = select_blend(model, *embeddings(model, g), sets.valid, sets.train, metric, ec.ks, ec.batch_size)
        valid = item_item.pop("valid")
        item_item = {"kind": config.model.item_item, "l2": config.model.item_item_l2, "valid_dot_only": state.best_valid, **item_item}
        save_weights(model, run_dir / "model.safetensors")
    test = evaluate_sets(model, g, sets.test, seen_at_test, ec.ks, ec.batch_size)
    results = {
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "selection_metric": f"valid {metric}",
        "valid": valid,
        "test": test,
        "seconds_per_epoch": sum(state.epoch_times) / max(len(state.epoch_times), 1),
        "train_seconds": time.perf_counter() - start,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "seed": tc.seed,
        "kgrec_version": __version__,
        "torch_version": torch.__version__,
    }
    if item_item is not None:
        results["item_item"] = item_item
    write_json(run_dir / "results.json", results)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the run is complete; weights stay
    return world.share(results)


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drop metric lines written after the checkpoint (the epoch the kill interrupted)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= last_epoch]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in keep))


def write_config(config: ExperimentConfig, run_dir: Path) -> None:
    with atomic_path(run_dir / "config.toml") as tmp:
        dump_toml(config, tmp)
