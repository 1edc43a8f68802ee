"""Layer-0 node representations: a learnable ID embedding plus projected BERT features.

Collaborative filtering needs a free vector per node (the ID embedding, as in LightGCN); the
text features let nodes with a description start from what their text says, which is what
helps items and entities with few interactions. Either part can be switched off to measure
what it contributes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.errors import KgrecError
from kgrec.models.graph_tensors import GraphTensors

#: Standard deviation of the ID embedding initialisation (LightGCN's reference code uses 0.1).
ID_INIT_STD = 0.1


class NodeInput(nn.Module):
    r"""Layer-0 embedding of every node.

    .. math::
        \mathbf{x}^{(0)}_i = \mathbf{e}_i + [\text{has\_text}_i]\, \mathbf{W} \mathbf{f}_i

    where :math:`\mathbf{e}_i` is a learnable ID embedding (normal init, std 0.1) and
    :math:`\mathbf{f}_i` the node's BERT feature row. The projection has no bias, so nodes
    without text get no constant offset.

    Args:
        num_nodes (int): number of nodes (users + items + entities).
        dim (int): embedding size.
        feature_dim (int): width of the BERT features; 0 when the graph has none.
        use_id (bool): learn an ID embedding per node.
        use_text (bool): add the projected text features. With ``feature_dim == 0`` this falls
            back to ID embeddings only and sets :attr:`text_fallback` (the trainer logs it).

    Attributes:
        uses_id, uses_text (bool): which parts are actually used.
        text_fallback (bool): text was asked for but the graph has no features.
    """

    def __init__(
        self,
        num_nodes: int,
        dim: int,
        feature_dim: int,
        use_id: bool = True,
        use_text: bool = True,
    ):
        super().__init__()
        if not use_id and not use_text:
            raise KgrecError(
                "model.use_id and model.use_text are both false: nodes would have no input "
                "representation; enable at least one of them"
            )
        self.num_nodes = num_nodes
        self.dim = dim
        self.text_fallback = use_text and feature_dim == 0
        self.uses_text = use_text and feature_dim > 0
        self.uses_id = use_id
        if not self.uses_id and not self.uses_text:
            raise KgrecError(
                "model.use_id is false but the graph has no text features, so nodes would have "
                "no input representation; set model.use_id = true or build the graph with "
                "text features"
            )
        self.id_embedding = nn.Embedding(num_nodes, dim) if use_id else None
        self.text_projection = nn.Linear(feature_dim, dim, bias=False) if self.uses_text else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.id_embedding is not None:
            nn.init.normal_(self.id_embedding.weight, std=ID_INIT_STD)
        if self.text_projection is not None:
            self.text_projection.reset_parameters()

    def forward(self, g: GraphTensors, nodes: Tensor | None = None) -> Tensor:
        """The ``[num_nodes, dim]`` layer-0 embeddings of graph ``g``, or only the rows of ``nodes``.

        With ``nodes`` (a sampled block's nodes) the ID embedding is gathered and the text
        projection applied to those rows alone, so a mini-batch step never materialises the
        whole table; row for row it equals ``self(g)[nodes]``.
        """
        if g.num_nodes != self.num_nodes:
            raise KgrecError(
                f"the model was built for {self.num_nodes} nodes but the graph has "
                f"{g.num_nodes}; was it trained on a different graph?"
            )
        if self.text_projection is not None:
            expected = self.text_projection.in_features
            if g.features is None or g.features.size(1) != expected:
                raise KgrecError(f"the model expects {expected}-dimensional text features but the graph has {g.feature_dim}")
        if nodes is not None:
            return self._node_rows(g, nodes)
        out: Tensor | None = None
        if self.id_embedding is not None:
            out = self.id_embedding.weight
        if self.text_projection is not None:
            # Project only the rows that have text: on knowledge graphs most nodes (entities,
            # users) have none, and projecting their zero rows dominated the step time.
            rows = self._text_rows(g)
            text = self.text_projection(g.features[rows].to(self.text_projection.weight.dtype))
            if out is None:
                out = text.new_zeros(g.num_nodes, self.dim)
            out = out.index_add(0, rows, text.to(out.dtype))
        assert out is not None
        return out

    def _node_rows(self, g: GraphTensors, nodes: Tensor) -> Tensor:
        out: Tensor | None = None
        if self.id_embedding is not None:
            out = self.id_embedding(nodes)
        if self.text_projection is not None:
            text = self.text_projection(g.features[nodes].to(self.text_projection.weight.dtype))
            if g.has_text is not None:  # nodes without text get no projection, as in the whole table
                text = text * g.has_text[nodes].unsqueeze(-1).to(text.dtype)
            out = text if out is None else out + text.to(out.dtype)
        assert out is not None
        return out

    def _text_rows(self, g: GraphTensors) -> Tensor:
        """Indices of nodes with text, found once per ``has_text`` tensor (a host sync on CUDA).

        The cache holds the tensor itself and compares identity: keyed on ``id()`` (kgrec until
        2026-12-07), a new graph's tensor could take a freed one's id and get its rows (15 of 200
        same-size graphs in ``tests/models/test_inputs.py``).
        """
        cached = getattr(self, "_rows_of", None)
        if cached is None or cached[0] is not g.has_text or cached[1].device != g.features.device:
            if g.has_text is None:
                rows = torch.arange(g.num_nodes, device=g.features.device)
            else:
                rows = g.has_text.nonzero(as_tuple=True)[0]
            self._rows_of = (g.has_text, rows)
        return self._rows_of[1]

    def extra_repr(self) -> str:
        return (
            f"num_nodes={self.num_nodes}, dim={self.dim}, uses_id={self.uses_id}, "
            f"uses_text={self.uses_text}, text_fallback={self.text_fallback}"
        )
