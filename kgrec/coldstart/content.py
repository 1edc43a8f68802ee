"""A content model trained to stand in for a cold item's missing embedding.

Why: a new item added by propagation alone (:func:`kgrec.coldstart.items.embed_items`) gets an
embedding about half as long as a trained one: a trained item's final embedding is shaped by
hundreds of user neighbours, a new item's by its text and a few entities. Its scores are on
another scale, and ranked among the whole catalogue it never reaches a top 20. Nothing in the
recommendation objective ever asked the content path to produce an item that competes.

What: after training, a small network is distilled from the trained model (the *teacher*), in
the manner of ALDI (Huang et al., SIGIR 2023, "Aligning Distillation For Cold-start Item
Recommendation"): for the warm items, from what a new item also has -- its BERT description
vector and the mean trained embedding of the knowledge-graph nodes it links to -- it predicts
a vector whose dot products with the trained users reproduce the teacher's ranking scores
(the item-item view included, when the run blends one). Two terms, both on a grid of random
users x a batch of items:

* **score alignment** (ALDI's rating-distribution term, as a regression): the mean squared
  error between the student's and the teacher's scores, divided by the teacher scores'
  variance. It is what puts a new item on the warm items' scale.
* **ranking alignment** (listwise): per user, the KL divergence from the teacher's softmax
  over the batch's items to the student's, at a temperature of one teacher-score standard
  deviation, weighted by ``ranking_weight``. It is what keeps the order right at the top.

A held-out tenth of the warm items (seeded) is never trained on; the student is selected on
their loss (early stopping), which is the honest estimate of how it does on items it has not
seen. The trained model itself is not changed: warm items are ranked exactly as before.

Deviations from ALDI, and why: ALDI's student sees only content features; here it also sees
the mean embedding of the item's knowledge-graph neighbours, which a new item described by RDF
has from the first minute (it is the "knowledge" part of the cold path). ALDI's third term
(aligning item-item similarities) and its popularity weighting are left out: with the score
term the teacher's popularity is already what the student learns to predict from content.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.io import atomic_path
from kgrec.models.base import Embeddings, Recommender
from kgrec.models.graph_tensors import GraphTensors

WEIGHTS_FILE = "content_model.safetensors"
META_FILE = "content_model.json"

#: ``[coldstart] content`` values: distil the content model after training, or not.
CONTENT_CHOICES = ("distill", "none")


@dataclass
class ContentInputs:
    """What a (new or warm) item brings besides an ID: the student's input, row by row.

    Attributes:
        text: ``[m, F]`` BERT features (zero rows without text), or None when the run has none.
        has_text: ``[m]`` which rows have text.
        neighbours: ``[m, d]`` mean final embedding of the item's knowledge-graph neighbours
            (entities, linked items; never users), zero rows without any.
        degree: ``[m]`` how many such neighbours.
    """

    text: Tensor | None
    has_text: Tensor
    neighbours: Tensor
    degree: Tensor

    def rows(self, index: Tensor) -> "ContentInputs":
        pick = (lambda t: None if t is None else t[index])  # noqa: E731
        return ContentInputs(pick(self.text), self.has_text[index], self.neighbours[index], self.degree[index])

    def empty_rows(self) -> Tensor:
        """Rows with neither text nor a neighbour: nothing to predict an embedding from."""
        return ~self.has_text & (self.degree == 0)


class ContentModel(nn.Module):
    r"""The student: an item's content to a vector in the trained item space.

    .. math::
        \hat{\mathbf{z}}_i = \mathrm{MLP}\big([\mathbf{f}_i;\ \bar{\mathbf{z}}_{\mathcal{N}(i)};
        \log(1 + |\mathcal{N}(i)|);\ [\text{has\_text}_i]]\big) + \mathbf{A}\,\bar{\mathbf{z}}_{\mathcal{N}(i)}

    with :math:`\mathbf{f}_i` the BERT vector, :math:`\bar{\mathbf{z}}_{\mathcal{N}(i)}` the mean
    trained embedding of its knowledge-graph neighbours, a two-layer MLP (ReLU) and a linear
    skip from the neighbour mean (a new item is first of all like the entities it shares).
    """

    def __init__(self, feature_dim: int, dim: int, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.feature_dim, self.dim, self.hidden = feature_dim, dim, hidden
        self.mlp = nn.Sequential(
            nn.Linear(feature_dim + dim + 2, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.skip = nn.Linear(dim, dim, bias=False)

    def forward(self, inputs: ContentInputs) -> Tensor:
        m = inputs.neighbours.size(0)
        text = inputs.text if inputs.text is not None else inputs.neighbours.new_zeros(m, self.feature_dim)
        if text.size(1) != self.feature_dim:
            raise KgrecError(f"the content model expects {self.feature_dim}-dimensional text features, got {text.size(1)}")
        extra = torch.stack([torch.log1p(inputs.degree.float()), inputs.has_text.float()], dim=1)
        x = torch.cat([text.float(), inputs.neighbours.float(), extra.to(text.device)], dim=1)
        return self.mlp(x) + self.skip(inputs.neighbours.float())


# --------------------------------------------------------------------------- inputs
def neighbour_means(z: Tensor, item: Tensor, node: Tensor, num_items: int) -> tuple[Tensor, Tensor]:
    """Mean of ``z[node]`` per ``item`` (positions ``0..num_items-1``), and the counts."""
    total = z.new_zeros(num_items, z.size(1)).index_add_(0, item, z[node])
    count = torch.bincount(item, minlength=num_items)
    return total / count.clamp(min=1).unsqueeze(1).to(total.dtype), count


def warm_item_inputs(g: GraphTensors, z: Tensor) -> ContentInputs:
    """The content inputs of the trained items of ``g``: their text and their KG neighbours.

    The neighbours are the graph's message edges into an item from a node that is not a user
    (entities, and items linked by a knowledge relation); what a new item gets from its RDF.
    """
    src, dst = g.edge_index[0].to(z.device), g.edge_index[1].to(z.device)
    u, i = g.num_users, g.num_items
    into_item = (dst >= u) & (dst < u + i) & (src >= u)
    neighbours, degree = neighbour_means(z, dst[into_item] - u, src[into_item], i)
    text = has_text = None
    if g.features is not None:
        text = g.features[u : u + i].to(z.device)
        has_text = g.has_text[u : u + i].to(z.device) if g.has_text is not None else torch.ones(i, dtype=torch.bool, device=z.device)
    if has_text is None:
        has_text = torch.zeros(i, dtype=torch.bool, device=z.device)
    return ContentInputs(text, has_text, neighbours, degree)


def new_item_inputs(z: Tensor, links_item: Tensor, links_node: Tensor, m: int, features: Tensor | None, has_text: Tensor | None) -> ContentInputs:
    """The content inputs of ``m`` new items: their features and the nodes their links reach.

    ``z`` are the final embeddings of the graph *before* the items were added (what the
    student was trained with).
    """
    neighbours, degree = neighbour_means(z, links_item.to(z.device), links_node.to(z.device), m)
    if features is not None:
        features = features.to(z.device)
        has_text = has_text.to(z.device) if has_text is not None else torch.ones(m, dtype=torch.bool, device=z.device)
    else:
        has_text = torch.zeros(m, dtype=torch.bool, device=z.device)
    return ContentInputs(features, has_text, neighbours, degree)


# --------------------------------------------------------------------------- training
@dataclass
class ContentSettings:
    """How the content model is distilled (``[coldstart]`` in the experiment config)."""

    hidden: int = 256
    epochs: int = 200
    lr: float = 1e-3
    ranking_weight: float = 1.0
    users_per_step: int = 512
    items_per_step: int = 256
    patience: int = 10
    holdout: float = 0.1
    seed: int = 2024


def fit_content_model(
    model: Recommender,
    g: GraphTensors,
    emb: Embeddings,
    train_items: Tensor,
    settings: ContentSettings,
    log=print,
) -> tuple[ContentModel, dict]:
    """Distil a :class:`ContentModel` from the trained ``model``; returns it and a report.

    Args:
        model, g, emb: the trained model, its training graph and its embeddings (``infer``).
        train_items: item positions with at least one training interaction (the warm items
            whose trained embeddings the teacher's scores rest on).
    """
    t0 = time.perf_counter()
    device = emb.final.device
    z = emb.final.float().clone()  # ``infer`` gives inference tensors, which autograd cannot save
    inputs = warm_item_inputs(g, z)
    if inputs.text is None and int((inputs.degree > 0).sum()) == 0:
        raise KgrecError("the run has neither text features nor knowledge edges: a content model has nothing to learn from")
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

    student = ContentModel(inputs.text.size(1) if inputs.text is not None else 0, z.size(1), settings.hidden).to(device)
    optimizer = torch.optim.Adam(student.parameters(), lr=settings.lr)
    user_table = z[:num_users]

    def loss_of(users: Tensor, cols: Tensor) -> Tensor:
        target = teacher(users, cols)
        pred = user_table[users] @ student(inputs.rows(cols)).t()
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

    best, best_state, best_epoch, bad = math.inf, None, 0, 0
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        order = fit_items[torch.randperm(fit_items.numel(), generator=gen).to(device)]
        for cols in order.split(settings.items_per_step):
            users = torch.randint(num_users, (settings.users_per_step,), generator=gen).to(device)
            loss = loss_of(users, cols)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        current = valid_loss()
        if current < best - 1e-4:
            best, best_epoch, bad = current, epoch, 0
            best_state = {k: v.detach().clone() for k, v in student.state_dict().items()}
        else:
            bad += 1
            if bad >= settings.patience:
                break
    assert best_state is not None
    student.load_state_dict(best_state)
    student.eval()
    with torch.no_grad():
        pred = student(inputs.rows(valid_items))
        norm_ratio = float(pred.norm(dim=1).mean() / z[num_users + valid_items].norm(dim=1).mean())
    report = {
        "method": "distill (ALDI-style score and ranking alignment)",
        "settings": asdict(settings),
        "fit_items": int(fit_items.numel()),
        "valid_items": int(valid_items.numel()),
        "best_epoch": best_epoch,
        "epochs_run": epoch,
        "valid_loss": best,
        "teacher_score_mean": mean,
        "teacher_score_std": std,
        "valid_norm_ratio": norm_ratio,
        "seconds": time.perf_counter() - t0,
    }
    log(
        f"content model for cold items: valid loss {best:.4f} (epoch {best_epoch} of {epoch}), "
        f"held-out items' vectors {norm_ratio:.2f}x as long as their trained ones, {report['seconds']:.1f}s"
    )
    return student, report


def can_embed_new_items(model: Recommender) -> bool:
    """Whether ``model`` is inductive: it can propagate over a graph with nodes added later."""
    return type(model).propagate is not Recommender.propagate


def fit_cold_start_content(model: Recommender, g: GraphTensors, emb: Embeddings, split, config, run_dir: Path, log=print) -> dict | None:
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
        hidden=cs.hidden, epochs=cs.epochs, lr=cs.lr, ranking_weight=cs.ranking_weight, patience=cs.patience, seed=config.train.seed
    )
    student, report = fit_content_model(model, g, emb, train_items, settings, log=log)
    save_content_model(run_dir, student, report)
    return report


# --------------------------------------------------------------------------- files
def save_content_model(run_dir: Path, student: ContentModel, report: dict) -> None:
    """``RUN/content_model.safetensors`` and ``.json`` (architecture and report), each atomic."""
    run_dir = Path(run_dir)
    with atomic_path(run_dir / WEIGHTS_FILE) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()}, str(tmp))
    meta = {"feature_dim": student.feature_dim, "dim": student.dim, "hidden": student.hidden, "report": report}
    with atomic_path(run_dir / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")


def load_content_model(run_dir: Path, device: torch.device) -> ContentModel | None:
    """The run's content model, or None when it has none (trained without, or before kgrec had one)."""
    run_dir = Path(run_dir)
    if not (run_dir / WEIGHTS_FILE).is_file():
        return None
    try:
        meta = json.loads((run_dir / META_FILE).read_text(encoding="utf-8"))
        student = ContentModel(int(meta["feature_dim"]), int(meta["dim"]), int(meta["hidden"]))
        student.load_state_dict(load_file(str(run_dir / WEIGHTS_FILE)))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise KgrecError(f"damaged content model ({e}); train the run again", path=run_dir / WEIGHTS_FILE) from None
    return student.to(device).eval()


def item_positions_with_training(train_items: np.ndarray, num_items: int) -> Tensor:
    """Sorted positions of the items with at least one training interaction."""
    counts = np.bincount(np.asarray(train_items, dtype=np.int64), minlength=num_items)
    return torch.as_tensor(np.flatnonzero(counts > 0), dtype=torch.long)


__all__ = [
    "CONTENT_CHOICES",
    "ContentInputs",
    "ContentModel",
    "ContentSettings",
    "can_embed_new_items",
    "fit_cold_start_content",
    "fit_content_model",
    "item_positions_with_training",
    "load_content_model",
    "new_item_inputs",
    "save_content_model",
    "warm_item_inputs",
]
