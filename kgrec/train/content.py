"""Distilling the run's content model after training (:mod:`kgrec.models.content` says why).

The last step of a training run (:func:`fit_cold_start_content`, called by the training loop
once the weights are selected): the trained model is the teacher, the content model the
student; the held-out tenth of the warm items chooses when to stop.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.models.base import Embeddings, Recommender
from kgrec.models.content import ContentInputs, ContentModel, knowledge_links, neighbour_means, save_content_model, warm_item_inputs
from kgrec.models.graph_tensors import GraphTensors
from kgrec.train.step import descend

#: Fewest optimiser steps per distillation epoch.
MIN_STEPS = 8


@dataclass
class ContentSettings:
    """How the content model is distilled (``[coldstart]`` in the experiment config)."""

    hidden: int = 256
    epochs: int = 200
    lr: float = 1e-3
    ranking_weight: float = 30.0
    users_per_step: int = 512
    items_per_step: int = 256
    patience: int = 20
    holdout: float = 0.1
    seed: int = 2024
    #: Warm items' KG-neighbour inputs from the cold propagation (:func:`cold_views`), as a
    #: new item has them; False: the neighbours' trained embeddings (kgrec before 2026-12-07).
    cold_neighbours: bool = True
    #: Whether the content model reads the KG neighbours and the propagated vector besides the text.
    kg_inputs: bool = True
    #: After the held-out items have chosen the number of epochs, train a new content model on
    #: every warm item for that many epochs (with a frozen text encoder only).
    refit: bool = False


#: The warm items are made cold in this many disjoint groups to compute their propagated inputs.
COLD_GROUPS = 10


@torch.no_grad()
def cold_views(model: Recommender, g: GraphTensors, seed: int, groups: int = COLD_GROUPS) -> tuple[Tensor, Tensor]:
    """``(propagated, neighbours)``, each ``[items, d]``: each trained item as a new item sees itself.

    The items are split into ``groups`` random disjoint groups; for each, the graph loses the
    group's user-item edges, the group's layer 0 becomes what a new item gets (its text
    projection plus the mean item ID embedding), and the encoder propagates once. So each item
    is seen as a new item is, among a catalogue nine tenths intact, at ``groups`` passes in all.

    * ``propagated``: the item's own row of that propagation;
    * ``neighbours``: the mean of its knowledge-graph neighbours' rows *of the same
      propagation*. Why not their trained embeddings: an entity's trained embedding carries the
      interactions of every item it links to, this one included, which a new item's entities
      never do. A content model trained on those learned to lean on its own item's users seen
      through the KG; its held-out check looked far better than the cold items it was for
      (issue 15: validation recall@20 0.23-0.28 against 0.03-0.07 on truly new items).
    """
    u, n = g.num_users, g.num_items
    x0 = model.layer0(g)
    new0 = model.mean_id(u, u + n).to(x0.device).expand(n, -1).clone()
    if g.features is not None:
        text = model.text_input(g.features[u : u + n].to(x0.device))
        if g.has_text is not None:
            text = text * g.has_text[u : u + n].to(x0.device).unsqueeze(1)
        new0 = new0 + text
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    src, dst = g.edge_index[0].cpu(), g.edge_index[1].cpu()
    kg_item, kg_node = knowledge_links(g, x0.device)
    propagated: Tensor | None = None  # the encoder's output width (KGAT concatenates its layers)
    neighbours: Tensor | None = None
    for chunk in perm.chunk(min(groups, n)):
        cold = torch.zeros(g.num_nodes, dtype=torch.bool)
        cold[u + chunk] = True
        drop = (cold[src] & (dst < u)) | (cold[dst] & (src < u))
        keep = (~drop).nonzero(as_tuple=True)[0].to(g.edge_index.device)
        g_cold = dataclasses.replace(g, edge_index=g.edge_index[:, keep], edge_type=g.edge_type[keep])
        x = x0.clone()
        x[u + chunk.to(x.device)] = new0[chunk.to(x.device)]
        out = model.propagate(g_cold, x).float()
        means, _ = neighbour_means(out, kg_item, kg_node, n)
        if propagated is None:
            propagated, neighbours = out.new_zeros(n, out.size(1)), out.new_zeros(n, out.size(1))
        rows = chunk.to(out.device)
        propagated[rows] = out[u + rows]
        neighbours[rows] = means[rows]
    assert propagated is not None and neighbours is not None
    return propagated, neighbours


def fit_content_model(
    model: Recommender,
    g: GraphTensors,
    emb: Embeddings,
    train_items: Tensor,
    settings: ContentSettings,
    train_pairs: tuple[np.ndarray, np.ndarray],
    log=print,
    *,
    text_module=None,
    item_texts: list[str | None] | None = None,
    text_lr: float = 1e-4,
) -> tuple[ContentModel, dict]:
    """Distil a :class:`ContentModel` from the trained ``model``; returns it and a report.

    Args:
        model, g, emb: the trained model, its training graph and its embeddings (``infer``).
        train_items: item positions with at least one training interaction (the warm items
            whose trained embeddings the teacher's scores rest on).
        train_pairs: ``(users, items)`` of the training interactions, for the held-out items'
            pseudo-cold check (:func:`pseudo_cold_metrics`).
        text_module, item_texts, text_lr: a :class:`~kgrec.text.tuning.TunedText` trained with
            the student (``[text] tune``), the warm items' texts it encodes, its learning rate.
    """
    t0 = time.perf_counter()
    device = emb.final.device
    z = emb.final.float().clone()  # ``infer`` gives inference tensors, which autograd cannot save
    inputs = warm_item_inputs(g, z)
    if inputs.text is None and int((inputs.degree > 0).sum()) == 0:
        raise KgrecError("the run has neither text features nor knowledge edges: a content model has nothing to learn from")
    kg_inputs = settings.kg_inputs
    if not kg_inputs and inputs.text is None:
        log('coldstart.inputs = "text", but the run has no text features: the content model reads the knowledge graph')
        kg_inputs = True
    if kg_inputs:  # a text-only student reads neither, so the cold propagations are not paid for
        propagated, neighbours = cold_views(model, g, settings.seed)
        inputs.propagated = propagated.detach().clone()
        if settings.cold_neighbours:  # what a new item's entities look like, not the trained ones
            inputs.neighbours = neighbours.detach().clone().to(inputs.neighbours.dtype)
    gen = torch.Generator().manual_seed(settings.seed)
    items = train_items[torch.randperm(train_items.numel(), generator=gen)].to(device)
    n_valid = max(1, int(round(settings.holdout * items.numel())))
    if items.numel() - n_valid < 2:
        raise KgrecError(f"a content model needs at least 3 items with training interactions, the run has {items.numel()}")
    valid_items, fit_items = items[:n_valid], items[n_valid:]
    num_users = g.num_users

    def teacher(users: Tensor, cols: Tensor) -> Tensor:
        with torch.no_grad():
            return model.full_scores(users, emb)[:, cols].float()

    # the scale of the teacher's scores, on a fixed sample (the loss is in its units)
    probe_users = torch.randperm(num_users, generator=gen)[: min(num_users, 2048)].to(device)
    probe = teacher(probe_users, fit_items)
    mean, std = float(probe.mean()), float(probe.std().clamp(min=1e-6))
    var = std * std

    def new_student() -> ContentModel:
        return ContentModel(inputs.text.size(1) if inputs.text is not None else 0, z.size(1), settings.hidden, kg=kg_inputs).to(device)

    student = new_student()
    groups = [{"params": list(student.parameters()), "lr": settings.lr}]
    if text_module is not None:
        if inputs.text is None or item_texts is None:
            raise KgrecError("text.tune needs the run's text features and the items' texts")
        groups.append({"params": list(text_module.trainable().values()), "lr": text_lr})
        text_module.train()
    optimizer = torch.optim.Adam(groups)
    user_table = z[:num_users]

    def rows_of(cols: Tensor) -> ContentInputs:
        rows = inputs.rows(cols)
        if text_module is not None:  # the tuned encoder, with gradients
            rows.text = text_module([item_texts[i] for i in cols.tolist()]) * rows.has_text.unsqueeze(1)
        return rows

    def eval_inputs() -> ContentInputs:
        """``inputs`` with the held-out items' text from the tuned encoder as it is now."""
        if text_module is None:
            return inputs
        text = inputs.text.clone()
        idx = valid_items.tolist()
        text[valid_items] = text_module.encode([item_texts[i] for i in idx]).to(text) * inputs.has_text[valid_items].unsqueeze(1)
        return ContentInputs(text, inputs.has_text, inputs.neighbours, inputs.degree, inputs.propagated)

    def snapshot() -> dict:
        state = {f"student.{k}": v.detach().clone() for k, v in student.state_dict().items()}
        if text_module is not None:
            state.update({f"text.{k}": v.detach().clone() for k, v in text_module.trainable().items()})
        return state

    def restore(state: dict) -> None:
        student.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("student.")})
        if text_module is not None:
            text_module.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("text.")}, strict=False)

    def loss_of(users: Tensor, cols: Tensor) -> Tensor:
        target = teacher(users, cols)
        pred = user_table[users] @ student(rows_of(cols)).t()
        mse = ((pred - target) ** 2).mean() / var
        if settings.ranking_weight == 0:
            return mse
        log_p = torch.log_softmax(pred / std, dim=1)
        q = torch.softmax(target / std, dim=1)
        kl = (q * (torch.log(q.clamp(min=1e-12)) - log_p)).sum(1).mean()
        return mse + settings.ranking_weight * kl

    def valid_loss() -> float:
        student.eval()
        with torch.no_grad():
            total = 0.0
            chunks = probe_users.split(512)
            for users in chunks:
                total += float(loss_of(users, valid_items))
        student.train()
        return total / len(chunks)

    def train_epoch(pool: Tensor) -> None:
        """A pass over ``pool``'s items, and at least MIN_STEPS steps (a small catalogue is one batch)."""
        batches = []
        while len(batches) < MIN_STEPS:
            batches += list(pool[torch.randperm(pool.numel(), generator=gen).to(device)].split(settings.items_per_step))
        for cols in batches:
            users = torch.randint(num_users, (min(settings.users_per_step, num_users),), generator=gen).to(device)
            descend(optimizer, loss_of(users, cols))

    best, best_state, best_epoch, bad = -math.inf, None, 0, 0
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        train_epoch(fit_items)
        student.eval()
        current = pseudo_cold_metrics(model, emb, student, eval_inputs(), valid_items, train_pairs)["ndcg@20"]
        student.train()
        if epoch % 10 == 0:
            log(f"  content model epoch {epoch}: held-out items ndcg@20 {current:.4f} (best {max(best, current):.4f}), {time.perf_counter() - t0:.0f}s")
        if current > best + 1e-5:
            best, best_epoch, bad = current, epoch, 0
            best_state = snapshot()
        else:
            bad += 1
            if bad >= settings.patience:
                break
    assert best_state is not None
    restore(best_state)
    student.eval()
    if text_module is not None:
        text_module.eval()
    inputs = eval_inputs()
    with torch.no_grad():
        pred = student(inputs.rows(valid_items))
        norm_ratio = float(pred.norm(dim=1).mean() / z[num_users + valid_items].norm(dim=1).mean())
    valid_hybrid = pseudo_cold_metrics(model, emb, student, inputs, valid_items, train_pairs)
    held_out_loss = valid_loss()
    refit = settings.refit and text_module is None
    if refit:  # the held-out figures above are the selected model's; the one returned learns from every item
        student = new_student()
        optimizer = torch.optim.Adam(student.parameters(), lr=settings.lr)
        student.train()
        for _ in range(best_epoch):
            train_epoch(items)
        student.eval()
    report = {
        "method": "distill (ALDI-style score and ranking alignment)",
        "text": "frozen" if text_module is None else text_module.tune,
        "inputs": "text+kg" if kg_inputs else "text",
        "settings": asdict(settings),
        "fit_items": int(fit_items.numel()),
        "valid_items": int(valid_items.numel()),
        "refit_items": int(items.numel()) if refit else 0,
        "best_epoch": best_epoch,
        "epochs_run": epoch,
        "valid_loss": held_out_loss,
        "teacher_score_mean": mean,
        "teacher_score_std": std,
        "valid_norm_ratio": norm_ratio,
        "valid_hybrid": valid_hybrid,
        "seconds": time.perf_counter() - t0,
    }
    log(
        f"content model for cold items: held-out items as new ones in the whole catalogue recall@20 "
        f"{valid_hybrid['recall@20']:.4f} ndcg@20 {valid_hybrid['ndcg@20']:.4f} (epoch {best_epoch} of {epoch}), "
        f"held-out items' vectors {norm_ratio:.2f}x as long as their trained ones, {report['seconds']:.1f}s"
    )
    return student, report


