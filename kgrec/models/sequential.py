r"""Sequential recommenders: next-item prediction over each user's time-ordered history.

Two sequence encoders under one model class, registered as ``model.encoder``:

* ``sasrec``: causal self-attention, from `"Self-Attentive Sequential Recommendation"
  <https://arxiv.org/abs/1808.09781>`_ (Kang & McAuley, ICDM 2018), in RecBole 1.2.1's form
  (learned positions, post-norm Transformer blocks with GELU, LayerNorm and dropout on the
  input, the item table tied between input and output, full-softmax cross-entropy):

  .. math::
      \mathbf{H} = \mathrm{Transformer}_{\text{causal}}\big(\mathrm{LN}(\mathbf{E}_{s_{1..t}} + \mathbf{P})\big),
      \qquad \hat{y}_{t+1, i} = \mathbf{h}_t^\top \mathbf{e}_i.

* ``gru4rec``: a GRU over the same inputs, from `"Session-based Recommendations with Recurrent
  Neural Networks" <https://arxiv.org/abs/1511.06939>`_ (Hidasi et al., ICLR 2016), in
  RecBole's form (embedding dropout, GRU of width 2d, a linear layer back to d, cross-entropy
  instead of the paper's ranking losses).

**The item table** :math:`\mathbf{E}` is where the knowledge enters (:class:`SequenceItemTable`):
the item's ID embedding (``model.use_id``), plus its projected BERT description
(``model.use_text``), propagated ``model.layers`` times over the knowledge edges between items
and entities (``model.use_kg``, LightGCN's weightless normalised propagation, added to the input
as a residual). With ID embeddings alone it is plain SASRec / GRU4Rec; with text and KG it is
kgrec's KG-enhanced sequential model: an item that is rare in the logs still arrives at the
encoder with what its description and its attributes say, and the output side ranks with the
same vectors.

**Training** (:mod:`kgrec.train.sequences`) reads whole windows of a history at once, every
position predicting its next item (SASRec's original scheme), instead of one row per prefix as
RecBole does: one pass over a window of 50 items yields 50 targets for the cost of one.

**Ranking**: a user's embedding is the encoder's last hidden state over the history the model
currently holds (:meth:`SequentialRecommender.set_histories`; training sets the training history
for validation and training plus validation items for the test ranking, and the run keeps the
latter), so the dot-product head, masking and every metric are shared with the GNNs.

Not inductive: items added after training (``kgrec add-items``) cannot be embedded by this
model, and the cold-item content model is not distilled for it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.models.base import Embeddings, Recommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.models.item_item import ItemItemView
from kgrec.models.propagation import NormalisedAdjacency, PerGraphCache, symmetric_spmm

#: RecBole's initializer_range for SASRec / GRU4Rec weights.
INIT_STD = 0.02
#: Users encoded per forward pass when a whole user table is built.
USER_CHUNK = 1024


class SequenceItemTable(nn.Module):
    r"""The items' vectors for the sequence encoder: ID + text, optionally smoothed over the KG.

    .. math::
        \mathbf{x}^{(0)} = \mathbf{e}_{id} + \mathbf{W}\mathbf{f}_{text},\qquad
        \mathbf{x} = \mathbf{x}^{(0)} + \frac{1}{K}\sum_{k=1}^{K} \hat{\mathbf{A}}_{KG}^{k}\,\mathbf{x}^{(0)}

    where :math:`\hat{\mathbf{A}}_{KG}` is the symmetric normalised adjacency of the knowledge
    edges alone (items and entities; no user-item edge, so the sequence model's items do not
    see the interactions twice). The residual keeps an item without KG edges at its own input
    instead of shrinking it, as a layer mean would.

    **Only the nodes an item can hear from have rows.** The table holds the items, then every
    other node with a knowledge edge (``model.use_kg`` and ``layers > 0``); users and the
    entities left without edges (``model.kg_min_degree``) would never reach an item, so they get
    no ID embedding. On ml-100k that is 10,488 of 35,673 nodes: the per-step propagation,
    Adam's update and the gradient of the ID table shrink by the same factor, and the item
    vectors are exactly those of the propagation over the whole graph (a test holds them equal).
    With the faster dropout and the packed positions of :class:`SASRecEncoder`, kgrec-seq's
    epoch on ml-100k went from 5.3-5.7 s to 2.8-3.3 s with the step of about ``batch_size``
    targets (:func:`kgrec.train.sequences.windows_per_step`; 2 threads, AMD EPYC), and to
    2.1-2.9 s (median 2.5 s) with the masks of :func:`dropout` and RecBole's dropout sites.

    Args:
        g: the training graph (sizes, features, knowledge edges).
        dim: embedding size.
        use_id, use_text, use_kg: the three inputs, as in ``[model]``.
        layers: propagation steps :math:`K` over the KG (0: none).

    Buffers: ``nodes [R]`` the global node of each row (the items first, in catalogue order).
    """

    def __init__(self, g: GraphTensors, dim: int, *, use_id: bool, use_text: bool, use_kg: bool, layers: int):
        super().__init__()
        uses_text = use_text and g.feature_dim > 0
        if not use_id and not uses_text:
            raise KgrecError("model.use_id is false and the graph has no text features: items would have no input "
                             "representation; set model.use_id = true or build the graph with text features")
        self.num_users, self.num_items = g.num_users, g.num_items
        self.use_kg, self.layers = use_kg, layers
        items = torch.arange(g.num_users, g.num_users + g.num_items, device=g.edge_index.device)
        if use_kg and layers > 0:
            others = knowledge_edges(g).unique()
            others = others[others >= g.num_users + g.num_items]
            items = torch.cat([items, others])
        self.register_buffer("nodes", items)
        self.id_embedding = nn.Embedding(len(items), dim) if use_id else None
        if self.id_embedding is not None:
            nn.init.normal_(self.id_embedding.weight, std=INIT_STD)
        self.text_projection = nn.Linear(g.feature_dim, dim, bias=False) if uses_text else None
        self._adjacency = PerGraphCache(self._build_adjacency)
        self._text_rows_of: tuple[Tensor | None, Tensor] | None = None  # (has_text it was found for, rows)

    def _local(self, g: GraphTensors) -> Tensor:
        """``[N]`` each global node's row in this table, -1 for nodes without one."""
        local = torch.full((g.num_nodes,), -1, dtype=torch.long, device=self.nodes.device)
        local[self.nodes] = torch.arange(len(self.nodes), device=self.nodes.device)
        return local

    def _build_adjacency(self, g: GraphTensors) -> Tensor | None:
        if not self.use_kg or self.layers == 0:
            return None
        edges = self._local(g)[knowledge_edges(g)]
        edges = edges[:, (edges >= 0).all(dim=0)]
        if edges.size(1) == 0:
            return None
        return NormalisedAdjacency.from_edge_index(edges, len(self.nodes)).normalised()

    def _text_rows(self, g: GraphTensors) -> Tensor:
        """Rows whose node has a description (all rows when the graph does not say); found once
        per ``has_text`` tensor (a host sync on CUDA), not per graph: the text may change while
        the edges stay."""
        if self._text_rows_of is None or self._text_rows_of[0] is not g.has_text:
            rows = torch.arange(len(self.nodes), device=self.nodes.device)
            self._text_rows_of = (g.has_text, rows if g.has_text is None else rows[g.has_text[self.nodes]])
        return self._text_rows_of[1]

    def inputs(self, g: GraphTensors) -> Tensor:
        """``[R, dim]`` layer-0 vectors of the table's rows."""
        out = self.id_embedding.weight if self.id_embedding is not None else None
        if self.text_projection is not None:
            expected = self.text_projection.in_features
            if g.features is None or g.features.size(1) != expected:
                raise KgrecError(f"the model expects {expected}-dimensional text features but the graph has {g.feature_dim}")
            rows = self._text_rows(g)
            text = self.text_projection(g.features[self.nodes[rows]].to(self.text_projection.weight.dtype))
            if out is None:
                out = text.new_zeros(len(self.nodes), self.text_projection.out_features)
            out = out.index_add(0, rows, text.to(out.dtype))
        return out

    def forward(self, g: GraphTensors) -> Tensor:
        """``[R, dim]``, one row per node of :attr:`nodes`; the first ``num_items`` are the items."""
        x0 = self.inputs(g)
        adj = self._adjacency(g)
        if adj is None:
            return x0
        h, total = x0.float(), torch.zeros_like(x0, dtype=torch.float32)
        for _ in range(self.layers):
            h = symmetric_spmm(adj, h)
            total = total + h
        return x0 + (total / self.layers).to(x0.dtype)

    def scatter(self, rows: Tensor, num_nodes: int) -> Tensor:
        """``rows [R, d]`` placed at their global nodes of an ``[num_nodes, d]`` table, zeros elsewhere."""
        out = rows.new_zeros(num_nodes, rows.size(1))
        out[self.nodes] = rows
        return out


