r"""One model for several scenes: a shared encoder with parts of its own per scene.

A scene is where an interaction happened: a home feed, search, a detail page, or a domain
(films, music). Users carry one taste across scenes and shift it in each; the shared GNN learns
the taste from every scene's interactions, and each scene's parts learn its shift from that
scene's interactions alone, which are few in a sparse scene. The score of user :math:`u` for
item :math:`i` in scene :math:`s` is

.. math::
    \hat{y}_{uis} = (\mathbf{z}_u + \mathbf{z}_u \mathbf{A}_s + \mathbf{o}_s)^\top \mathbf{z}_i + b_{si}

with :math:`\mathbf{z}` the shared encoder's final embeddings, :math:`\mathbf{A}_s` a
``dim x dim`` residual adapter (a linear map of the user's taste: "who likes X at home likes Y
in search"), :math:`\mathbf{o}_s` a scene vector (what the scene favours for everyone) and
:math:`b_{si}` an item bias per scene (popularity within the scene). All start at zero, so an
untrained scene part is the global model. Without parts (:class:`SceneRecommender` with
``parts=None``) the score is the shared model's dot product: the global model, and one model
per scene when each is trained on its own scene.

The scene-adapted model is trained in stages (:mod:`kgrec.train.scenes`): the shared model
exactly as the global one, then the scene parts on top of it, the shared model frozen, with an
L2 pull toward zero (:meth:`SceneParts.squared_norm`); a scene keeps its parts only where they
improve its validation, otherwise its parts stay zero and it is served by the shared model.

Fine-tuning a copy per scene chooses what stays frozen (:data:`FREEZE_CHOICES`): ``shared``
(everything but the scene parts), ``top`` (the shared layers above the ID embeddings: the
encoder's weights, the text projection and the KG relation embeddings; the ID embeddings and
the scene parts train) or ``none``.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.models.base import Embeddings, Recommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.losses import bpr_loss, l2_regularisation
from kgrec.models.propagation import PerGraphCache

#: ``[scenes] mode``: the ordinary loop, or one of the three ways to serve scenes.
SCENE_MODES = ("off", "global", "separate", "adapted")
#: ``[scenes] freeze``: what per-scene fine-tuning leaves untouched.
FREEZE_CHOICES = ("shared", "top", "none")


class SceneParts(nn.Module):
    """Per scene: a residual user adapter ``[d, d]``, a scene vector ``[d]`` and (optionally) item biases."""

    def __init__(self, num_scenes: int, dim: int, num_items: int, item_bias: bool = True):
        super().__init__()
        self.adapter = nn.Parameter(torch.zeros(num_scenes, dim, dim))
        self.offset = nn.Parameter(torch.zeros(num_scenes, dim))
        self.item_bias = nn.Parameter(torch.zeros(num_scenes, num_items)) if item_bias else None

    @property
    def num_scenes(self) -> int:
        return self.adapter.size(0)

    def squared_norm(self) -> Tensor:
        """The sum of every scene part's squares (the L2 pull toward zero, i.e. the shared model)."""
        return sum(p.square().sum() for p in self.parameters())

    @torch.no_grad()
    def reset(self) -> None:
        """Every scene's parts back to zero (every scene scores like the shared model)."""
        for p in self.parameters():
            p.zero_()

    def scene_state(self, scene: int) -> list[Tensor]:
        """A copy of one scene's parts (its slice of every parameter)."""
        return [p.detach()[scene].clone() for p in self.parameters()]

    @torch.no_grad()
    def load_scene(self, scene: int, state: list[Tensor] | None) -> None:
        """Set one scene's parts to ``state`` (from :meth:`scene_state`), or to zero when None."""
        for k, p in enumerate(self.parameters()):
            p[scene] = 0.0 if state is None else state[k]

    def user(self, z: Tensor, scenes: Tensor) -> Tensor:
        """``[B, d]`` user vectors ``z`` moved into each row's scene (``scenes`` ``[B]``)."""
        s, d, _ = self.adapter.shape  # z times every scene's map, then each row's: no [B, d, d] gather
        moved = (z @ self.adapter.permute(1, 0, 2).reshape(d, s * d)).view(-1, s, d)
        picked = moved.gather(1, scenes.view(-1, 1, 1).expand(-1, 1, d)).squeeze(1)
        return z + picked + self.offset[scenes]

    def bias(self, items: Tensor, scenes: Tensor) -> Tensor | float:
        """Item biases of ``items`` (``[B]`` or ``[B, n]``) in each row's scene."""
        if self.item_bias is None:
            return 0.0
        rows = self.item_bias[scenes]
        return rows.gather(1, items) if items.dim() == 2 else rows.gather(1, items.unsqueeze(1)).squeeze(1)


