"""Training a sequential model: next-item prediction over time-ordered histories.

**Order.** A user's history is their interactions sorted by timestamp, ties broken by the
item's position in the catalogue (its index in the built graph, which follows the order items
are first met in the log) -- the same rule :func:`kgrec.eval.splits.split_leave_one_out` uses to
choose the validation and test items, so the history a model reads always ends where the
held-out items begin. ml-100k has many ties (ratings given in the same second): the rule is
deterministic, documented, and the same for every model of a suite.

**Windows.** Each training history is cut from its end into windows of ``max_len + 1`` items
that overlap by one, so every training interaction but a user's first is a target exactly once
per epoch; every position of a window predicts its next item (full softmax over the catalogue).
A batch holds about ``train.batch_size`` targets.

**Selection and test.** After each epoch the model ranks the whole catalogue for the validation
users from their training histories (training items masked); the best validation metric keeps
the weights and drives early stopping, as for the graph models. The test ranking then encodes
training plus validation items (masked, as always at test time); with ``[sequence]
shuffle_test`` that history is shuffled first (the order control). ``model.safetensors`` keeps
the test-time histories, so the run folder recommends from the newest history it knows.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.eval.sets import SplitSets
from kgrec.eval.splits import Split
from kgrec.io import write_json
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.sequential import SequentialRecommender
from kgrec.train.checkpoint import LoopState, load_checkpoint, load_weights, save_checkpoint, save_weights
from kgrec.train.loop import _truncate_metrics, run_summary, score_test
from kgrec.train.progress import EpochProgress, plot_curves
from kgrec.train.step import descend, total_loss


def timed_pairs(pairs: pd.DataFrame, timestamps: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` (user, item) with the ``timestamp`` of each pair taken from ``timestamps``."""
    merged = pairs[["user", "item"]].merge(timestamps[["user", "item", "timestamp"]], on=["user", "item"], how="left")
    if merged["timestamp"].isna().any():
        row = merged[merged["timestamp"].isna()].iloc[0]
        raise KgrecError(f"interaction (user {int(row['user'])}, item {int(row['item'])}) has no timestamp: "
                         "a sequential model needs every interaction's time")
    return merged


def ordered_histories(pairs: pd.DataFrame, num_users: int) -> list[np.ndarray]:
    """Each user's items in time order (ties by item position); ``pairs`` has a ``timestamp``."""
    frame = pairs.sort_values(["user", "timestamp", "item"], kind="stable")
    users = frame["user"].to_numpy()
    items = frame["item"].to_numpy().astype(np.int64)
    bounds = np.searchsorted(users, np.arange(num_users + 1))
    return [items[bounds[u] : bounds[u + 1]] for u in range(num_users)]


def pack_histories(histories: list[np.ndarray], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``([U, max_len], [U])``: each history's last ``max_len`` items, right-padded with 0."""
    packed = np.zeros((len(histories), max_len), dtype=np.int64)
    lengths = np.zeros(len(histories), dtype=np.int64)
    for u, h in enumerate(histories):
        h = h[-max_len:]
        packed[u, : len(h)] = h
        lengths[u] = len(h)
    return torch.from_numpy(packed), torch.from_numpy(lengths)


def shuffled(histories: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """The same items, each history in a seeded random order (the order control)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(h) for h in histories]


def training_windows(histories: list[np.ndarray], max_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(inputs [W, max_len], targets [W, max_len], lengths [W])`` of every training window.

    Windows of ``max_len + 1`` items, cut from the end of each history with a stride of
    ``max_len``; ``targets`` is ``inputs`` shifted by one, -1 at padding.
    """
    inputs, targets, lengths = [], [], []
    for h in histories:
        end = len(h)
        while end >= 2:
            start = max(0, end - max_len - 1)
            w = h[start:end]
            row_in = np.zeros(max_len, dtype=np.int64)
            row_out = np.full(max_len, -1, dtype=np.int64)
            row_in[: len(w) - 1] = w[:-1]
            row_out[: len(w) - 1] = w[1:]
            inputs.append(row_in)
            targets.append(row_out)
            lengths.append(len(w) - 1)
            end = start + 1
            if start == 0:
                break
    if not inputs:
        raise KgrecError("no user has two training interactions: a sequential model has nothing to learn from")
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets)), torch.as_tensor(lengths)


def windows_per_step(batch_size: int, lengths: torch.Tensor) -> int:
    """Windows a step takes so that it holds about ``batch_size`` next-item targets on average.

    A window holds ``length`` targets, fewer than ``max_len`` where a history's first window is
    short (on ml-100k 97,171 targets in 2,412 windows of 50, 40.3 a window): dividing by
    ``max_len`` would give 1,611 targets a step for ``batch_size = 2048``. RecBole's batch of
    2048 is 2048 prefixes, that is 2048 targets.
    """
    return max(1, round(batch_size * len(lengths) / max(int(lengths.sum()), 1)))


