r"""Fine-tuning a trained model on new interactions without forgetting the old ones.

``kgrec update`` (:mod:`kgrec.runs.update`) grows a trained model to a grown graph and then
runs a bounded number of passes (``update.epochs``) over the **new** training interactions.
Each step is an ordinary training step (:mod:`kgrec.train.step`: the same negatives, encoder
and :meth:`Recommender.loss <kgrec.models.base.Recommender.loss>`) over a batch made of

* new training pairs, ``batch_size / (1 + replay_ratio)`` of them, walked in a shuffled order;
* **replay**: ``replay_ratio`` times as many old training pairs, drawn uniformly at random
  from the parent's training pairs afresh at every step (a reservoir of all of them: on
  MovieLens-sized data they fit in memory, so no sample has to be kept),

plus two distillation terms in the manner of GraphSAIL (Xu et al., "GraphSAIL: Graph Structure
Aware Incremental Learning for Recommender Systems", CIKM 2020), which keep what the parent
model knew about the nodes it had:

.. math::
    \mathcal{L}_\text{distill} = \frac{1}{|V_\text{old}|} \sum_{v \in V_\text{old}}
        \lVert \mathbf{z}_v - \mathbf{z}^\text{old}_v \rVert^2, \qquad
    \mathcal{L}_\text{structure} = \frac{1}{|V_\text{old}|} \sum_{v \in V_\text{old}}
        \big(\mathbf{z}_v^\top \mathbf{c}_v - \mathbf{z}^{\text{old}\top}_v \mathbf{c}^\text{old}_v\big)^2,

where :math:`V_\text{old}` are the users and items the parent knew, :math:`\mathbf{z}^\text{old}`
its final embeddings (on its own graph) and :math:`\mathbf{c}_v` the mean final embedding of
``v``'s user-item neighbours (GraphSAIL's local structure: how a node relates to its
neighbourhood, with the new neighbourhood for the new model and the old one for the old). The
first is GraphSAIL's self-embedding distillation; its global-structure term (similarities to
cluster anchors) is left out. Over the whole graph every known user and item is distilled at
every step; over sampled blocks (``train.sampler = "neighbor"``), those of the block.

Before the passes, an optional **fold-in** (:func:`fold_in`, ``update.fold_in_steps``): the new
users' and items' ID rows are fitted alone on the new training pairs that name them, with every
other weight and every old row frozen. The new nodes have no trained state to protect, so they
can move fast (``fold_in_lr``) while nothing the parent knew changes; this is the fold-in of new
users into a trained factor model (Sarwar et al., "Incremental SVD-based algorithms for highly
scaleable recommender systems", 2002), done by gradient steps through the GNN.

After every pass the model ranks the validation set; the pass with the best validation metric
is kept, pass 0 (the grown model before any step) included, so an update never ends worse on
validation than the model it started from.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.eval.sets import SplitSets
from kgrec.models.base import Batch, Embeddings, Recommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.train.step import descend, make_step, total_loss


@dataclass
class Teacher:
    """What the parent model knew, in the grown graph's node numbering.

    Attributes:
        nodes: ``[n]`` global nodes of the grown graph (users and items the parent had).
        final: ``[n, d]`` the parent's final embeddings of them (on the parent's graph).
        structure: ``[n]`` the parent's :math:`\\mathbf{z}_v^\\top \\mathbf{c}_v` (its nodes' dot
            product with the mean of their user-item neighbours, on the parent's graph).
    """

    nodes: Tensor
    final: Tensor
    structure: Tensor

    @classmethod
    def from_parent(cls, z: Tensor, g: GraphTensors, rows: Tensor) -> "Teacher":
        """The teacher of a parent with final embeddings ``z`` over its training graph ``g``;
        ``rows`` maps each parent node to its global index in the grown graph (-1: gone)."""
        known = torch.arange(g.num_users + g.num_items)
        rows = torch.as_tensor(rows, dtype=torch.long)[known]
        keep = rows >= 0
        z = z.detach().float().clone()  # a normal tensor (the run's are inference tensors)
        structure = (z * neighbour_mean(z, g)).sum(-1)
        return cls(rows[keep].to(z.device), z[known[keep].to(z.device)], structure[known[keep].to(z.device)])

    def to(self, device) -> "Teacher":
        return Teacher(self.nodes.to(device), self.final.to(device), self.structure.to(device))


def user_item_edges(g: GraphTensors) -> tuple[Tensor, Tensor]:
    """``(src, dst)`` of the message-passing edges between users and items (both directions)."""
    src, dst = g.edge_index
    span = g.num_users + g.num_items
    keep = (src < span) & (dst < span)
    return src[keep], dst[keep]


def neighbour_mean(z: Tensor, g: GraphTensors) -> Tensor:
    """``[nodes, d]`` each node's mean final embedding over its user-item neighbours (zero: none)."""
    src, dst = user_item_edges(g)
    total = torch.zeros_like(z).index_add(0, dst, z[src])
    degree = torch.bincount(dst, minlength=z.size(0)).clamp(min=1).to(z.dtype)
    return total / degree.unsqueeze(1)


