"""K-hop neighbour sampling for mini-batch training on graphs too large for full propagation.

Given the message-passing graph in CSR form (``rowptr``, ``col``: row ``i`` lists the nodes that
send messages *to* ``i``) and a batch of seed nodes, :meth:`TorchNeighborSampler.sample` draws up
to ``fanouts[k]`` neighbours of every node reached at hop ``k`` and returns the union as one
relabelled subgraph (:class:`SampledSubgraph`): nodes ordered by the hop that first reached them
(the seeds first), edges ordered by the hop that sampled them. That order is what lets an
encoder trim every layer to the nodes that still matter (layer ``l`` of ``K`` only needs outputs
for nodes within ``K - l`` hops of a seed), as PyG's ``trim_to_layer`` does.

PyG's own sampler (``torch_geometric.sampler.NeighborSampler``, behind ``NeighborLoader`` and
``LinkNeighborLoader``) needs pyg-lib or torch-sparse, compiled packages without wheels for
every platform (none for this project's CPU-only torch). :func:`make_neighbor_sampler` uses it
when one of them is importable and otherwise :class:`TorchNeighborSampler`, written here in
plain vectorised torch, so it runs wherever torch does, on the CPU or on CUDA.

Sampling is uniform and without replacement over a row's CSR entries: a row with at most
``fanout`` entries is taken whole; a longer one gets a uniform ``fanout``-subset by Floyd's
algorithm, run for all such rows at once (a Python loop over the ``fanout`` draws, never over
nodes). Floyd's cost does not depend on the degree, so a hub with a million neighbours costs
what a node with ``fanout + 1`` does.

Complexity, for ``F`` nodes expanded at a hop with fanout ``f``: ``O(F f^2)`` time for the
draws of long rows (``f`` small: 10-25), ``O(m log m)`` to deduplicate the ``m <= F f`` sampled
neighbours (one ``unique``), ``O(m)`` for the rest. Memory: the sampled subgraph plus one
``[num_nodes]`` int64 map from global to local ids, allocated once per sampler and reset after
every batch by touching only the entries it set (8 bytes a node: 24 MB for three million).
Sizing outputs synchronises with the device a few times per hop on CUDA.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from kgrec.models.graph_tensors import SampledSubgraph


class NeighborSampler(Protocol):
    """What the mini-batch trainer needs from a sampler, whichever backend is behind it."""

    backend: str
    fanouts: list[int]

    def sample(self, seeds: Tensor, generator: torch.Generator | None = None) -> SampledSubgraph: ...


def _check_csr(rowptr: Tensor, col: Tensor, fanouts: list[int]) -> None:
    if rowptr.dim() != 1 or rowptr.numel() < 1 or col.dim() != 1:
        raise ValueError("rowptr must be [num_nodes + 1] and col [nnz]")
    if int(rowptr[-1]) != col.numel():
        raise ValueError(f"rowptr ends at {int(rowptr[-1])} but col has {col.numel()} entries")
    if any(f == 0 or f < -1 for f in fanouts):  # [] is fine: zero hops, the seeds alone
        raise ValueError(f"fanouts must be positive numbers or -1 (every neighbour), got {list(fanouts)}")


class TorchNeighborSampler:
    """Uniform K-hop neighbour sampling without replacement, in vectorised torch.

    Args:
        rowptr: ``[num_nodes + 1]`` CSR row pointers (int64).
        col: ``[nnz]`` source node of every entry; row ``i`` holds the in-neighbours of ``i``.
        fanouts: neighbours per node at hop 1, 2, ..., K; -1 takes every neighbour.

    The sampler keeps a ``[num_nodes]`` scratch map on the device of ``rowptr``, so one
    instance must not sample two batches concurrently.
    """

    backend = "torch"

    def __init__(self, rowptr: Tensor, col: Tensor, fanouts: list[int]):
        _check_csr(rowptr, col, fanouts)
        self.rowptr = rowptr.long()
        self.col = col.long()
        self.fanouts = list(fanouts)
        self.num_nodes = rowptr.numel() - 1
        self._local = torch.full((self.num_nodes,), -1, dtype=torch.long, device=rowptr.device)

    def sample(self, seeds: Tensor, generator: torch.Generator | None = None) -> SampledSubgraph:
        """Sample the ``len(fanouts)``-hop neighbourhood of ``seeds`` (global ids, any order).

        ``generator`` (on the device of ``rowptr``) makes the draws reproducible.
        """
        seeds = seeds.reshape(-1).to(self.rowptr.device, torch.long)
        if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= self.num_nodes):
            raise ValueError(f"seed ids must be in [0, {self.num_nodes})")
        unique, seed_index = torch.unique(seeds, return_inverse=True)
        device = seeds.device
        local = self._local
        node_parts, src_parts, dst_parts, eid_parts = [unique], [], [], []
        nodes_per_hop, edges_per_hop = [unique.numel()], []
        local[unique] = torch.arange(unique.numel(), device=device)
        frontier, offset, count = unique, 0, unique.numel()
        try:
            for fanout in self.fanouts:
                row, eid = self._sample_rows(frontier, fanout, generator)
                src = self.col[eid]
                fresh = src[local[src] < 0]
                new = torch.unique(fresh)  # sorted, so the relabelling is deterministic
                local[new] = torch.arange(count, count + new.numel(), device=device)
                src_parts.append(local[src])
                dst_parts.append(offset + row)  # the frontier's local ids are offset..offset+F-1
                eid_parts.append(eid)
                node_parts.append(new)
                nodes_per_hop.append(new.numel())
                edges_per_hop.append(eid.numel())
                frontier, offset, count = new, count, count + new.numel()
        finally:
            for part in node_parts:  # leave the map all -1 for the next batch
                local[part] = -1
        empty = torch.empty(0, dtype=torch.long, device=device)
        src = torch.cat(src_parts) if src_parts else empty
        dst = torch.cat(dst_parts) if dst_parts else empty
        return SampledSubgraph(
            nodes=torch.cat(node_parts),
            edge_index=torch.stack([src, dst]),
            edge_ids=torch.cat(eid_parts) if eid_parts else empty,
            seed_index=seed_index,
            num_seeds=int(unique.numel()),
            nodes_per_hop=nodes_per_hop,
            edges_per_hop=edges_per_hop,
        )

    def _sample_rows(self, frontier: Tensor, fanout: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Up to ``fanout`` distinct entries of each frontier row.

        Returns ``(row, eid)``: the position in ``frontier`` and the CSR entry of every sampled
        edge, grouped by row (rows in frontier order).
        """
        device = frontier.device
        start = self.rowptr[frontier]
        degree = self.rowptr[frontier + 1] - start
        whole = degree if fanout < 0 else torch.where(degree <= fanout, degree, torch.zeros_like(degree))
        # Rows taken whole: entry k of row r for k < degree, by the repeat/cumsum ranges trick.
        total = int(whole.sum())
        rows_whole = torch.repeat_interleave(torch.arange(frontier.numel(), device=device), whole, output_size=total)
        first = torch.cumsum(whole, 0) - whole
        offs_whole = torch.arange(total, device=device) - first[rows_whole]
        if fanout < 0:
            return rows_whole, start[rows_whole] + offs_whole
        long_rows = (degree > fanout).nonzero(as_tuple=True)[0]
        offs_long = _floyd_sample(degree[long_rows], fanout, generator)  # [R, fanout]
        rows = torch.cat([rows_whole, long_rows.repeat_interleave(fanout)])
        offs = torch.cat([offs_whole, offs_long.reshape(-1)])
        order = torch.argsort(rows, stable=True)  # group edges by target row
        rows, offs = rows[order], offs[order]
        return rows, start[rows] + offs


