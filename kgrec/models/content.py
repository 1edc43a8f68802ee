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

A held-out tenth of the warm items (seeded) is never trained on; the student is selected
(early stopping) on how those items fare as if they were new, ranked in the whole catalogue by
the users who interacted with them (:func:`pseudo_cold_metrics`, NDCG@20): the estimate of how
it does on items it has not seen, with no test item looked at. The trained model itself is not
changed: warm items are ranked exactly as before.

Inputs: by default (``[coldstart] inputs = "text"``) the student reads the description alone, as
ALDI's reads content features alone. With ``"text+kg"`` it also sees the mean embedding of the
item's knowledge-graph neighbours and the vector the encoder propagates for it, which a new item
described by RDF has from the first minute. On ml-100k those inputs halved the new items'
recall in the whole catalogue (chosen on held-out draws kept apart from the reported ones; the
README's cold-start section has the figures). For the warm items it
learns from, those neighbours are taken from the propagation with the item made new
(:func:`kgrec.train.content.cold_views`, ``[coldstart] neighbours = "cold"``): their trained
embeddings carry the item's own interactions, which a new item's entities never do. ALDI's third term
(aligning item-item similarities) and its popularity weighting are left out: with the score
term the teacher's popularity is already what the student learns to predict from content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.io import atomic_path
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
    propagated: Tensor | None = None
    """``[m, d]`` what the trained encoder makes of the item with no interaction (its text
    projection and the mean ID as layer 0, its knowledge edges, no user edge)."""

    def rows(self, index: Tensor) -> "ContentInputs":
        pick = (lambda t: None if t is None else t[index])  # noqa: E731
        return ContentInputs(pick(self.text), self.has_text[index], self.neighbours[index], self.degree[index], pick(self.propagated))

    def empty_rows(self, text_only: bool = False) -> Tensor:
        """Rows with neither text nor a neighbour (``text_only``: without text): nothing to predict an embedding from."""
        return ~self.has_text if text_only else ~self.has_text & (self.degree == 0)


class ContentModel(nn.Module):
    r"""The student: an item's content to a vector in the trained item space.

    .. math::
        \hat{\mathbf{z}}_i = \mathrm{MLP}\big([\mathbf{f}_i;\ \bar{\mathbf{z}}_{\mathcal{N}(i)};\ \mathbf{p}_i;
        \log(1 + |\mathcal{N}(i)|);\ [\text{has\_text}_i]]\big) + \mathbf{A}\,\bar{\mathbf{z}}_{\mathcal{N}(i)}
        + \mathbf{C}\,\mathbf{p}_i

    with :math:`\mathbf{f}_i` the BERT vector, :math:`\bar{\mathbf{z}}_{\mathcal{N}(i)}` the mean
    trained embedding of its knowledge-graph neighbours, :math:`\mathbf{p}_i` what the trained
    encoder propagates for the item without any interaction (the vector kgrec used for new
    items before it had a content model: it ranks new items among themselves well, on the
    wrong scale), a two-layer MLP (ReLU) and linear skips from both.
    """

    def __init__(self, feature_dim: int, dim: int, hidden: int = 256, dropout: float = 0.1, propagated: bool = True, kg: bool = True):
        super().__init__()
        self.feature_dim, self.dim, self.hidden, self.uses_kg = feature_dim, dim, hidden, kg
        self.uses_propagated = propagated and kg
        width = feature_dim + (dim * (2 if self.uses_propagated else 1) + 2 if kg else 1)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.skip = nn.Linear(dim, dim, bias=False) if kg else None
        self.skip_propagated = nn.Linear(dim, dim, bias=False) if self.uses_propagated else None

    def forward(self, inputs: ContentInputs) -> Tensor:
        m = inputs.neighbours.size(0)
        text = inputs.text if inputs.text is not None else inputs.neighbours.new_zeros(m, self.feature_dim)
        if text.size(1) != self.feature_dim:
            raise KgrecError(f"the content model expects {self.feature_dim}-dimensional text features, got {text.size(1)}")
        if not self.uses_kg:  # ``[coldstart] inputs = "text"``: the description alone
            return self.mlp(torch.cat([text.float(), inputs.has_text.float().unsqueeze(1).to(text.device)], dim=1))
        extra = torch.stack([torch.log1p(inputs.degree.float()), inputs.has_text.float()], dim=1)
        parts = [text.float(), inputs.neighbours.float()]
        if self.skip_propagated is not None:
            if inputs.propagated is None:
                raise KgrecError("the content model needs the new items' propagated vectors")
            parts.append(inputs.propagated.float())
        x = torch.cat([*parts, extra.to(text.device)], dim=1)
        out = self.mlp(x) + self.skip(inputs.neighbours.float())
        if self.skip_propagated is not None:
            out = out + self.skip_propagated(inputs.propagated.float())
        return out


# --------------------------------------------------------------------------- inputs
def neighbour_means(z: Tensor, item: Tensor, node: Tensor, num_items: int) -> tuple[Tensor, Tensor]:
    """Mean of ``z[node]`` per ``item`` (positions ``0..num_items-1``), and the counts."""
    total = z.new_zeros(num_items, z.size(1)).index_add_(0, item, z[node])
    count = torch.bincount(item, minlength=num_items)
    return total / count.clamp(min=1).unsqueeze(1).to(total.dtype), count


def knowledge_links(g: GraphTensors, device: torch.device | str) -> tuple[Tensor, Tensor]:
    """``(item, node)``: the graph's message edges into an item from a node that is not a user
    (entities, and items linked by a knowledge relation), what a new item gets from its RDF; item
    as a position ``0..num_items-1``, node as a global node index."""
    src, dst = g.edge_index[0].to(device), g.edge_index[1].to(device)
    u = g.num_users
    into_item = (dst >= u) & (dst < u + g.num_items) & (src >= u)
    return dst[into_item] - u, src[into_item]


def warm_item_inputs(g: GraphTensors, z: Tensor) -> ContentInputs:
    """The content inputs of the trained items of ``g``: their text and their KG neighbours
    (:func:`knowledge_links`)."""
    u, i = g.num_users, g.num_items
    neighbours, degree = neighbour_means(z, *knowledge_links(g, z.device), i)
    text = has_text = None
    if g.features is not None:
        text = g.features[u : u + i].to(z.device)
        has_text = g.has_text[u : u + i].to(z.device) if g.has_text is not None else torch.ones(i, dtype=torch.bool, device=z.device)
    if has_text is None:
        has_text = torch.zeros(i, dtype=torch.bool, device=z.device)
    return ContentInputs(text, has_text, neighbours, degree)


def new_item_inputs(
    z: Tensor, links_item: Tensor, links_node: Tensor, m: int, features: Tensor | None, has_text: Tensor | None, propagated: Tensor | None = None
) -> ContentInputs:
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
    return ContentInputs(features, has_text, neighbours, degree, None if propagated is None else propagated.to(z.device))


# --------------------------------------------------------------------------- files
def save_content_model(run_dir: Path, student: ContentModel, report: dict) -> None:
    """``RUN/content_model.safetensors`` and ``.json`` (architecture and report), each atomic."""
    run_dir = Path(run_dir)
    with atomic_path(run_dir / WEIGHTS_FILE) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()}, str(tmp))
    meta = {
        "feature_dim": student.feature_dim, "dim": student.dim, "hidden": student.hidden,
        "propagated": student.uses_propagated, "kg": student.uses_kg, "report": report,
    }  # fmt: skip
    with atomic_path(run_dir / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")


def load_content_model(run_dir: Path, device: torch.device) -> ContentModel | None:
    """The run's content model, or None when it has none (trained without, or before kgrec had one)."""
    run_dir = Path(run_dir)
    if not (run_dir / WEIGHTS_FILE).is_file():
        return None
    try:
        meta = json.loads((run_dir / META_FILE).read_text(encoding="utf-8"))
        student = ContentModel(
            int(meta["feature_dim"]), int(meta["dim"]), int(meta["hidden"]), propagated=bool(meta.get("propagated", False)), kg=bool(meta.get("kg", True))
        )
        student.load_state_dict(load_file(str(run_dir / WEIGHTS_FILE)))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise KgrecError(f"damaged content model ({e}); train the run again", path=run_dir / WEIGHTS_FILE) from None
    return student.to(device).eval()


__all__ = [
    "CONTENT_CHOICES",
    "META_FILE",
    "WEIGHTS_FILE",
    "ContentInputs",
    "ContentModel",
    "load_content_model",
    "neighbour_means",
    "new_item_inputs",
    "save_content_model",
    "knowledge_links",
    "warm_item_inputs",
]
