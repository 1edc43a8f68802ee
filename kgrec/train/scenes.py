"""Training and evaluating with scenes (``[scenes] mode``; :mod:`kgrec.models.scenes`).

**Which scene a pair belongs to.** The split is the ordinary one, of unique (user, item) pairs,
so every mode of a suite is judged on the same held-out pairs. A pair that the log shows in
several scenes belongs to the scene of its first interaction (earliest timestamp, then log
order); its other scenes' rows stay in the graph's interaction table but are neither trained
nor scored as that pair again, which keeps train, validation and test disjoint (a pair trained
in one scene and tested in another would be a free hit). ``results.json`` counts them.

**Ranking.** Each validation or test pair is ranked in its own scene, over that scene's
catalogue: the items the log shows in that scene. A scene is a surface that shows its own
items (a music tab shows music), so ranking a film in the music scene would only measure
whether a model learned which items belong where. When scenes share the catalogue this is the
whole catalogue. The user's training items (and, at test, validation items) of every scene are
masked, as in every kgrec evaluation. Metrics are per scene; the pooled figure averages every
(user, scene) query, and model selection uses the mean of the scenes' validation metric, so a
sparse scene counts as much as the largest.

**Modes.** ``global``: one model on every scene's training pairs, scene-blind. ``separate``:
one model per scene on that scene's training pairs and a graph of that scene's training edges
(plus the knowledge graph). ``adapted``, in stages, each kept per scene only where it improves
that scene's validation metric (so on validation it is never worse than the global model):

1. the shared model, trained exactly as the global model (same code, data, seed and selection:
   the same weights);
2. the scene parts (:class:`~kgrec.models.scenes.SceneParts`, zero at the start) on top of it,
   the shared model frozen, with an L2 pull toward zero; each learning rate of
   ``parts_lr`` and weight of ``parts_l2`` is tried. A scene's parts appear only in that
   scene's scores, so training every scene's parts at once is training each on its own scene:
   each scene takes its best (learning rate, L2, epoch) on its own validation, or no parts at all
   (zero: the shared model) when none beats the shared model there;
3. with ``finetune_epochs``, a copy per scene fine-tuned on its scene (what is frozen:
   ``[scenes] freeze``), kept when its scene's validation metric improves.

Training the scene parts together with the shared model from the start (what this module did
first) lost 9-10% NDCG@20 in every scene of ml-100k's simulation against the global model:
Adam moves every zero-initialised adapter entry by about the learning rate at each step
whatever its gradient, nothing regularised the adapters, and the scale moved out of the
L2-regularised ID embeddings (half the global model's norm) into per-scene adapters that
stretched users up to 7.7 times, each fitted on one scene's pairs; validation peaked earlier
and lower. With the shared model frozen at the global one, and each scene's parts kept only
where its validation improves, the parts can only add to it (on validation).

The loss is BPR with one negative per positive, drawn from the positive's scene catalogue,
plus LightGCN's L2 on layer 0 (the KG link-prediction loss of the ordinary loop is not used;
the knowledge edges still take part in propagation). Weights are selected on validation, the
test set is touched once at the end.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.eval.metrics import full_ranking_metrics
from kgrec.eval.splits import Split
from kgrec.graph.container import KnowledgeGraph
from kgrec.graph.useritem import UserItemSets
from kgrec.io import write_json
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.scenes import SceneParts, SceneRecommender
from kgrec.train.checkpoint import LoopState, save_weights
from kgrec.train.loop import run_summary
from kgrec.train.progress import plot_curves
from kgrec.train.step import descend, total_loss

#: Builds the shared model and its training graph: ``build(extra_held_out) -> (model, g)``,
#: where ``extra_held_out`` holds (user, item) pairs to leave out of the graph besides the
#: split's held-out ones (the other scenes' training pairs, for one model per scene).
ModelBuilder = Callable[[pd.DataFrame | None], tuple[torch.nn.Module, GraphTensors]]


def scene_of_pairs(kg: KnowledgeGraph, target_events: list[str] | None = None) -> tuple[pd.DataFrame, int]:
    """``(user, item, scene)`` with each pair's first scene (index into ``kg.scenes``), and how
    many (pair, later scene) rows were set aside because the pair was in an earlier scene."""
    inter = kg.interactions
    if target_events is not None:
        inter = inter[inter["event"].isin(target_events)]
    codes = {name: k for k, name in enumerate(kg.scenes)}
    frame = inter[["user", "item", "timestamp", "scene"]].copy()
    frame["order"] = np.arange(len(frame))
    frame = frame.sort_values(["timestamp", "order"], kind="stable", na_position="last")
    distinct = frame.drop_duplicates(["user", "item", "scene"])
    first = distinct.drop_duplicates(["user", "item"], keep="first")
    pairs = pd.DataFrame(
        {"user": first["user"].to_numpy(np.int64), "item": first["item"].to_numpy(np.int64),
         "scene": first["scene"].map(codes).to_numpy(np.int64)}
    )  # fmt: skip
    return pairs, int(len(distinct) - len(first))


def scene_catalogues(kg: KnowledgeGraph) -> torch.Tensor:
    """``[scenes, items]`` True where the log shows the item in the scene."""
    codes = {name: k for k, name in enumerate(kg.scenes)}
    table = torch.zeros(len(codes), kg.num_items, dtype=torch.bool)
    scenes = torch.as_tensor(kg.interactions["scene"].map(codes).to_numpy(np.int64).copy())
    table[scenes, torch.as_tensor(kg.interactions["item"].to_numpy(np.int64).copy())] = True
    return table


def with_scenes(part: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """A split part (user, item) with each pair's scene."""
    merged = part[["user", "item"]].merge(pairs, on=["user", "item"], how="left")
    if merged["scene"].isna().any():
        raise KgrecError("a pair of the split is not in the graph's interactions; was the split made on another graph?")
    return merged.astype({"scene": np.int64})