def fit_sequences(
    model: SequentialRecommender,
    g: GraphTensors,
    split: Split,
    config: ExperimentConfig,
    run_dir: Path,
    *,
    timestamps: pd.DataFrame,
    device: torch.device,
    generator: torch.Generator,
    progress: bool = True,
    resume: bool = False,
    log=print,
    item_entities: list[frozenset[int]] | None = None,
) -> dict:
    """Train ``model`` on the time-ordered training histories; select on valid, report on test.

    Writes the same run files as :func:`kgrec.train.loop.fit` (``metrics.jsonl``,
    ``model.safetensors``, ``checkpoint/`` while training, ``results.json``, ``curves.png``)
    and returns the results. ``timestamps``: (user, item, timestamp) of every pair of the split.
    """
    tc, ec, sc = config.train, config.eval, config.sequence
    metric = ec.metric
    sets = SplitSets.from_split(split, g.num_users, g.num_items, device)
    if sets.valid.nnz == 0:
        raise KgrecError("the validation split is empty: model selection needs validation interactions")
    train_hist = ordered_histories(timed_pairs(split.train, timestamps), g.num_users)
    test_hist = ordered_histories(timed_pairs(pd.concat([split.train, split.valid]), timestamps), g.num_users)
    if sc.shuffle_test:
        test_hist = shuffled(test_hist, tc.seed)
    valid_packed = pack_histories(train_hist, sc.max_len)
    inputs, targets, lengths = (t.to(device) for t in training_windows(train_hist, sc.max_len))
    per_batch = windows_per_step(tc.batch_size, lengths)
    log(f"sequences: {len(inputs):,} training windows of up to {sc.max_len} items, {int((targets >= 0).sum()):,} "
        f"next-item targets, {per_batch} windows a step")

    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    metrics_path, checkpoint_dir = run_dir / "metrics.jsonl", run_dir / "checkpoint"
    if resume:
        state = load_checkpoint(checkpoint_dir, model, optimizer, generator)
        _truncate_metrics(metrics_path, state.epoch)
    else:
        state = LoopState()
        metrics_path.write_text("")
    start = time.perf_counter() - state.train_seconds
    bar = EpochProgress(state.epoch + 1, tc.epochs, enabled=progress, log=log)
    stop = state.waited >= tc.patience
    for epoch in range(state.epoch + 1, tc.epochs + 1):
        if stop:
            break
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(inputs), generator=generator, device=generator.device).to(device)
        total, sums, steps = 0.0, {}, 0
        for lo in range(0, order.numel(), per_batch):
            idx = order[lo : lo + per_batch]
            terms = model.sequence_loss(g, inputs[idx], targets[idx], lengths[idx])
            loss = total_loss(terms)
            descend(optimizer, loss)
            total += float(loss.detach())
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            steps += 1
        epoch_loss = total / max(steps, 1)
        if not math.isfinite(epoch_loss):
            raise KgrecError(f"training diverged at epoch {epoch} (loss {epoch_loss}); lower train.lr")
        state.epoch_times.append(time.perf_counter() - t0)
        state.epoch = epoch
        if epoch % tc.eval_every == 0 or epoch == tc.epochs:
            model.set_histories(*valid_packed)
            valid = sets.evaluate(model, model.infer(g), "valid", ec.ks, ec.batch_size)
            record = {"epoch": epoch, "loss": epoch_loss, **{f"loss_{k}": v / steps for k, v in sums.items()},
                      "seconds": state.epoch_times[-1], **{f"valid_{k}": v for k, v in valid.items()}}
            with metrics_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            if valid[metric] > state.best_value:
                state.best_epoch, state.best_value, state.best_valid, state.waited = epoch, valid[metric], valid, 0
                save_weights(model, run_dir / "model.safetensors")
            else:
                state.waited += 1
            bar.epoch(epoch, epoch_loss, state.epoch_times, metric, valid[metric], (state.best_epoch, state.best_value))
            stop = state.waited >= tc.patience
        else:
            bar.epoch(epoch, epoch_loss, state.epoch_times)
        state.train_seconds = time.perf_counter() - start
        save_checkpoint(checkpoint_dir, model, optimizer, generator, state)
    bar.close(stopped_early_at=state.epoch if stop else None)

    load_weights(model, run_dir / "model.safetensors", device)
    model.set_histories(*pack_histories(test_hist, sc.max_len))
    save_weights(model, run_dir / "model.safetensors")  # the run ranks from the newest history it knows
    emb = model.infer(g)
    test, details = score_test(model, emb, sets, config, device, item_entities, run_dir)
    results = run_summary(state, metric, state.best_valid, test, start, device, tc.seed)
    results["test_history"] = "shuffled (order control)" if sc.shuffle_test else "train + valid items in time order"
    results["test_details"] = details
    plot_curves(metrics_path, run_dir / "curves.png", metric)
    write_json(run_dir / "results.json", results)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return results


__all__ = ["fit_sequences", "windows_per_step", "ordered_histories", "pack_histories", "shuffled", "timed_pairs", "training_windows"]
