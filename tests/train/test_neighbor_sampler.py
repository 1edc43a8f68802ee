"""The neighbour sampler: true neighbours only, fanouts respected, uniform, reproducible by seed."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from kgrec.models.propagation import NormalisedAdjacency
from kgrec.train.neighbor_sampler import (
    PygNeighborSampler,
    SampledSubgraph,
    TorchNeighborSampler,
    make_neighbor_sampler,
    pyg_sampler_available,
    sample_neighbors,
)


def _gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _random_csr(num_nodes: int = 60, num_edges: int = 300, seed: int = 0, isolated: int = 3):
    """An undirected random graph whose last ``isolated`` nodes have no edge, as CSR."""
    gen = _gen(seed)
    ei = torch.randint(num_nodes - isolated, (2, num_edges), generator=gen)
    ei = torch.cat([ei, ei.flip(0)], dim=1)
    adj = NormalisedAdjacency.from_edge_index(ei, num_nodes)
    return adj.crow_indices, adj.col_indices


def _check_invariants(sub: SampledSubgraph, rowptr, col, seeds, fanouts):
    """Everything a sampled subgraph must satisfy, whatever the draw."""
    rowptr, col = rowptr.cpu(), col.cpu()
    nodes, (src, dst), eid = sub.nodes.cpu(), sub.edge_index.cpu(), sub.edge_ids.cpu()
    seeds = seeds.cpu()
    # every seed is there, first, and seed_index finds it
    assert sub.num_seeds == seeds.unique().numel()
    assert set(nodes[: sub.num_seeds].tolist()) == set(seeds.tolist())
    assert torch.equal(nodes[sub.seed_index.cpu()], seeds)
    assert nodes.unique().numel() == nodes.numel()  # deduplicated
    # edges are true CSR entries: source col[e] -> target row of e
    row_of_entry = torch.repeat_interleave(torch.arange(rowptr.numel() - 1), rowptr[1:] - rowptr[:-1])
    assert torch.equal(nodes[src], col[eid])
    assert torch.equal(nodes[dst], row_of_entry[eid])
    assert eid.unique().numel() == eid.numel()  # no entry twice, so no duplicate neighbour per row
    # per hop: counts add up, targets are the previous hop's new nodes, fanouts respected
    assert sum(sub.nodes_per_hop) == nodes.numel() and sum(sub.edges_per_hop) == eid.numel()
    assert len(sub.nodes_per_hop) == len(fanouts) + 1
    node_start = [0] + list(itertools.accumulate(sub.nodes_per_hop))
    edge_start = [0] + list(itertools.accumulate(sub.edges_per_hop))
    degree = rowptr[1:] - rowptr[:-1]
    for hop, fanout in enumerate(fanouts):
        lo, hi = edge_start[hop], edge_start[hop + 1]
        targets = dst[lo:hi]
        assert bool(((targets >= node_start[hop]) & (targets < node_start[hop + 1])).all())
        assert bool((src[lo:hi] < node_start[hop + 2]).all())  # sources reached by this hop at the latest
        expanded = torch.arange(node_start[hop], node_start[hop + 1])
        counts = torch.bincount(targets - node_start[hop], minlength=expanded.numel())
        full = degree[nodes[expanded]]
        expected = full if fanout < 0 else full.clamp(max=fanout)
        assert torch.equal(counts, expected), f"hop {hop + 1}"


@pytest.mark.parametrize("fanouts", [[3], [4, 2], [2, 2, 2], [-1, 3], [100, 100]])
def test_invariants_on_a_random_graph(fanouts):
    rowptr, col = _random_csr()
    seeds = torch.tensor([0, 5, 5, 17, 58, 59, 3])  # duplicates and isolated nodes (57..59)
    sub = sample_neighbors(rowptr, col, seeds, fanouts, _gen(1))
    _check_invariants(sub, rowptr, col, seeds, fanouts)


def test_isolated_seeds_only():
    rowptr, col = _random_csr()
    sub = sample_neighbors(rowptr, col, torch.tensor([59, 58]), [5, 5], _gen())
    assert sorted(sub.nodes.tolist()) == [58, 59]
    assert sub.num_edges == 0 and sub.edges_per_hop == [0, 0] and sub.nodes_per_hop == [2, 0, 0]


def test_degree_below_fanout_takes_every_neighbour():
    # a star: node 0 with neighbours 1..4, and a hub 5 with neighbours 6..15
    edges = [(0, k) for k in range(1, 5)] + [(5, k) for k in range(6, 16)]
    ei = torch.tensor(edges).T
    adj = NormalisedAdjacency.from_edge_index(torch.cat([ei, ei.flip(0)], dim=1), 16)
    sub = sample_neighbors(adj.crow_indices, adj.col_indices, torch.tensor([0, 5]), [6], _gen())
    _check_invariants(sub, adj.crow_indices, adj.col_indices, torch.tensor([0, 5]), [6])
    neighbours_of = {0: set(), 5: set()}
    for s, d in sub.edge_index.T.tolist():
        neighbours_of[int(sub.nodes[d])].add(int(sub.nodes[s]))
    assert neighbours_of[0] == {1, 2, 3, 4}
    assert len(neighbours_of[5]) == 6 and neighbours_of[5] <= set(range(6, 16))


def test_deterministic_with_a_generator():
    rowptr, col = _random_csr()
    seeds = torch.arange(0, 40, 3)
    a = sample_neighbors(rowptr, col, seeds, [3, 2], _gen(5))
    b = sample_neighbors(rowptr, col, seeds, [3, 2], _gen(5))
    c = sample_neighbors(rowptr, col, seeds, [3, 2], _gen(6))
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.edge_ids, b.edge_ids)
    assert not torch.equal(a.edge_ids, c.edge_ids)


def test_one_sampler_many_batches_matches_fresh_samplers():
    """The global-to-local map is reset after every batch: reuse changes nothing."""
    rowptr, col = _random_csr()
    sampler = TorchNeighborSampler(rowptr, col, [3, 3])
    gen_shared, gen_fresh = _gen(2), _gen(2)
    for seeds in (torch.tensor([0, 1, 2]), torch.tensor([2, 30, 40]), torch.tensor([59, 1])):
        reused = sampler.sample(seeds, gen_shared)
        fresh = sample_neighbors(rowptr, col, seeds, [3, 3], gen_fresh)
        assert torch.equal(reused.nodes, fresh.nodes) and torch.equal(reused.edge_index, fresh.edge_index)
    assert bool((sampler._local == -1).all())


def test_uniform_over_subsets():
    """Stars of 6 leaves, fanout 2: each of the 15 pairs of leaves must come out equally often."""
    stars = 6000
    centres = torch.arange(stars) * 7
    leaves = centres.unsqueeze(1) + torch.arange(1, 7)
    ei = torch.stack([centres.repeat_interleave(6), leaves.reshape(-1)])
    adj = NormalisedAdjacency.from_edge_index(torch.cat([ei, ei.flip(0)], dim=1), stars * 7)
    sub = sample_neighbors(adj.crow_indices, adj.col_indices, centres, [2], _gen(3))
    src, dst = sub.nodes[sub.edge_index[0]], sub.nodes[sub.edge_index[1]]
    order = torch.argsort(dst * 7 + (src - dst), stable=True)
    pairs = (src - dst)[order].view(stars, 2)  # leaf numbers 1..6, per star, sorted
    counts = torch.bincount((pairs[:, 0] - 1) * 6 + (pairs[:, 1] - 1), minlength=36).view(6, 6)
    assert int(counts.tril().sum()) == 0  # two distinct leaves, in order
    observed = counts[torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)].double()
    assert observed.numel() == math.comb(6, 2)
    expected = stars / 15
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 36.1  # chi-square, 14 degrees of freedom, p = 0.001


def test_high_degree_rows_cost_no_more_than_the_fanout():
    """A hub with 100k neighbours: sampled without expanding its row (Floyd's algorithm)."""
    n = 100_001
    ei = torch.stack([torch.zeros(n - 1, dtype=torch.long), torch.arange(1, n)])
    adj = NormalisedAdjacency.from_edge_index(torch.cat([ei, ei.flip(0)], dim=1), n)
    sub = sample_neighbors(adj.crow_indices, adj.col_indices, torch.tensor([0]), [10, 1], _gen())
    _check_invariants(sub, adj.crow_indices, adj.col_indices, torch.tensor([0]), [10, 1])
    assert sub.edges_per_hop == [10, 10]  # 10 leaves, each with its single neighbour (the hub)


def test_invalid_arguments():
    rowptr, col = _random_csr()
    with pytest.raises(ValueError, match="fanouts"):
        TorchNeighborSampler(rowptr, col, [0])
    with pytest.raises(ValueError, match="seed ids"):
        sample_neighbors(rowptr, col, torch.tensor([60]), [2])
    with pytest.raises(ValueError, match="rowptr"):
        TorchNeighborSampler(rowptr, col[:-1], [2])
    with pytest.raises(ValueError, match="backend"):
        make_neighbor_sampler(rowptr, col, [2], backend="dgl")


@pytest.mark.skipif(pyg_sampler_available(), reason="pyg-lib or torch-sparse is installed here")
def test_falls_back_to_the_torch_sampler_without_pyg_lib_or_torch_sparse():
    rowptr, col = _random_csr()
    assert make_neighbor_sampler(rowptr, col, [2, 2]).backend == "torch"
    with pytest.raises(ImportError, match="pyg-lib or torch-sparse"):
        make_neighbor_sampler(rowptr, col, [2, 2], backend="pyg")


def test_auto_backend_follows_availability(monkeypatch):
    import torch_geometric.typing as pyg_typing

    rowptr, col = _random_csr()
    monkeypatch.setattr(pyg_typing, "WITH_PYG_LIB", False)
    monkeypatch.setattr(pyg_typing, "WITH_TORCH_SPARSE", False)
    assert isinstance(make_neighbor_sampler(rowptr, col, [2]), TorchNeighborSampler)


@pytest.mark.parametrize("module", ["pyg_lib", "torch_sparse"])
def test_pyg_sampler_gives_the_same_kind_of_subgraph(module):
    pytest.importorskip(module)
    rowptr, col = _random_csr()
    assert make_neighbor_sampler(rowptr, col, [3, 2]).backend == "pyg"
    seeds = torch.tensor([0, 5, 5, 17, 59])
    sub = PygNeighborSampler(rowptr, col, [3, 2]).sample(seeds)
    if sub.nodes_per_hop is not None:
        _check_invariants(sub, rowptr, col, seeds, [3, 2])
    else:  # torch-sparse reports no per-hop counts: check what does not depend on them
        assert torch.equal(sub.nodes[sub.seed_index], seeds)
        assert torch.equal(sub.nodes[sub.edge_index[0]], col[sub.edge_ids])
    every = PygNeighborSampler(rowptr, col, [-1, -1]).sample(seeds)
    ours = sample_neighbors(rowptr, col, seeds, [-1, -1])
    assert set(every.nodes.tolist()) == set(ours.nodes.tolist())
    assert set(every.edge_ids.tolist()) == set(ours.edge_ids.tolist())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda():
    rowptr, col = _random_csr()
    rowptr, col = rowptr.cuda(), col.cuda()
    seeds = torch.tensor([0, 5, 5, 17, 59], device="cuda")
    sub = sample_neighbors(rowptr, col, seeds, [3, 2], _gen(1, "cuda"))
    assert sub.nodes.is_cuda and sub.edge_index.is_cuda
    _check_invariants(sub, rowptr, col, seeds, [3, 2])
    again = sample_neighbors(rowptr, col, seeds, [3, 2], _gen(1, "cuda"))
    assert torch.equal(sub.edge_ids, again.edge_ids)
