r"""TransR's triple score (Lin et al., AAAI 2015), shared by CKE and KGAT.

.. math::
    f_r(h, t) = \lVert \mathbf{M}_r \mathbf{e}_h + \mathbf{e}_r - \mathbf{M}_r \mathbf{e}_t \rVert_2^2

with one projection :math:`\mathbf{M}_r` and one vector :math:`\mathbf{e}_r` per relation; a
lower :math:`f` is a more plausible triple, so the score returned is :math:`-f`.

TransR's paper constrains the norms (:math:`\lVert\mathbf{e}\rVert_2 \le 1`,
:math:`\lVert\mathbf{M}_r\mathbf{e}\rVert_2 \le 1`); RecBole's CKE enforces them by scoring
the unit vectors of :math:`\mathbf{M}_r\mathbf{e}_h`, :math:`\mathbf{e}_r` and
:math:`\mathbf{M}_r\mathbf{e}_t` (``normalize=True``). Without it, a model whose KG vectors are
also its CF vectors (CKE) has TransR pull their norms down, against the CF loss.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def transr_score(
    projection: Tensor, relation: nn.Embedding, head_emb: Tensor, rel_ids: Tensor, tail_emb: Tensor, normalize: bool = False
) -> Tensor:
    """``-f_r(h, t)``: ``[B, d], [B], [B, d] -> [B]`` (or a ``[B, n, d]`` tail -> ``[B, n]``).

    Args:
        projection: ``[R, d, d]`` the matrices :math:`\\mathbf{M}_r`.
        relation: the relation vectors :math:`\\mathbf{e}_r` (``R`` rows of size ``d``).
        normalize: score the unit vectors of the projected head, the relation and the projected
            tail (the norm constraints, as RecBole's CKE applies them).

    Computed as ``-|| M_r (h - t) + r ||^2`` (the same value), one matrix product per relation
    present in the batch: gathering a ``[B, d, d]`` stack of projections and scattering its
    gradient back cost ten times more on a CPU.
    """
    if normalize:
        return _normalised_transr_score(projection, relation, head_emb, rel_ids, tail_emb)
    diff = (head_emb.unsqueeze(1) - tail_emb) if tail_emb.dim() == 3 else head_emb - tail_emb
    flat = diff.reshape(diff.size(0), -1, diff.size(-1))  # [B, n, d]
    out = torch.empty(flat.shape, dtype=flat.dtype, device=flat.device)
    r = relation(rel_ids).to(flat.dtype)
    for rel in torch.unique(rel_ids).tolist():
        rows = (rel_ids == rel).nonzero(as_tuple=True)[0]
        out[rows] = flat[rows] @ projection[rel].t().to(flat.dtype) + r[rows].unsqueeze(1)
    score = -out.pow(2).sum(-1)
    return score if tail_emb.dim() == 3 else score.squeeze(1)


def _normalised_transr_score(projection: Tensor, relation: nn.Embedding, head_emb: Tensor, rel_ids: Tensor, tail_emb: Tensor) -> Tensor:
    """``-|| unit(M_r h) + unit(r) - unit(M_r t) ||^2``, one matrix product per relation present."""
    unit = torch.nn.functional.normalize
    tails = tail_emb if tail_emb.dim() == 3 else tail_emb.unsqueeze(1)  # [B, n, d]
    heads = head_emb.unsqueeze(1)  # [B, 1, d]
    out = torch.empty(tails.shape, dtype=tails.dtype, device=tails.device)
    r = unit(relation(rel_ids).to(tails.dtype), dim=-1)
    for rel in torch.unique(rel_ids).tolist():
        rows = (rel_ids == rel).nonzero(as_tuple=True)[0]
        m = projection[rel].t().to(tails.dtype)
        out[rows] = unit(heads[rows] @ m, dim=-1) + r[rows].unsqueeze(1) - unit(tails[rows] @ m, dim=-1)
    score = -out.pow(2).sum(-1)
    return score if tail_emb.dim() == 3 else score.squeeze(1)


__all__ = ["transr_score"]