class SceneSampler:
    """Negatives for each positive, drawn uniformly from the catalogue of the positive's scene."""

    def __init__(self, catalogues: torch.Tensor, device):
        counts = catalogues.sum(1)
        self.counts = counts.to(device)
        width = int(counts.max())
        table = torch.zeros(catalogues.size(0), width, dtype=torch.long)
        for s in range(catalogues.size(0)):
            items = torch.nonzero(catalogues[s]).flatten()
            table[s, : items.numel()] = items
        self.table = table.to(device)

    def __call__(self, scenes: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        draw = torch.rand(scenes.numel(), n, generator=generator, device=generator.device).to(scenes.device)
        picks = (draw * self.counts[scenes].unsqueeze(1)).long()
        return self.table[scenes.unsqueeze(1), picks]


def scene_metrics(
    model: SceneRecommender, emb, truth: pd.DataFrame, exclude: UserItemSets, catalogues: torch.Tensor,
    scenes: list[int], ks, batch_size: int, num_users: int,
) -> dict[int, dict[str, float]]:
    """Full-ranking metrics of each scene in ``scenes``: its ``truth`` pairs ranked over its catalogue."""
    out = {}
    for s in scenes:
        part = truth[truth["scene"] == s]
        sets = UserItemSets.from_pairs(part["user"].to_numpy(), part["item"].to_numpy(), num_users, catalogues.size(1))
        outside = ~catalogues[s]

        def score(users, s=s, outside=outside):
            scores = model.scene_scores(users, s, emb)
            return scores.masked_fill(outside.to(scores.device), -math.inf)

        with torch.inference_mode():
            out[s] = full_ranking_metrics(score, sets.to(exclude.indptr.device), exclude, ks=ks, batch_size=batch_size)
    return out


def pooled(per_scene: dict[int, dict[str, float]]) -> dict[str, float]:
    """Every (user, scene) query counted once: the scenes' metrics weighted by their users."""
    total = sum(m["num_users"] for m in per_scene.values())
    keys = [k for k in next(iter(per_scene.values())) if k != "num_users"]
    result = {k: sum(m[k] * m["num_users"] for m in per_scene.values()) / max(total, 1) for k in keys}
    result["num_users"] = total
    return result


def _tensors(frame: pd.DataFrame, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(users, items, scenes)`` of a (user, item, scene) frame, on ``device``."""
    return tuple(torch.as_tensor(frame[c].to_numpy(np.int64).copy(), device=device) for c in ("user", "item", "scene"))


def _frozen_embeddings(model: SceneRecommender, g: GraphTensors):
    """The shared model's embeddings, computed once (evaluation mode, no autograd), when none of
    its weights train; None when some do (they are then computed per batch)."""
    if any(p.requires_grad for p in model.base.parameters()):
        return None
    model.base.eval()
    with torch.no_grad():
        return model.base.encode(g)


def _epoch(
    model: SceneRecommender, g: GraphTensors, data, optimizer, *, config: ExperimentConfig, sampler: SceneSampler,
    generator: torch.Generator, emb=None, parts_l2: float = 0.0,
) -> float:
    """One pass over ``data`` (users, items, scenes) in shuffled batches; the mean loss."""
    tc = config.train
    users, items, scenes = data
    model.train()
    order = torch.randperm(users.numel(), generator=generator, device=generator.device).to(users.device)
    total, steps = 0.0, 0
    for lo in range(0, order.numel(), tc.batch_size):
        idx = order[lo : lo + tc.batch_size]
        negatives = sampler(scenes[idx], tc.num_negatives, generator)
        terms = model.loss(users[idx], items[idx], negatives, scenes[idx], emb if emb is not None else model.encode(g), parts_l2)
        loss = total_loss(terms)
        descend(optimizer, loss)
        total += float(loss.detach())
        steps += 1
    loss = total / max(steps, 1)
    if not math.isfinite(loss):
        raise KgrecError(f"training diverged (loss {loss}); lower the learning rate")
    return loss


def _train(
    model: SceneRecommender, g: GraphTensors, train: pd.DataFrame, validate: Callable[[], float],
    params: list, *, epochs: int, lr: float, config: ExperimentConfig, sampler: SceneSampler,
    generator: torch.Generator, device, on_epoch: Callable[[dict], None] | None = None,
    initial: float = -math.inf,
) -> LoopState:
    """Train ``params`` of ``model`` on ``train`` (user, item, scene); keep the weights with the
    best ``validate()`` (``initial``: the value to beat, that of the weights as given)."""
    tc = config.train
    state = LoopState(best_epoch=0 if initial > -math.inf else -1, best_value=initial)
    best = copy.deepcopy(model.state_dict()) if initial > -math.inf else None
    data = _tensors(train, device)
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=tc.weight_decay)
    emb = _frozen_embeddings(model, g)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        epoch_loss = _epoch(model, g, data, optimizer, config=config, sampler=sampler, generator=generator, emb=emb)
        state.epoch_times.append(time.perf_counter() - t0)
        state.epoch = epoch
        if epoch % tc.eval_every == 0 or epoch == epochs:
            value = validate()
            if on_epoch is not None:
                on_epoch({"epoch": epoch, "loss": epoch_loss, "seconds": state.epoch_times[-1], "valid": value})
            if value > state.best_value:
                state.best_epoch, state.best_value, state.waited = epoch, value, 0
                best = copy.deepcopy(model.state_dict())
            else:
                state.waited += 1
                if state.waited >= tc.patience:
                    break
    if best is not None:
        model.load_state_dict(best)
    return state


def _fit_parts(
    model: SceneRecommender, g: GraphTensors, train: pd.DataFrame, validate: Callable[[], dict[int, float]],
    baseline: dict[int, float], *, config: ExperimentConfig, sampler: SceneSampler, generator: torch.Generator,
    device, on_epoch: Callable[[dict], None] | None = None,
) -> tuple[dict[int, dict], list[float]]:
    """Stage two of the adapted model: its scene parts on the frozen shared model.

    For each learning rate of ``scenes.parts_lr`` and L2 weight of ``scenes.parts_l2`` the parts
    start at zero and train on every scene's pairs (at most ``scenes.parts_epochs`` epochs; the
    run stops once no scene's validation improved for ``train.patience`` evaluations). A
    scene's parts only enter its own scores, so each scene keeps its own best (learning rate,
    L2, epoch), when that beats ``baseline`` (the shared model's validation there); the others
    keep zero parts. Returns each scene's choice and the epochs' times.
    """
    sc, tc = config.scenes, config.train
    parts = model.parts
    trainable = [p.requires_grad for p in model.base.parameters()]
    for p in model.base.parameters():
        p.requires_grad_(False)
    emb = _frozen_embeddings(model, g)
    data = _tensors(train, device)
    chosen = {s: {"kept": False, "valid_shared": v, "valid": v} for s, v in baseline.items()}
    kept: dict[int, list[torch.Tensor]] = {}
    times = []
    for lr in sc.parts_lr:
        for l2 in sc.parts_l2:
            parts.reset()
            optimizer = torch.optim.Adam(parts.parameters(), lr=lr)
            run_best = {s: -math.inf for s in baseline}
            waited = 0
            for epoch in range(1, sc.parts_epochs + 1):
                t0 = time.perf_counter()
                loss = _epoch(model, g, data, optimizer, config=config, sampler=sampler, generator=generator, emb=emb, parts_l2=l2)
                times.append(time.perf_counter() - t0)
                if epoch % tc.eval_every and epoch != sc.parts_epochs:
                    continue
                values = validate()
                if on_epoch is not None:
                    on_epoch({"epoch": epoch, "loss": loss, "seconds": times[-1], "valid": float(np.mean(list(values.values()))),
                              "lr": lr, "l2": l2, "scenes": values})  # fmt: skip
                improved = False
                for s, value in values.items():
                    if value > run_best[s]:
                        run_best[s], improved = value, True
                    if value > chosen[s]["valid"]:
                        chosen[s].update(kept=True, valid=value, lr=lr, l2=l2, epoch=epoch)
                        kept[s] = parts.scene_state(s)
                waited = 0 if improved else waited + 1
                if waited >= tc.patience:
                    break
    parts.reset()
    for s, state in kept.items():
        parts.load_scene(s, state)
    for p, flag in zip(model.base.parameters(), trainable):
        p.requires_grad_(flag)
    return chosen, times


def fit_scenes(
    kg: KnowledgeGraph,
    split: Split,
    config: ExperimentConfig,
    run_dir: Path,
    build: ModelBuilder,
    *,
    device,
    generator: torch.Generator,
    log=print,
) -> dict:
    """Train the ``[scenes] mode`` model(s), select on validation, score the test set per scene.

    Writes ``metrics.jsonl`` (per evaluated epoch of the shared model: loss and the validation
    metric, the mean over scenes), ``scene_metrics.jsonl`` (the same for the scene parts, with
    each scene's value, for per-scene models and for fine-tuning), ``model.safetensors`` (the
    shared model's weights; with ``separate``, the first scene's model), ``scenes.safetensors``
    (every model's weights: scene parts, fine-tuned copies, per-scene models), ``results.json``
    and ``curves.png``; returns the results.
    """
    sc, ec, tc = config.scenes, config.eval, config.train
    names = kg.scenes
    metric = ec.metric
    pairs, set_aside = scene_of_pairs(kg, tc.target_events)
    train, valid, test = (with_scenes(p, pairs) for p in (split.train, split.valid, split.test))
    catalogues = scene_catalogues(kg)
    sampler = SceneSampler(catalogues, device)
    train_sets = UserItemSets.from_pairs(train["user"].to_numpy(), train["item"].to_numpy(), kg.num_users, kg.num_items).to(device)
    valid_sets = UserItemSets.from_pairs(valid["user"].to_numpy(), valid["item"].to_numpy(), kg.num_users, kg.num_items).to(device)
    seen_at_test = train_sets.union(valid_sets).to(device)
    counts = {
        names[s]: {"train": int((train["scene"] == s).sum()), "valid": int((valid["scene"] == s).sum()),
                   "test": int((test["scene"] == s).sum()), "catalogue": int(catalogues[s].sum())}
        for s in range(len(names))
    }  # fmt: skip
    empty = [n for n, c in counts.items() if c["train"] == 0 or c["valid"] == 0]
    if empty:
        raise KgrecError(f"scene {empty[0]!r} has no training or no validation pairs in this split; it cannot be trained or selected")
    log(f"scenes ({sc.mode}): " + ", ".join(f"{n} {c['train']:,}/{c['valid']:,}/{c['test']:,}" for n, c in counts.items())
        + " train/valid/test pairs" + (f"; {set_aside:,} repeats of a pair in a later scene set aside" if set_aside else ""))

    metrics_path, stages_path = run_dir / "metrics.jsonl", run_dir / "scene_metrics.jsonl"
    metrics_path.write_text("")
    stages_path.write_text("")

    def record(stage: str):
        # the shared model's epochs in metrics.jsonl (curves, suite plots); per-scene models and
        # fine-tuning, whose epochs restart per scene, in scene_metrics.jsonl
        path = metrics_path if stage == "shared" else stages_path

        def write(line: dict) -> None:
            extra = {k: line[k] for k in ("lr", "l2") if k in line}
            if "scenes" in line:
                extra["valid_scenes"] = {names[s]: v for s, v in line["scenes"].items()}
            line = {"epoch": line["epoch"], "loss": line["loss"], "seconds": line["seconds"], f"valid_{metric}": line["valid"],
                    "stage": stage, **extra}  # fmt: skip
            with path.open("a") as fh:
                fh.write(json.dumps(line) + "\n")
            log(f"  {stage} epoch {line['epoch']}: loss {line['loss']:.4f}, valid {metric} {line[f'valid_{metric}']:.4f}")
        return write

    def evaluate(model, emb, truth, exclude, scenes):
        return scene_metrics(model, emb, truth, exclude, catalogues, scenes, ec.ks, ec.batch_size, kg.num_users)

    def mean_valid(model, g, scenes):
        def value() -> float:
            per = evaluate(model, model.infer(g), valid, train_sets, scenes)
            return float(np.mean([m[metric] for m in per.values()]))
        return value

    def valid_per_scene(model, emb):
        def values() -> dict[int, float]:
            return {s: m[metric] for s, m in evaluate(model, emb, valid, train_sets, all_scenes).items()}
        return values

    start = time.perf_counter()
    all_scenes = list(range(len(names)))
    weights: dict[str, torch.Tensor] = {}
    finetuned: dict[str, dict] = {}
    parts_chosen: dict[str, dict] = {}
    if sc.mode == "separate":
        per_valid, per_test, states = {}, {}, []
        for s in all_scenes:
            others = train[train["scene"] != s][["user", "item"]]
            base, g = build(others)
            model = SceneRecommender(base).to(device)
            state = _train(model, g, train[train["scene"] == s], mean_valid(model, g, [s]), list(model.parameters()),
                           epochs=tc.epochs, lr=tc.lr, config=config, sampler=sampler, generator=generator, device=device,
                           on_epoch=record(f"scene {names[s]}"))  # fmt: skip
            emb = model.infer(g)
            per_valid.update(evaluate(model, emb, valid, train_sets, [s]))
            per_test.update(evaluate(model, emb, test, seen_at_test, [s]))
            states.append(state)
            weights.update({f"{names[s]}.{k}": v for k, v in model.base.state_dict().items()})
            if s == 0:
                save_weights(model.base, run_dir / "model.safetensors")
        state = LoopState(
            epoch=max(st.epoch for st in states), best_epoch=round(float(np.mean([st.best_epoch for st in states]))),
            best_value=float(np.mean([per_valid[s][metric] for s in all_scenes])),
            epoch_times=[t for st in states for t in st.epoch_times],
        )  # fmt: skip
    else:
        # global, and the adapted model's shared part: the same training, so the same weights
        base, g = build(None)
        model = SceneRecommender(base).to(device)
        state = _train(model, g, train, mean_valid(model, g, all_scenes), list(model.parameters()), epochs=tc.epochs,
                       lr=tc.lr, config=config, sampler=sampler, generator=generator, device=device, on_epoch=record("shared"))  # fmt: skip
        save_weights(model.base, run_dir / "model.safetensors")
        per_valid = evaluate(model, model.infer(g), valid, train_sets, all_scenes)
        if sc.mode == "adapted":
            model.parts = SceneParts(len(names), config.model.dim, kg.num_items, sc.item_bias).to(device)
            if sc.parts_epochs > 0:
                shared_emb = model.infer(g)
                chosen, times = _fit_parts(
                    model, g, train, valid_per_scene(model, shared_emb), {s: per_valid[s][metric] for s in all_scenes},
                    config=config, sampler=sampler, generator=generator, device=device, on_epoch=record("scene parts"),
                )  # fmt: skip
                state.epoch_times += times
                parts_chosen = {names[s]: c for s, c in chosen.items()}
                log("scene parts: " + ", ".join(
                    f"{names[s]} " + (f"kept (lr {c['lr']:g}, l2 {c['l2']:g}, epoch {c['epoch']}; valid {c['valid_shared']:.4f} -> {c['valid']:.4f})"
                                      if c["kept"] else f"none (the shared model's valid {c['valid_shared']:.4f} not beaten)")
                    for s, c in chosen.items()))  # fmt: skip
                per_valid = evaluate(model, model.infer(g), valid, train_sets, all_scenes)
        weights.update({f"shared.{k}": v for k, v in model.state_dict().items()})
        emb = model.infer(g)
        per_test = evaluate(model, emb, test, seen_at_test, all_scenes)
        if sc.mode == "adapted" and sc.finetune_epochs > 0:
            for s in all_scenes:
                copy_ = model.clone()
                params = copy_.freeze(sc.freeze)
                tuned = _train(copy_, g, train[train["scene"] == s], mean_valid(copy_, g, [s]), params,
                               epochs=sc.finetune_epochs, lr=sc.finetune_lr, config=config, sampler=sampler,
                               generator=generator, device=device, on_epoch=record(f"fine-tune {names[s]}"),
                               initial=per_valid[s][metric])  # fmt: skip
                finetuned[names[s]] = {"best_epoch": tuned.best_epoch, "epochs_run": tuned.epoch,
                                       "valid_before": per_valid[s][metric], "valid_after": tuned.best_value}
                if tuned.best_epoch > 0:  # fine-tuning improved this scene's validation
                    emb_s = copy_.infer(g)
                    per_valid.update(evaluate(copy_, emb_s, valid, train_sets, [s]))
                    per_test.update(evaluate(copy_, emb_s, test, seen_at_test, [s]))
                    weights.update({f"finetuned.{names[s]}.{k}": v for k, v in copy_.state_dict().items()})
                state.epoch_times += tuned.epoch_times

    save_weights(_Tensors(weights), run_dir / "scenes.safetensors")
    state.train_seconds = time.perf_counter() - start
    results = run_summary(state, metric, pooled(per_valid), pooled(per_test), start, device, tc.seed)
    results["selection_metric"] = f"valid {metric}, mean over scenes"
    results["valid_scenes"] = {names[s]: m for s, m in sorted(per_valid.items())}
    results["test_scenes"] = {names[s]: m for s, m in sorted(per_test.items())}
    results["scenes"] = {
        "mode": sc.mode, "pairs": counts, "repeats_set_aside": set_aside,
        "ranking": "each pair in its own scene, over the scene's catalogue",
        **({"item_bias": sc.item_bias, "parts_epochs": sc.parts_epochs, "parts_lr": sc.parts_lr, "parts_l2": sc.parts_l2,
            "parts": parts_chosen} if sc.mode == "adapted" else {}),
        **({"freeze": sc.freeze, "finetune_epochs": sc.finetune_epochs, "finetuned": finetuned} if finetuned else {}),
    }  # fmt: skip
    plot_curves(metrics_path, run_dir / "curves.png", metric)
    write_json(run_dir / "results.json", results)
    return results


class _Tensors(torch.nn.Module):
    """A flat name -> tensor mapping, saved like a model's weights."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        self._tensors = tensors

    def state_dict(self, *args, **kwargs):  # noqa: D102 - what save_weights reads
        return self._tensors


__all__ = ["SceneSampler", "fit_scenes", "pooled", "scene_catalogues", "scene_metrics", "scene_of_pairs", "with_scenes"]