def knowledge_edges(g: GraphTensors) -> Tensor:
    """``[2, E]`` the edges between items and entities and among entities (no user)."""
    return g.edge_index[:, (g.edge_index >= g.num_users).all(dim=0)]


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout; on the CPU with a mask cut from 16-bit lanes of 64-bit random words.

    ``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, which took 27% of a
    kgrec-seq training step on 2 CPU threads. The CPU generator's cost is per draw: a float32
    uniform per element (kgrec until 2026-12-07) is one 32-bit draw each, while one 64-bit word
    holds four 16-bit lanes, so the mask needs a quarter of the draws (0.75 ms against 1.5 ms for
    a ``[2048, 256]`` mask). An element is kept when its lane is at least ``round(p * 2^16)``
    (as unsigned), with probability ``q = 1 - round(p * 2^16) / 2^16`` (``p`` within 2^-17),
    and kept elements are scaled by ``1 / q``: the expectation is exact. CUDA keeps PyTorch's
    fused kernel.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return nn.functional.dropout(x, p, training=True)
    cut = round(p * 65536)  # lanes below it (as unsigned) are dropped
    if cut >= 65536:
        return x * 0.0
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)
    lanes = words.view(torch.int16)[: x.numel()].view(x.shape)  # uniform over all 2^16 values
    keep = lanes.ge(cut - 32768).to(torch.float32).mul_(65536 / (65536 - cut))  # 0 or 1/q, in float32
    return x * keep.to(x.dtype)


