"""The training loop: link-prediction self-supervision with early stopping on validation.

One epoch walks over the training user-item pairs in shuffled mini-batches. Each step
(:mod:`kgrec.train.step`) draws the batch's negatives (and knowledge triples), encodes -- over
the whole training graph, or over the batch's sampled neighbourhood -- and back-propagates the
sum of the model's own loss terms (:meth:`Recommender.loss <kgrec.models.base.Recommender.loss>`).
After every ``eval_every`` epochs the model ranks all items for the validation users; the best
validation metric decides the kept weights and early stopping. With an item-item view, its
blend weight is chosen on validation after training (:mod:`kgrec.train.blend`). The test set is
touched once, at the end, with the selected weights.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import torch

from kgrec.train.content import fit_cold_start_content
from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.eval.beyond import evaluation_details
from kgrec.eval.paired import write_per_user
from kgrec.eval.sets import SplitSets
from kgrec.eval.splits import Split
from kgrec.io import atomic_path, write_json
from kgrec.models.base import Recommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.train.blend import select_blend
from kgrec.train.checkpoint import LoopState, load_checkpoint, load_weights, save_checkpoint, save_weights
from kgrec.train.distributed import World
from kgrec.train.progress import EpochProgress, TensorBoardLog, plot_curves
from kgrec.train.step import descend, make_step, total_loss
from kgrec.version import __version__


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
    log=print,
    item_entities: list[frozenset[int]] | None = None,
    item_texts: list[str | None] | None = None,
) -> dict:
    """Train ``model`` on ``split.train``, select on ``split.valid``, report on ``split.test``.

    Writes ``metrics.jsonl`` (one line per evaluated epoch: the mean loss and each of its terms,
    the validation metrics), ``model.safetensors`` (the weights selected so far, rewritten at
    every improvement), ``checkpoint/`` (after every epoch, removed at the end) and
    ``results.json`` into ``run_dir``, and returns the results. With ``resume`` the loop
    continues from ``checkpoint/``. With a ``world`` of several processes (torchrun) the model
    trains as a DDP replica on this process's share of each epoch, and rank 0 alone evaluates
    and writes (:mod:`kgrec.train.distributed`). Progress: a bar on a terminal, one ``log`` line
    per evaluated epoch otherwise (:mod:`kgrec.train.progress`); ``curves.png`` at the end.
    ``results.json`` also holds the test set beyond accuracy and by group
    (:func:`kgrec.eval.beyond.evaluation_details`; ILD by ``item_entities`` when given).
    ``item_texts`` (each trained item's text) is what ``[text] tune`` trains the encoder on.

    ``config`` is expected to be checked already (:func:`kgrec.experiment.check_experiment`).
    """
    tc, ec = config.train, config.eval
    world = world or World(device=device)
    metric = ec.metric
    sets = SplitSets.from_split(split, g.num_users, g.num_items, device)
    train_users, train_items = sets.train.pairs()
    n_train = train_users.numel()
    if n_train == 0:
        raise KgrecError("the training split is empty: nothing to learn from")
    if sets.valid.nnz == 0:
        raise KgrecError("the validation split is empty: model selection needs validation interactions")

    # fused: one kernel for the whole update instead of a dozen passes over every parameter
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)
    use_amp = tc.amp and device.type == "cuda"
    sampling = world.sampling_generator(generator)  # `generator` itself in one process
    step = make_step(model, world.wrap(model), g, sets, config, sampling)

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
    bar = EpochProgress(state.epoch + 1, tc.epochs, enabled=progress and world.is_main, log=log)
    board = TensorBoardLog(run_dir / "tensorboard") if tc.tensorboard and world.is_main else None
    stop = state.waited >= tc.patience
    for epoch in range(state.epoch + 1, tc.epochs + 1):
        if stop:
            break
        model.train()
        model.start_epoch()
        t0 = time.perf_counter()
        world.seed_epoch(sampling, tc.seed, epoch)
        order = world.shard(torch.randperm(n_train, generator=generator, device=generator.device).to(device))
        total, sums, steps = torch.zeros((), device=device), {}, 0
        for lo in range(0, order.numel(), tc.batch_size):
            idx = order[lo : lo + tc.batch_size]
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                terms = step(train_users[idx], train_items[idx])
                loss = total_loss(terms)
            descend(optimizer, loss)
            total += loss.detach()
            for name, value in terms.items():  # summed on the device, read once per epoch
                sums[name] = sums.get(name, 0.0) + value.detach().float()
            steps += 1
        epoch_loss = world.mean_loss(total, steps)
        if not math.isfinite(epoch_loss):
            raise KgrecError(f"training diverged at epoch {epoch} (loss {epoch_loss}); lower train.lr")
        term_means = {f"loss_{name}": world.mean_loss(value, steps) for name, value in sums.items()}
        state.epoch_times.append(time.perf_counter() - t0)
        state.epoch = epoch

        decay = False
        if (epoch % tc.eval_every == 0 or epoch == tc.epochs) and world.is_main:
            valid = sets.evaluate(model, model.infer(g), "valid", ec.ks, ec.batch_size)
            record = {"epoch": epoch, "loss": epoch_loss, **term_means, "seconds": state.epoch_times[-1]}
            record.update({f"valid_{k}": v for k, v in valid.items()})
            with metrics_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            if board is not None:
                board.record(record)
            if valid[metric] > state.best_value:
                state.best_epoch, state.best_value, state.best_valid = epoch, valid[metric], valid
                state.waited = 0
                save_weights(model, run_dir / "model.safetensors")
            else:
                state.waited += 1
                decay = state.waited % tc.lr_patience == 0
            bar.epoch(epoch, epoch_loss, state.epoch_times, metric, valid[metric], (state.best_epoch, state.best_value))
            stop = state.waited >= tc.patience
        elif world.is_main:
            bar.epoch(epoch, epoch_loss, state.epoch_times)
        stop = world.agree(stop)  # rank 0 decided; every process stops at the same epoch
        if tc.lr_decay < 1.0 and world.agree(decay):  # a plateau: smaller steps (kept in the checkpoint)
            for group in optimizer.param_groups:
                group["lr"] *= tc.lr_decay
        state.train_seconds = time.perf_counter() - start
        if world.is_main:
            save_checkpoint(checkpoint_dir, model, optimizer, generator, state)

    bar.close(stopped_early_at=state.epoch if stop else None)
    if board is not None:
        board.close()
    world.check_in_sync(model)
    if not world.is_main:  # rank 0 alone selects, tests and writes; the others return its results
        return world.share(None)
    load_weights(model, run_dir / "model.safetensors", device)
    emb = model.infer(g)  # the blend weight below changes scores, not embeddings
    valid, item_item = state.best_valid, None
    if model.item_item is not None:  # the blend weight, on validation; saved with the weights
        item_item = select_blend(model, emb, sets.valid, sets.train, metric, ec.ks, ec.batch_size)
        valid = item_item.pop("valid")
        item_item = {"kind": config.model.item_item, "l2": config.model.item_item_l2, "valid_dot_only": state.best_valid, **item_item}
        save_weights(model, run_dir / "model.safetensors")
    test, details = score_test(model, emb, sets, config, device, item_entities, run_dir)
    results = run_summary(state, metric, valid, test, start, device, tc.seed)
    if item_item is not None:
        results["item_item"] = item_item
    content = fit_cold_start_content(model, g, emb, split, config, run_dir, log, item_texts)
    if content is not None:
        results["content_model"] = content
    results["test_details"] = details
    plot_curves(metrics_path, run_dir / "curves.png", metric)
    write_json(run_dir / "results.json", results)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the run is complete; weights stay
    return world.share(results)


def score_test(
    model: Recommender, emb, sets: SplitSets, config: ExperimentConfig, device, item_entities=None, run_dir: Path | None = None
) -> tuple[dict, dict]:
    """The test set, scored once: ``(metrics, details beyond accuracy and by group)``; with
    ``run_dir``, the per-user metrics are kept there too (:mod:`kgrec.eval.paired`)."""
    ec = config.eval
    test, per_user = sets.evaluate(model, emb, "test", ec.ks, ec.batch_size, return_per_user=True)
    if run_dir is not None:
        write_per_user(per_user, run_dir)
    truth, masked = sets.truth_and_mask("test")
    details = evaluation_details(
        lambda users: model.full_scores(users.to(device), emb), truth, masked, sets.train, ec.ks, ec.batch_size,
        entities=item_entities, per_user=per_user,
    )  # fmt: skip
    return test, details


def run_summary(state: LoopState, metric: str, valid: dict, test: dict, start: float, device, seed: int) -> dict:
    """The head of ``results.json``: selection, metrics, timing and versions."""
    return {
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "selection_metric": f"valid {metric}",
        "valid": valid,
        "test": test,
        "seconds_per_epoch": sum(state.epoch_times) / max(len(state.epoch_times), 1),
        "train_seconds": time.perf_counter() - start,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "seed": seed,
        "kgrec_version": __version__,
        "torch_version": torch.__version__,
    }


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drop metric lines written after the checkpoint (the epoch the kill interrupted)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= last_epoch]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in keep))