def _floyd_sample(n: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """A uniform ``k``-subset of ``{0, ..., n_r - 1}`` for every row ``r`` (all ``n_r > k``).

    Robert Floyd's algorithm: for ``j = n - k, ..., n - 1`` draw ``t`` uniform in ``[0, j]``
    and keep ``t``, or ``j`` itself when ``t`` was already kept. Every ``k``-subset comes out
    with probability ``1 / C(n, k)``. Vectorised over rows; ``O(R k^2)``.
    """
    rows = n.numel()
    out = torch.empty(rows, k, dtype=torch.long, device=n.device)
    if rows == 0:
        return out
    # float64 uniforms: (u * (j + 1)).floor() is uniform on [0, j] for any degree below 2^50
    uniform = torch.rand(rows, k, generator=generator, device=n.device, dtype=torch.float64)
    for step in range(k):
        j = n - k + step
        t = (uniform[:, step] * (j + 1).double()).long().clamp(max=j)
        taken = (out[:, :step] == t.unsqueeze(1)).any(dim=1)
        out[:, step] = torch.where(taken, j, t)
    return out


def pyg_sampler_available() -> bool:
    """Whether PyG's compiled neighbour sampling (pyg-lib or torch-sparse) can be imported."""
    import torch_geometric.typing as pyg_typing

    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


class PygNeighborSampler:
    """The same interface over PyG's ``NeighborSampler`` (needs pyg-lib or torch-sparse).

    PyG samples on the CPU with its own random state, so ``generator`` is ignored and runs are
    not reproducible from the seed on this path. The edges it returns are mapped back to CSR
    entries (through PyG's edge permutation) so the caller's per-edge weights still apply.
    """

    backend = "pyg"

    def __init__(self, rowptr: Tensor, col: Tensor, fanouts: list[int]):
        from torch_geometric.data import Data
        from torch_geometric.sampler import NeighborSampler as PygSampler

        _check_csr(rowptr, col, fanouts)
        self.fanouts = list(fanouts)
        self.device = rowptr.device
        num_nodes = rowptr.numel() - 1
        degree = (rowptr[1:] - rowptr[:-1]).cpu()
        self._target = torch.repeat_interleave(torch.arange(num_nodes), degree)  # CSR row of each entry
        # edge e = (source col[e] -> target row e): PyG's CSC by target is then our CSR itself
        data = Data(edge_index=torch.stack([col.cpu().long(), self._target]), num_nodes=num_nodes)
        self._sampler = PygSampler(data, num_neighbors=list(fanouts), is_sorted=True)

    def sample(self, seeds: Tensor, generator: torch.Generator | None = None) -> SampledSubgraph:
        from torch_geometric.sampler import NodeSamplerInput

        unique, seed_index = torch.unique(seeds.reshape(-1).long(), return_inverse=True)
        unique_cpu = unique.cpu()
        out = self._sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=unique_cpu))
        edge = out.edge
        perm = self._sampler.edge_permutation
        if perm is not None:
            edge = perm[edge]
        node = out.node
        if not torch.equal(node[: unique_cpu.numel()], unique_cpu):
            raise RuntimeError("PyG's sampler did not return the seeds first")
        # Which of PyG's row/col is the target has changed across versions: check, don't assume.
        if torch.equal(node[out.col], self._target[edge]):
            src, dst = out.row, out.col
        else:
            src, dst = out.col, out.row
        nodes_per_hop = edges_per_hop = None
        if out.num_sampled_nodes is not None and out.num_sampled_edges is not None:
            nodes_per_hop = [int(x) for x in out.num_sampled_nodes]
            edges_per_hop = [int(x) for x in out.num_sampled_edges]
        return SampledSubgraph(
            nodes=node.to(self.device),
            edge_index=torch.stack([src, dst]).long().to(self.device),
            edge_ids=edge.long().to(self.device),
            seed_index=seed_index.to(self.device),
            num_seeds=int(unique.numel()),
            nodes_per_hop=nodes_per_hop,
            edges_per_hop=edges_per_hop,
        )