def pseudo_cold_metrics(
    model: Recommender, emb: Embeddings, student: ContentModel, inputs: ContentInputs, items: Tensor, train_pairs, k: int = 20
) -> dict[str, float]:
    """How the held-out warm items fare as if they were new: the validation of the content model.

    Their trained rows are replaced by the student's vectors (and their item-item view scores
    by nothing, as for a new item); every user with a training interaction with one of them
    ranks the whole catalogue, their other training items masked, and recall@k / NDCG@k are
    measured against their interactions with the held-out items. Optimistic next to truly new
    items (the users' embeddings were trained with these interactions), but the same for every
    setting, so it can choose among them without touching any test set.
    """
    from kgrec.eval.metrics import full_ranking_metrics
    from kgrec.graph.useritem import UserItemSets

    users_np, items_np = (np.asarray(a, dtype=np.int64) for a in train_pairs)
    held = np.isin(items_np, items.cpu().numpy())
    if not held.any():
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0, "users": 0}
    num_users, num_items = emb.num_users, emb.num_items
    truth = UserItemSets.from_pairs(users_np[held], items_np[held], num_users, num_items)
    masked = UserItemSets.from_pairs(users_np[~held], items_np[~held], num_users, num_items)
    with torch.no_grad():
        vectors = student(inputs.rows(items.to(inputs.neighbours.device))).float()
    item_table = emb.item_table().float().clone()
    item_table[items.to(item_table.device)] = vectors.to(item_table.device)
    user_table = emb.user_table().float()
    cold = items.to(user_table.device)

    def scores(batch: Tensor) -> Tensor:
        with torch.no_grad():
            s = model.full_scores(batch.to(user_table.device), emb).float()
            s[:, cold] = user_table[batch.to(user_table.device)] @ item_table[cold].t()
        return s

    metrics = full_ranking_metrics(scores, truth, masked, ks=(k,), progress=False)
    return {f"recall@{k}": float(metrics[f"recall@{k}"]), f"ndcg@{k}": float(metrics[f"ndcg@{k}"]), "users": int(metrics["num_users"])}