class SASRecEncoder(nn.Module):
    """Causal self-attention over a right-padded ``[B, L, d]`` sequence of item vectors.

    The blocks are ``nn.TransformerEncoderLayer`` modules (post-norm, GELU: RecBole's SASRec),
    but their forward is written out in :meth:`block` so that every dropout mask comes from
    :func:`dropout` and dropout sits where RecBole 1.2.1's SASRec has it: on the input, the
    attention weights, the attention's output and the feed-forward output, *not* on the
    feed-forward's inner activation, where ``nn.TransformerEncoderLayer`` has one more (kgrec
    until 2026-12-07 kept it; it was a fifth of the masks drawn). The arithmetic is otherwise
    the module's own (a test holds them equal in eval mode).
    """

    def __init__(self, dim: int, max_len: int, layers: int, heads: int, inner: int, dropout: float):
        super().__init__()
        self.position = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.p = dropout
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=inner, dropout=dropout, activation="gelu", batch_first=True, layer_norm_eps=1e-12
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=INIT_STD)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        for name, p in self.blocks.named_parameters():
            if name.endswith("in_proj_weight"):
                nn.init.normal_(p, std=INIT_STD)

    def forward(self, items: Tensor, mask: Tensor) -> Tensor:
        """``items [B, L, d]``, ``mask [B, L]`` True at real positions -> ``[B, L, d]``.

        Only the real positions go through the position-wise layers (a fifth of ml-100k's
        training windows are padding); attention gathers them back into ``[B, L]``. Padding
        rows of the output are zeros.
        """
        batch, length, dim = items.shape
        positions = torch.arange(length, device=items.device)
        real = mask.reshape(-1).nonzero().squeeze(1)  # flat indices of the real positions
        x = (items + self.position(positions)).reshape(-1, dim)[real]  # [n, d]
        x = dropout(self.norm(x), self.p, self.training)
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).triu(1)
        hidden = causal | ~mask[:, None, None, :]  # [B, 1, L, L]: True = may not attend
        for layer in self.blocks.layers:
            x = self.block(layer, x, real, hidden, batch, length)
        return x.new_zeros(batch * length, dim).index_copy(0, real, x).view(batch, length, dim)

    def block(self, layer: nn.TransformerEncoderLayer, x: Tensor, real: Tensor, hidden: Tensor, batch: int, length: int) -> Tensor:
        """One post-norm block over the real positions ``x [n, d]``:
        ``x = LN(x + Drop(SelfAttn(x)))``, ``x = LN(x + Drop(FFN(x)))``."""
        attn = layer.self_attn
        dim, heads = x.size(1), attn.num_heads
        qkv = nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias)
        qkv = qkv.new_zeros(batch * length, 3 * dim).index_copy(0, real, qkv)  # padding: masked keys
        q, k, v = qkv.view(batch, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)  # each [B, H, L, d/H]
        scores = (q @ k.transpose(-1, -2)) * (dim // heads) ** -0.5
        weights = dropout(scores.masked_fill(hidden, float("-inf")).softmax(dim=-1), self.p, self.training)
        mixed = (weights @ v).transpose(1, 2).reshape(batch * length, dim)[real]
        x = layer.norm1(x + dropout(attn.out_proj(mixed), self.p, self.training))
        inner = nn.functional.gelu(layer.linear1(x))  # no dropout here: RecBole's FeedForward has none
        return layer.norm2(x + dropout(layer.linear2(inner), self.p, self.training))


class GRUEncoder(nn.Module):
    """GRU4Rec's encoder: embedding dropout, a GRU of width ``2 * dim``, a linear layer back to ``dim``."""

    def __init__(self, dim: int, layers: int, dropout: float):
        super().__init__()
        self.p = dropout
        self.gru = nn.GRU(dim, 2 * dim, num_layers=layers, batch_first=True, bias=False)
        self.out = nn.Linear(2 * dim, dim)
        for name, p in self.gru.named_parameters():
            nn.init.xavier_uniform_(p) if "weight_ih" in name else nn.init.orthogonal_(p)

    def forward(self, items: Tensor, mask: Tensor) -> Tensor:
        hidden, _ = self.gru(dropout(items, self.p, self.training))  # causal by construction; right padding is harmless
        return self.out(hidden)


class SequentialRecommender(Recommender):
    """A sequence encoder over :class:`SequenceItemTable` vectors, with the dot-product head.

    Args:
        g: the training graph.
        config: the experiment configuration (``[model]`` inputs, ``[sequence]`` sizes).
        kind: ``"sasrec"`` or ``"gru4rec"``.

    Buffers (saved with the weights): ``histories [U, max_len]`` item positions, right-padded,
    most recent last; ``history_lengths [U]``. They say which history a user's embedding is
    encoded from.
    """

    sequential = True
    kind = ""

    def __init__(self, g: GraphTensors, config: ExperimentConfig):
        super().__init__(g.num_users, g.num_items, None)
        m, s = config.model, config.sequence
        self.dim, self.max_len, self.temperature = m.dim, s.max_len, config.train.temperature
        self.future, self.future_weight = s.future, s.future_weight
        self.items = SequenceItemTable(g, m.dim, use_id=m.use_id, use_text=m.use_text, use_kg=m.use_kg, layers=m.layers)
        if self.kind == "sasrec":
            self.encoder = SASRecEncoder(m.dim, s.max_len, s.layers, s.heads, s.inner, s.dropout)
        else:
            self.encoder = GRUEncoder(m.dim, s.layers, s.dropout)
        self.register_buffer("histories", torch.zeros(g.num_users, s.max_len, dtype=torch.long))
        self.register_buffer("history_lengths", torch.zeros(g.num_users, dtype=torch.long))

    # ------------------------------------------------------------------ configuration
    @classmethod
    def check_config(cls, config: ExperimentConfig) -> None:
        """Ranges, and every switch of the GNN path that a sequence model would silently ignore."""
        m, s, t = config.model, config.sequence, config.train
        name = f'model.encoder = "{m.encoder}"'
        if m.dim <= 0:
            raise KgrecError(f"model.dim = {m.dim} must be a positive number")
        if m.layers < 0:
            raise KgrecError(f"model.layers = {m.layers} must be 0 or more (KG propagation steps of the item table)")
        if not m.use_id and not m.use_text:
            raise KgrecError("model.use_id and model.use_text are both false: items would have no input representation")
        if s.max_len < 2:
            raise KgrecError(f"sequence.max_len = {s.max_len} must be 2 or more")
        if s.layers < 1:
            raise KgrecError(f"sequence.layers = {s.layers} must be 1 or more")
        if s.future < 1:
            raise KgrecError(f"sequence.future = {s.future} must be 1 or more (1: the next item only)")
        if s.future_weight < 0:
            raise KgrecError(f"sequence.future_weight = {s.future_weight} must be 0 or more")
        if not 0.0 <= s.dropout < 1.0:
            raise KgrecError(f"sequence.dropout = {s.dropout} must lie in [0, 1)")
        if cls.kind == "sasrec":
            if s.heads < 1 or m.dim % s.heads:
                raise KgrecError(f"sequence.heads = {s.heads} must be positive and divide model.dim = {m.dim}")
            if s.inner < 1:
                raise KgrecError(f"sequence.inner = {s.inner} must be a positive number")
        if t.loss != "softmax":
            raise KgrecError(f'train.loss = "{t.loss}": {name} trains with the full softmax over the catalogue; set train.loss = "softmax"')
        ignored = {
            "model.item_item": m.item_item.lower() != "none",
            "model.normalize": m.normalize,
            "model.dropout": m.dropout > 0,
            "model.edge_dropout": m.edge_dropout > 0,
            "train.kg_loss_weight": t.kg_loss_weight > 0,
            "train.contrast_weight": t.contrast_weight > 0,
            "train.independence_weight": t.independence_weight > 0,
            'train.sampler = "neighbor"': t.sampler != "full",
            "eval.train_fraction": config.eval.train_fraction < 1.0,
        }
        for key, on in ignored.items():
            if on:
                raise KgrecError(f"{key} is a setting of the graph models that {name} does not honour; turn it off "
                                 "(sequence settings are in [sequence])")

    @classmethod
    def from_config(cls, config: ExperimentConfig, g: GraphTensors, item_item: ItemItemView | None = None) -> "SequentialRecommender":
        return cls(g, config)

    # ------------------------------------------------------------------ histories
    def set_histories(self, histories: Tensor, lengths: Tensor) -> None:
        """Hold these ``[U, max_len]`` histories (item positions, right-padded) for ranking."""
        self.histories.copy_(histories.to(self.histories.device))
        self.history_lengths.copy_(lengths.to(self.history_lengths.device))

    # ------------------------------------------------------------------ encoding
    def hidden(self, table: Tensor, seqs: Tensor, lengths: Tensor) -> Tensor:
        """``[B, L, d]`` hidden states over ``seqs [B, L]`` (item positions, right-padded).

        ``table``: :class:`SequenceItemTable`'s rows, the items first.
        """
        positions = torch.arange(seqs.size(1), device=seqs.device)
        mask = positions.unsqueeze(0) < lengths.clamp(min=1).unsqueeze(1)  # empty rows: one dummy step
        return self.encoder(table[seqs], mask)

    def last_hidden(self, table: Tensor, seqs: Tensor, lengths: Tensor) -> Tensor:
        """``[B, d]`` the state after each sequence's last item (zeros for empty histories)."""
        h = self.hidden(table, seqs, lengths)
        last = (lengths - 1).clamp(min=0)
        out = h[torch.arange(seqs.size(0), device=seqs.device), last]
        return out * (lengths > 0).unsqueeze(1).to(out.dtype)

    def forward(self, g: GraphTensors, layers: bool = False, block=None) -> tuple[Tensor, Tensor]:
        """``(final [N, d], table [N, d])``: user rows of ``final`` encode the held histories.

        Both are over the graph's global nodes; rows the item table does not hold (users in
        ``table``, entities without knowledge edges) are zeros.
        """
        rows = self.items(g)
        users = [
            self.last_hidden(rows, self.histories[lo : lo + USER_CHUNK], self.history_lengths[lo : lo + USER_CHUNK])
            for lo in range(0, self.num_users, USER_CHUNK)
        ]
        table = self.items.scatter(rows, g.num_nodes)
        final = torch.cat([torch.cat(users).to(table.dtype), table[self.num_users :]])
        return final, table

    def embeddings(self, out: tuple, g: GraphTensors, block=None) -> Embeddings:
        final, table = out
        return Embeddings(final, table, g.num_users, g.num_items)

    # ------------------------------------------------------------------ training
    def sequence_loss(self, g: GraphTensors, inputs: Tensor, targets: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        """Full-softmax next-item cross-entropy over every real position of ``inputs [B, L]``.

        ``targets [B, L]`` holds the next item of each position (-1 at padding). With
        ``sequence.future = N > 1`` a second term (``later_items``, weighted) asks the same
        softmax to put mass on each of the ``N - 1`` items after the next one too, where the
        window has them.
        """
        table = self.items(g)
        h = self.hidden(table, inputs, lengths)
        real = targets >= 0
        h = h[real]
        if self.temperature != 1.0:  # scaled on the d-wide side: a [n, I] division took ~10% of a CPU step
            h = h / self.temperature
        logits = h @ table[: self.num_items].t()
        terms = {"next_item": nn.functional.cross_entropy(logits, targets[real])}
        if self.future > 1 and self.future_weight > 0:
            later = targets.new_full((targets.size(0), targets.size(1), self.future - 1), -1)
            for j in range(1, min(self.future, targets.size(1))):
                later[:, :-j, j - 1] = targets[:, j:]
            later = later[real]  # [n, N - 1]
            known = later >= 0
            if bool(known.any()):
                log_p = torch.log_softmax(logits, dim=1).gather(1, later.clamp(min=0))
                terms["later_items"] = -self.future_weight * log_p[known].mean()
        return terms

    def loss(self, batch, emb):  # the pair-wise contract of the GNNs; sequence models train on windows
        raise KgrecError(f"{self.kind} trains on sequences (kgrec.train.sequences), not on user-item batches")


class SASRecRecommender(SequentialRecommender):
    """``model.encoder = "sasrec"``: causal self-attention over the history (see the module docstring)."""

    kind = "sasrec"


class GRU4RecRecommender(SequentialRecommender):
    """``model.encoder = "gru4rec"``: a GRU over the history (see the module docstring)."""

    kind = "gru4rec"


def is_sequential(model_or_class) -> bool:
    """Whether a model (or model class) trains on sequences."""
    return bool(getattr(model_or_class, "sequential", False))


__all__ = ["GRU4RecRecommender", "SASRecRecommender", "SequenceItemTable", "SequentialRecommender", "dropout", "is_sequential",
           "knowledge_edges"]