def make_neighbor_sampler(rowptr: Tensor, col: Tensor, fanouts: list[int], backend: str = "auto") -> NeighborSampler:
    """A neighbour sampler over the CSR graph: PyG's when it can run, kgrec's own otherwise.

    Args:
        rowptr, col: the CSR graph (row ``i`` = the nodes that send messages to ``i``).
        fanouts: neighbours per node at each hop; -1 takes them all.
        backend: ``auto`` (``pyg`` when pyg-lib or torch-sparse is importable, else ``torch``),
            ``pyg`` or ``torch``.
    """
    if backend == "auto":
        backend = "pyg" if pyg_sampler_available() else "torch"
    if backend == "torch":
        return TorchNeighborSampler(rowptr, col, fanouts)
    if backend == "pyg":
        if not pyg_sampler_available():
            raise ImportError("PyG's neighbour sampling needs pyg-lib or torch-sparse")
        return PygNeighborSampler(rowptr, col, fanouts)
    raise ValueError(f"unknown sampler backend {backend!r} (auto, pyg or torch)")


def sample_neighbors(
    rowptr: Tensor, col: Tensor, seeds: Tensor, fanouts: list[int], generator: torch.Generator | None = None
) -> SampledSubgraph:
    """One-off :meth:`TorchNeighborSampler.sample` (allocates the ``[num_nodes]`` map each call)."""
    return TorchNeighborSampler(rowptr, col, fanouts).sample(seeds, generator)