def can_embed_new_items(model: Recommender) -> bool:
    """Whether ``model`` is inductive: it can propagate over a graph with nodes added later."""
    return type(model).propagate is not Recommender.propagate


def fit_cold_start_content(
    model: Recommender, g: GraphTensors, emb: Embeddings, split, config, run_dir: Path, log=print, item_texts: list[str | None] | None = None
) -> dict | None:
    """The training loop's last step: distil and save the run's content model, when it has one.

    Skipped (None) with ``[coldstart] content = "none"``, for a model that cannot embed new
    items at all, and for a graph with neither text features nor knowledge edges into items.
    Returns the report that ``results.json`` keeps under ``content_model``.
    """
    cs = config.coldstart
    if cs.content == "none" or not can_embed_new_items(model):
        return None
    inputs = warm_item_inputs(g, emb.final)
    if inputs.text is None and int((inputs.degree > 0).sum()) == 0:
        log("no content model for cold items: the run has neither text features nor knowledge edges into items")
        return None
    train_items = item_positions_with_training(split.train["item"].to_numpy(), g.num_items)
    if train_items.numel() < 3:
        log("no content model for cold items: fewer than 3 items have training interactions")
        return None
    settings = ContentSettings(
        hidden=cs.hidden, epochs=cs.epochs, lr=cs.lr, ranking_weight=cs.ranking_weight, patience=cs.patience, seed=config.train.seed,
        cold_neighbours=cs.neighbours == "cold", kg_inputs=cs.inputs == "text+kg", refit=cs.refit,
    )
    pairs = (split.train["user"].to_numpy(), split.train["item"].to_numpy())
    text_module = None
    if config.text.tune != "frozen":
        if g.features is None or item_texts is None:
            log(f"text.tune = {config.text.tune!r} ignored: the run has no text features")
        else:
            from kgrec.text.tuning import TunedText

            text_module = TunedText(config.text.model, config.text.tune, config.text.max_length).to(emb.final.device)
    student, report = fit_content_model(
        model, g, emb, train_items, settings, pairs, log=log, text_module=text_module, item_texts=item_texts, text_lr=config.text.tune_lr
    )
    save_content_model(run_dir, student, report)
    if text_module is not None:
        text_module.save(run_dir, {"tune": config.text.tune, "lr": config.text.tune_lr, "best_epoch": report["best_epoch"]})
    return report


def item_positions_with_training(train_items: np.ndarray, num_items: int) -> Tensor:
    """Sorted positions of the items with at least one training interaction."""
    counts = np.bincount(np.asarray(train_items, dtype=np.int64), minlength=num_items)
    return torch.as_tensor(np.flatnonzero(counts > 0), dtype=torch.long)




__all__ = ["ContentSettings", "can_embed_new_items", "cold_views", "fit_cold_start_content", "fit_content_model", "item_positions_with_training", "pseudo_cold_metrics"]