def distillation_terms(emb: Embeddings, g: GraphTensors, teacher: Teacher, distill_weight: float, structure_weight: float) -> dict[str, Tensor]:
    """The weighted ``distill`` and ``structure`` terms of one step (see the module docstring)."""
    terms: dict[str, Tensor] = {}
    nodes, target, structure = teacher.nodes, teacher.final, teacher.structure
    if emb.local is not None:  # a sampled block: the known nodes among its seeds
        present = emb.local[nodes] >= 0
        nodes, target, structure = nodes[present], target[present], structure[present]
        if nodes.numel() == 0:
            return terms
    final = emb.node(nodes).float()
    if distill_weight > 0:
        terms["distill"] = distill_weight * (final - target).pow(2).sum(-1).mean()
    if structure_weight > 0:
        if emb.local is not None:
            raise KgrecError('update.structure_weight needs the whole graph at every step (train.sampler = "full")')
        mean = neighbour_mean(emb.final.float(), g)[nodes]
        terms["structure"] = structure_weight * ((final * mean).sum(-1) - structure).pow(2).mean()
    return terms


def fine_tune(
    model: Recommender,
    g: GraphTensors,
    sets: SplitSets,
    new_pairs: tuple[Tensor, Tensor],
    old_pairs: tuple[Tensor, Tensor],
    teacher: Teacher | None,
    config: ExperimentConfig,
    run_dir: Path,
    *,
    device: torch.device,
    generator: torch.Generator,
    log=print,
) -> dict:
    """Fine-tune ``model`` on ``new_pairs`` with replay of ``old_pairs`` and distillation.

    Writes ``run_dir/metrics.jsonl`` (one line per pass: the loss and its terms, the validation
    metrics; pass 0 has no loss) and leaves the validation-best weights in ``model``.

    Returns:
        ``{"selected_epoch", "epochs_run", "steps", "valid", "seconds_per_epoch"}``.
    """
    with remembering(model):  # the item-item view's validation scores are the same at every pass
        return _passes(model, g, sets, new_pairs, old_pairs, teacher, config, run_dir, device, generator, log)


