"""The message-passing graph of one :class:`GraphTensors`, prepared once and cached.

Encoders are called once per training batch with the same graph; anything that depends only
on the graph's edges (the edge subset to propagate over, the sorted CSR layout of the
normalised adjacency) is built on the first call and reused. Building may synchronise with the
device (sorting, ``unique``); using the cached structure never does.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from torch import Tensor

from kgrec.models.graph_tensors import GraphTensors

T = TypeVar("T")


def message_edges(g: GraphTensors, use_kg: bool = True) -> tuple[Tensor, Tensor]:
    """The edges an encoder propagates over: all of them, or only user-item ones.

    Args:
        g: the training graph.
        use_kg: keep knowledge (entity) edges; False keeps only edges whose two endpoints are
            users or items, so entities receive and send no messages.

    Returns:
        ``(edge_index [2, E'], edge_type [E'])`` on the graph's device.
    """
    if use_kg:
        return g.edge_index, g.edge_type
    keep = (g.edge_index < g.num_users + g.num_items).all(dim=0)
    return g.edge_index[:, keep], g.edge_type[keep]


@dataclass(frozen=True)
class NormalisedAdjacency:
    """The adjacency of an undirected multigraph in CSR layout, ready for re-normalisation.

    Parallel edges (a user who both clicked and rated an item) are merged into one entry whose
    weight is their multiplicity. Every entry belongs to an unordered node pair (``pair_id``) so
    edge dropout can remove both directions of a pair at once and keep the matrix symmetric.

    Attributes:
        num_nodes: matrix size.
        crow_indices, col_indices: CSR structure of ``A^T`` (row = target, column = source).
        row: ``[nnz]`` target node of every entry (the CSR row, expanded).
        multiplicity: ``[nnz]`` float32 number of parallel edges behind each entry.
        pair_id: ``[nnz]`` id of the unordered node pair, in ``[0, num_pairs)``.
        num_pairs: number of distinct unordered node pairs.
    """

    num_nodes: int
    crow_indices: Tensor
    col_indices: Tensor
    row: Tensor
    multiplicity: Tensor
    pair_id: Tensor
    num_pairs: int

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int) -> "NormalisedAdjacency":
        """Build on the device of ``edge_index`` (synchronises once; fine, it is cached)."""
        device = edge_index.device
        src, dst = edge_index[0], edge_index[1]
        keys, multiplicity = torch.unique(dst * num_nodes + src, return_counts=True)  # sorted
        row = torch.div(keys, num_nodes, rounding_mode="floor")
        col = keys - row * num_nodes
        pair_keys = torch.minimum(row, col) * num_nodes + torch.maximum(row, col)
        pair_unique, pair_id = torch.unique(pair_keys, return_inverse=True)
        crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
        return cls(
            num_nodes=num_nodes,
            crow_indices=crow,
            col_indices=col,
            row=row,
            multiplicity=multiplicity.to(torch.float32),
            pair_id=pair_id,
            num_pairs=int(pair_unique.numel()),
        )

    def normalised(self, keep_pair: Tensor | None = None) -> Tensor:
        """``D^-1/2 A D^-1/2`` as a float32 torch.sparse CSR tensor.

        Args:
            keep_pair: optional ``[num_pairs]`` boolean mask; dropped pairs get weight 0 and
                the degrees are recomputed from the kept edges (re-normalisation). The sparsity
                structure is unchanged, so no host-device synchronisation is needed.
        """
        weight = self.multiplicity
        if keep_pair is not None:
            weight = weight * keep_pair[self.pair_id].to(weight.dtype)
        degree = torch.zeros(self.num_nodes, dtype=weight.dtype, device=weight.device)
        degree.index_add_(0, self.row, weight)
        inv_sqrt = torch.where(degree > 0, degree.clamp(min=1e-12).rsqrt(), torch.zeros_like(degree))
        values = inv_sqrt[self.row] * weight * inv_sqrt[self.col_indices]
        with warnings.catch_warnings():  # "sparse CSR support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                self.crow_indices,
                self.col_indices,
                values,
                (self.num_nodes, self.num_nodes),
                check_invariants=False,
            )


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse ``A``, whose backward is ``A @ grad`` again.

    torch's generic sparse-dense backward transposes ``A`` (a sort of all its entries) on every
    call; on ml-100k with its knowledge graph that transpose took a third of the step time.
    The normalised adjacency of an undirected graph is symmetric, so it is its own transpose.
    """

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(adj)
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        (adj,) = ctx.saved_tensors
        return None, adj @ grad


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """Multiply by a symmetric sparse matrix (no gradient for ``adj``; see :class:`_SymmetricSpMM`)."""
    return _SymmetricSpMM.apply(adj, x)


