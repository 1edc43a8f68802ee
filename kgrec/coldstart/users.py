"""Cold-start users: recommendations for someone the model has never seen.

Two inputs, one mechanism:

* **a handful of liked items** -- the user becomes a new node linked to those items by the
  graph's main behaviour, with a zero layer-0 input (a new user has no ID embedding and no
  text), and the trained encoder propagates over the extended graph ("fold-in", see
  :mod:`kgrec.coldstart.extend`). That is exactly how a trained user's embedding is made from
  its neighbours, minus its own ID part. ``method="mean"`` instead averages the liked items'
  final embeddings: no propagation, a useful baseline.
* **a text profile** ("dark science fiction with a great soundtrack") -- encoded with the same
  BERT encoder as the item descriptions; the items whose descriptions are closest become the
  liked items, and the rest is as above. Going through items, rather than projecting the
  profile with the text projection directly, keeps the user in the collaborative geometry the
  dot-product head was trained on: the projection was only ever trained on item and entity
  texts, never on users.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.coldstart.extend import NewEdges, extend_graph
from kgrec.models.base import Recommender
from kgrec.models.graph_tensors import GraphTensors

METHODS = ("fold-in", "mean")


def main_behaviour(g: GraphTensors, behaviours: list[str]) -> str:
    """The behaviour with the most training edges (the edge a new user's likes become)."""
    counts = torch.bincount(g.edge_type.cpu(), minlength=g.num_relations)
    present = [b for b in behaviours if b in g.relation_names]
    if not present:
        raise KgrecError("the trained graph has no user-item behaviour to link a new user with")
    return max(present, key=lambda b: int(counts[g.relation_names.index(b)]))


def user_embedding(
    model: Recommender,
    g: GraphTensors,
    x0: Tensor,
    z: Tensor,
    item_nodes: list[int],
    *,
    behaviour: str,
    weights: list[float] | None = None,
    method: str = "fold-in",
) -> Tensor:
    """The embedding ``[d]`` of a new user who liked ``item_nodes`` (global node indices).

    Args:
        g, x0, z: the current graph, its layer-0 and its final embeddings.
        behaviour: relation name of the new user's edges (see :func:`main_behaviour`).
        weights: for ``method="mean"``, a weight per item (e.g. text similarity); ignored by
            fold-in, whose edges are unweighted like the training graph's.
        method: ``"fold-in"`` (propagate over the graph with the user added) or ``"mean"``.
    """
    if not item_nodes:
        raise KgrecError("a new user needs at least one liked item")
    if method == "mean":
        w = torch.ones(len(item_nodes)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        w = (w / w.sum()).to(z.device)
        return (z[torch.as_tensor(item_nodes, device=z.device)] * w.unsqueeze(1)).sum(0)
    if method != "fold-in":
        raise KgrecError(f"unknown cold-user method {method!r} (choose {' or '.join(METHODS)})")
    new = g.num_nodes
    edges = NewEdges([new] * len(item_nodes), list(item_nodes), [behaviour] * len(item_nodes))
    g_ext = extend_graph(g, torch.zeros(1, dtype=torch.long), edges)
    x0_ext = torch.cat([x0, x0.new_zeros(1, x0.size(1))])
    return model.propagate(g_ext, x0_ext)[new]


def items_for_text(profile_vector: np.ndarray, item_features: np.ndarray, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` items whose text encodings are closest (cosine) to the profile's.

    Args:
        profile_vector: ``[F]`` unit-length encoding of the profile.
        item_features: ``[I, F]`` unit-length encodings of the item texts (zero rows: no text).

    Returns:
        ``(item positions, similarities)``, best first.
    """
    sims = item_features @ profile_vector
    n = min(n, len(sims))
    top = np.argsort(-sims, kind="stable")[:n]
    return top, sims[top]
