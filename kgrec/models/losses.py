"""Link-prediction losses for the CF head and the auxiliary knowledge-graph head.

All losses return a float32 scalar, also when the scores come from an autocast region in half
precision: the log-sigmoid of a score difference loses too much in fp16. :class:`Objective`
holds the ``[train]`` settings a model's :meth:`~kgrec.models.base.Recommender.loss` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.config import TrainConfig

#: The CF losses ``train.loss`` accepts.
LOSSES = ("bpr", "softmax")


@dataclass(frozen=True)
class Objective:
    """What a model's training loss is made of (the loss part of ``[train]``).

    Attributes:
        loss: ``"bpr"`` (per-user negatives) or ``"softmax"`` (negatives shared by the batch).
        temperature: of the sampled softmax.
        reg_weight: LightGCN's L2 penalty on the batch's layer-0 embeddings.
        kg_loss_weight: weight of the auxiliary knowledge-edge loss (0: none).
        contrast_weight, contrast_temperature, contrast_layer: NCL's structural contrast
            (weight 0: none).
        independence_weight: KGIN's independence of its intents (weight 0: none).
    """

    loss: str = "bpr"
    temperature: float = 0.1
    reg_weight: float = 1e-4
    kg_loss_weight: float = 0.1
    contrast_weight: float = 0.0
    contrast_temperature: float = 0.1
    contrast_layer: int = 2
    independence_weight: float = 0.0

    @classmethod
    def from_config(cls, train: TrainConfig) -> "Objective":
        return cls(
            loss=train.loss,
            temperature=train.temperature,
            reg_weight=train.reg_weight,
            kg_loss_weight=train.kg_loss_weight,
            contrast_weight=train.contrast_weight,
            contrast_temperature=train.contrast_temperature,
            contrast_layer=train.contrast_layer,
            independence_weight=train.independence_weight,
        )


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    r"""Bayesian Personalised Ranking (Rendle et al., UAI 2009).

    .. math::
        \mathcal{L} = \operatorname{mean}_{b, j} -\log \sigma(s^+_b - s^-_{b,j})

    computed as ``softplus(neg - pos)``, which is stable for large differences.

    Args:
        pos_scores: ``[B]`` scores of the observed pairs.
        neg_scores: ``[B]`` or ``[B, n]`` scores of the sampled negatives.
    """
    pos = pos_scores.float()
    neg = neg_scores.float()
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return F.softplus(neg - pos).mean()


def sampled_softmax_loss(pos_scores: Tensor, neg_scores: Tensor, temperature: float = 0.1) -> Tensor:
    r"""Sampled softmax: cross-entropy of the positive against its negatives.

    .. math::
        \mathcal{L} = \operatorname{mean}_b -\log
            \frac{\exp(s^+_b / T)}{\exp(s^+_b / T) + \sum_j \exp(s^-_{b,j} / T)}

    Args:
        pos_scores: ``[B]`` scores of the observed pairs.
        neg_scores: ``[B, n]`` scores of the sampled negatives (``[B]`` is read as ``n = 1``).
        temperature: :math:`T > 0`; lower values sharpen the softmax.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    neg = neg_scores.float()
    if neg.dim() == 1:
        neg = neg.unsqueeze(-1)
    logits = torch.cat([pos_scores.float().unsqueeze(-1), neg], dim=-1) / temperature
    target = torch.zeros(logits.size(0), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def l2_regularisation(*tensors: Tensor, batch_size: int) -> Tensor:
    r"""LightGCN's regulariser on the batch's layer-0 embeddings.

    .. math:: \frac{1}{2B} \sum_t \lVert \mathbf{E}_t \rVert_F^2

    Args:
        *tensors: the embedding rows used in the batch (users, positive and negative items).
        batch_size: :math:`B`, the number of training pairs in the batch.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not tensors:
        raise ValueError("l2_regularisation needs at least one tensor")
    total = sum(t.float().pow(2).sum() for t in tensors)
    return 0.5 * total / batch_size


def kg_link_loss(
    kg_score: Callable[[Tensor, Tensor, Tensor], Tensor],
    lookup: Callable[[Tensor], Tensor],
    heads: Tensor,
    rels: Tensor,
    tails: Tensor,
    neg_tails: Tensor,
) -> Tensor:
    """BPR over knowledge-graph scores of triples against corrupted tails.

    Args:
        kg_score: ``(head_emb, rel_ids, tail_emb) -> scores`` (DistMult for kgrec's GNNs).
        lookup: global node indices -> their embeddings (:meth:`Embeddings.node`).
        heads, rels, tails: ``[B]`` global head indices, relation ids, global tail indices.
        neg_tails: ``[B]`` or ``[B, n]`` global indices of corrupted tails
            (:func:`kgrec.train.sampling.sample_tail_negatives`).
    """
    head_emb = lookup(heads)
    pos = kg_score(head_emb, rels, lookup(tails))
    neg = kg_score(head_emb, rels, lookup(neg_tails))
    return bpr_loss(pos, neg)


def structural_contrast_loss(anchor: Tensor, positive: Tensor, temperature: float) -> Tensor:
    r"""InfoNCE between two views of the same nodes: NCL's structural-neighbour contrast.

    From `"Improving Graph Collaborative Filtering with Neighborhood-enriched Contrastive
    Learning" <https://arxiv.org/abs/2202.06200>`_ (Lin et al., WWW 2022): row :math:`b` of
    ``anchor`` (a node's embedding at an even layer, which aggregates nodes of its own type that
    share neighbours with it) is pulled towards row :math:`b` of ``positive`` (the same node's
    layer-0 embedding) and pushed from the other rows, in cosine geometry:

    .. math::
        \mathcal{L} = \operatorname{mean}_b -\log
            \frac{\exp(\cos(a_b, p_b) / \tau)}{\sum_{c} \exp(\cos(a_b, p_c) / \tau)}

    Args:
        anchor, positive: ``[B, d]`` the two views of the same ``B`` distinct nodes.
        temperature: :math:`\tau > 0`.
    """
    a = F.normalize(anchor.float(), dim=-1)
    p = F.normalize(positive.float(), dim=-1)
    logits = a @ p.T / temperature
    target = torch.arange(a.size(0), device=a.device)
    return F.cross_entropy(logits, target)