@dataclass(frozen=True)
class SparsePattern:
    """A fixed sparsity pattern ``[num_rows, num_cols]`` whose values change from call to call.

    Attention weights (KGAT) and dropped-out means (KGIN) are new values on the same edges at
    every pass. Building a torch sparse matrix from edges means sorting them, and torch's
    sparse-dense backward transposes the matrix (another sort) at every call; here both CSR
    layouts, the matrix's and its transpose's, are sorted once, and :meth:`matrices` only
    scatters the per-edge values into them. Parallel edges (two relations between one pair)
    share one entry and their values add up.

    Attributes:
        crow, col: CSR structure of the matrix (``nnz`` entries, row-major).
        t_crow, t_col, t_perm: CSR structure of the transpose, and for every entry of it the
            position of the same entry in the matrix.
        edge_entry: ``[E]`` the entry each edge given to :meth:`from_edges` adds to.
    """

    num_rows: int
    num_cols: int
    crow: Tensor
    col: Tensor
    t_crow: Tensor
    t_col: Tensor
    t_perm: Tensor
    edge_entry: Tensor

    @classmethod
    def from_edges(cls, rows: Tensor, cols: Tensor, num_rows: int, num_cols: int) -> "SparsePattern":
        keys, edge_entry = torch.unique(rows * num_cols + cols, return_inverse=True)  # sorted: row-major
        row = torch.div(keys, num_cols, rounding_mode="floor")
        col = keys - row * num_cols
        crow = torch.zeros(num_rows + 1, dtype=torch.long, device=rows.device)
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=num_rows), 0)
        t_perm = torch.argsort(col * num_rows + row)
        t_crow = torch.zeros(num_cols + 1, dtype=torch.long, device=rows.device)
        t_crow[1:] = torch.cumsum(torch.bincount(col, minlength=num_cols), 0)
        return cls(num_rows, num_cols, crow, col, t_crow, row[t_perm], t_perm, edge_entry)

    @property
    def nnz(self) -> int:
        return int(self.col.numel())

    def entry_values(self, edge_values: Tensor) -> Tensor:
        """``[nnz]`` the sum of the values of the edges behind each entry."""
        return edge_values.new_zeros(self.nnz).index_add_(0, self.edge_entry, edge_values)

    def matrices(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """The matrix with entry ``values`` (``[nnz]``, no gradient) and its transpose, both CSR float32."""
        values = values.detach().float()
        with warnings.catch_warnings():  # "sparse CSR support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            a = torch.sparse_csr_tensor(self.crow, self.col, values, (self.num_rows, self.num_cols), check_invariants=False)
            a_t = torch.sparse_csr_tensor(
                self.t_crow, self.t_col, values[self.t_perm], (self.num_cols, self.num_rows), check_invariants=False
            )
        return a, a_t


class _SpMM(torch.autograd.Function):
    """``A @ x`` with the transpose given, so the backward ``A^T @ grad`` sorts nothing."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(adj_t)
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        (adj_t,) = ctx.saved_tensors
        return None, None, adj_t @ grad.contiguous()


def spmm(adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` in float32 for a sparse ``adj`` without gradient and its transpose ``adj_t``
    (:meth:`SparsePattern.matrices`); the gradient reaches ``x`` only."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _SpMM.apply(adj, adj_t, x.float())


class PerGraphCache(Generic[T]):
    """Remembers ``build(g)`` per graph, keyed by the identity of ``g``'s edge tensors.

    The key is the pair (``g.edge_index``, ``g.edge_type``) by identity: the cache holds a
    reference to both, so their ``id`` cannot be reused by new tensors while the entry lives.
    ``GraphTensors.to(device)`` or replacing either tensor makes a new entry; the oldest
    entries are dropped beyond ``max_entries``. Tensors must not be modified in place.
    """

    def __init__(self, build: Callable[[GraphTensors], T], max_entries: int = 4):
        self._build = build
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[int, int], tuple[Tensor, Tensor, T]] = OrderedDict()

    def __call__(self, g: GraphTensors) -> T:
        key = (id(g.edge_index), id(g.edge_type))
        entry = self._entries.get(key)
        if entry is not None and entry[0] is g.edge_index and entry[1] is g.edge_type:
            return entry[2]
        value = self._build(g)
        self._entries[key] = (g.edge_index, g.edge_type, value)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