class SceneRecommender(nn.Module):
    """A shared graph recommender (``base``) plus optional :class:`SceneParts`.

    Args:
        base: any non-sequential kgrec model; its encoder and layer-0 inputs are the shared part.
        parts: the scene parts, or None for a scene-blind model (global, or one per scene).
    """

    def __init__(self, base: Recommender, parts: SceneParts | None = None):
        super().__init__()
        self.base = base
        self.parts = parts

    def encode(self, g: GraphTensors) -> Embeddings:
        return self.base.encode(g)

    def infer(self, g: GraphTensors) -> Embeddings:
        return self.base.infer(g)

    def user_vectors(self, users: Tensor, scenes: Tensor, emb: Embeddings) -> Tensor:
        z = emb.user(users)
        return z if self.parts is None else self.parts.user(z, scenes)

    @torch.inference_mode()
    def scene_scores(self, users: Tensor, scene: int, emb: Embeddings) -> Tensor:
        """``[B, items]`` ranking scores of ``users`` against the whole catalogue, in ``scene``."""
        items = emb.item_table()
        users = users.to(items.device)
        scenes = torch.full_like(users, scene)
        scores = self.user_vectors(users, scenes, emb) @ items.t()
        if self.parts is not None and self.parts.item_bias is not None:
            scores = scores + self.parts.item_bias[scene]
        return scores

    def pair_scores(self, users: Tensor, items: Tensor, scenes: Tensor, emb: Embeddings) -> Tensor:
        """Scores of aligned rows; ``items`` ``[B]`` or ``[B, n]`` (candidates per row)."""
        u = self.user_vectors(users, scenes, emb)
        scores = Recommender.dot(u, emb.item(items))
        return scores if self.parts is None else scores + self.parts.bias(items, scenes)

    def loss(
        self, users: Tensor, positives: Tensor, negatives: Tensor, scenes: Tensor, emb: Embeddings, parts_l2: float = 0.0
    ) -> dict[str, Tensor]:
        """BPR of each positive against its negatives (``[B, n]``) in its scene, the L2 on layer 0
        (left out when layer 0 is frozen: ``emb`` computed without autograd) and ``parts_l2``
        times the scene parts' squared norm."""
        pos = self.pair_scores(users, positives, scenes, emb)
        neg = self.pair_scores(users, negatives, scenes, emb)
        terms = {"cf": bpr_loss(pos.float(), neg.float())}
        objective = getattr(self.base, "objective", None)
        reg_weight = objective.reg_weight if objective is not None else 0.0
        if emb.layer0.requires_grad:
            dim = emb.layer0.size(-1)
            terms["reg"] = reg_weight * l2_regularisation(
                emb.user0(users), emb.item0(positives), emb.item0(negatives).reshape(-1, dim), batch_size=users.numel()
            )
        if self.parts is not None and parts_l2 > 0:
            terms["parts"] = parts_l2 * self.parts.squared_norm()
        return terms

    def clone(self) -> "SceneRecommender":
        """A deep copy for fine-tuning; the encoders' per-graph caches (sparse adjacencies that
        depend on the graph alone, and that cannot be deep-copied) are shared, not copied."""
        shared = {id(v): v for m in self.modules() for v in vars(m).values() if isinstance(v, PerGraphCache)}
        return copy.deepcopy(self, shared)

    def freeze(self, what: str) -> list[nn.Parameter]:
        """Freeze per :data:`FREEZE_CHOICES` and return the parameters left to train."""
        if what not in FREEZE_CHOICES:
            raise KgrecError(f"scenes.freeze = {what!r} is not one of {', '.join(FREEZE_CHOICES)}")
        for p in self.parameters():
            p.requires_grad_(what == "none")
        if what == "top":
            node_input = getattr(self.base, "node_input", None)
            ids = getattr(node_input, "id_embedding", None)
            if ids is not None:
                ids.weight.requires_grad_(True)
        if self.parts is not None:
            for p in self.parts.parameters():
                p.requires_grad_(True)
        return [p for p in self.parameters() if p.requires_grad]


__all__ = ["FREEZE_CHOICES", "SCENE_MODES", "SceneParts", "SceneRecommender"]