def fold_in(
    model: Recommender,
    g: GraphTensors,
    sets: SplitSets,
    new_pairs: tuple[Tensor, Tensor],
    new: Tensor,
    config: ExperimentConfig,
    *,
    device: torch.device,
    generator: torch.Generator,
    log=print,
) -> dict:
    """Fit the ID rows of the ``new`` nodes (``[num_nodes]`` mask) alone, on the pairs of
    ``new_pairs`` that name one of them; every other parameter and every other row stays as it is.

    Returns ``{"steps", "pairs", "loss"}`` (the mean loss of the last tenth of the steps); no
    step is taken where the model has no ID rows, no node is new or no pair names one.
    """
    uc = config.update
    table = getattr(getattr(model, "node_input", None), "id_embedding", None)
    users, items = (t.to(device) for t in new_pairs)
    new = new.to(device)
    keep = new[users] | new[g.num_users + items]
    users, items = users[keep], items[keep]
    if table is None or uc.fold_in_steps == 0 or users.numel() == 0:
        return {"steps": 0, "pairs": int(users.numel()), "loss": None}
    frozen = [p for p in model.parameters() if p.requires_grad and p is not table.weight]
    for p in frozen:
        p.requires_grad_(False)
    hook = table.weight.register_hook(lambda grad: grad * new.to(grad.dtype).unsqueeze(1))
    try:
        step = make_step(model, model, g, sets, config, generator)
        optimizer = torch.optim.Adam([table.weight], lr=uc.fold_in_lr)  # fresh: old rows get zero gradients and so no step
        per_step = min(uc.batch_size, int(users.numel()))
        losses = []
        model.train()
        for _ in range(uc.fold_in_steps):
            pick = torch.randint(int(users.numel()), (per_step,), generator=generator, device=generator.device).to(device)
            batch: Batch = step.draw(users[pick], items[pick])
            loss = total_loss(model.loss(batch, step.encode(batch)))
            descend(optimizer, loss)
            losses.append(float(loss.detach()))
    finally:
        hook.remove()
        for p in frozen:
            p.requires_grad_(True)
    tail = losses[-max(1, len(losses) // 10) :]
    loss = sum(tail) / len(tail)
    if not math.isfinite(loss):
        raise KgrecError(f"the fold-in diverged (loss {loss}); lower update.fold_in_lr")
    log(f"update: fold-in of {int(new.sum()):,} new nodes: {len(losses)} steps over {int(users.numel()):,} pairs, loss {loss:.4f}")
    return {"steps": len(losses), "pairs": int(users.numel()), "loss": loss}


def remembering(model: Recommender):
    """The model's item-item view remembering its scores (:meth:`ItemItemView.remembering`), or nothing."""
    from contextlib import nullcontext

    return model.item_item.remembering() if model.item_item is not None else nullcontext()


def _passes(model, g, sets, new_pairs, old_pairs, teacher, config, run_dir, device, generator, log) -> dict:
    uc, tc, ec = config.update, config.train, config.eval
    new_users, new_items = (t.to(device) for t in new_pairs)
    old_users, old_items = (t.to(device) for t in old_pairs)
    n_new, n_old = int(new_users.numel()), int(old_users.numel())
    per_new = max(1, round(uc.batch_size / (1.0 + uc.replay_ratio))) if n_old else uc.batch_size
    per_old = min(uc.batch_size - per_new, n_old) if uc.replay_ratio > 0 else 0
    teacher = teacher.to(device) if teacher is not None else None
    metric = ec.metric
    step = make_step(model, model, g, sets, config, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=uc.lr, weight_decay=tc.weight_decay)
    use_amp = tc.amp and device.type == "cuda"
    metrics_path = Path(run_dir) / "metrics.jsonl"

    def validate(record: dict) -> tuple[float, dict]:
        valid = sets.evaluate(model, model.infer(g), "valid", ec.ks, ec.batch_size)
        record.update({f"valid_{k}": v for k, v in valid.items()})
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        return valid[metric], valid

    metrics_path.write_text("")
    with torch.no_grad():  # per-graph caches (adjacency, text rows) made outside inference mode, so training can use them
        model.train()
        model.encode(g)
    best_value, best_valid = validate({"epoch": 0, "loss": math.nan, "seconds": 0.0})
    best_epoch, best_state = 0, _copy(model)
    log(f"update: pass 0 (the grown model, no step yet): valid {metric} {best_value:.4f}")
    steps, times = 0, []
    for epoch in range(1, uc.epochs + 1 if n_new else 1):
        model.train()
        model.start_epoch()
        t0 = time.perf_counter()
        order = torch.randperm(n_new, generator=generator, device=generator.device).to(device)
        total, sums, count = 0.0, {}, 0
        for lo in range(0, n_new, per_new):
            idx = order[lo : lo + per_new]
            users, items = new_users[idx], new_items[idx]
            if per_old:
                pick = torch.randint(n_old, (per_old,), generator=generator, device=generator.device).to(device)
                users, items = torch.cat([users, old_users[pick]]), torch.cat([items, old_items[pick]])
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                batch: Batch = step.draw(users, items)
                emb = step.encode(batch)
                terms = model.loss(batch, emb)
                if teacher is not None:
                    terms.update(distillation_terms(emb, g, teacher, uc.distill_weight, uc.structure_weight))
                loss = total_loss(terms)
            descend(optimizer, loss)
            total += float(loss.detach())
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            count += 1
        steps += count
        loss = total / max(count, 1)
        if not math.isfinite(loss):
            raise KgrecError(f"the update diverged in pass {epoch} (loss {loss}); lower update.lr")
        times.append(time.perf_counter() - t0)
        value, valid = validate(
            {"epoch": epoch, "loss": loss, **{f"loss_{k}": v / max(count, 1) for k, v in sums.items()}, "seconds": times[-1], "steps": count}
        )
        better = value > best_value
        if better:
            best_value, best_valid, best_epoch, best_state = value, valid, epoch, _copy(model)
        log(f"update: pass {epoch}: {count} steps, loss {loss:.4f}, valid {metric} {value:.4f}{' (best)' if better else ''}, {times[-1]:.1f}s")
    model.load_state_dict(best_state)
    return {
        "selected_epoch": best_epoch,
        "epochs_run": len(times),
        "steps": steps,
        "steps_per_epoch": math.ceil(n_new / per_new) if n_new else 0,
        "new_pairs_per_step": per_new,
        "replayed_pairs_per_step": per_old,
        "valid": best_valid,
        "seconds_per_epoch": sum(times) / max(len(times), 1),
    }


def _copy(model: Recommender) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


__all__ = ["Teacher", "distillation_terms", "fine_tune", "fold_in", "neighbour_mean", "remembering"]
