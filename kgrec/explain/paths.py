"""Knowledge-graph paths that connect a user to a recommended item, scored by the trained model.

Three shapes of path are enumerated, all over the **training graph** (held-out interactions
removed, so a path never leans on the answer it explains) and only along edges that exist in
it:

* ``knowledge``:     user -[rate]-> seen item -[genre]-> Comedy <-[genre]- recommended item
* ``collaborative``: user -[rate]-> seen item <-[rate]- another user -[rate]-> recommended item
  (the other user is "similar" through the item both took);
* ``direct``:        user -[rate]-> seen item -[sequel]-> recommended item.

When two nodes are joined by several edges (a user who viewed, clicked and bought an item;
a film whose director also produced it) the path uses the rarest relation, usually the
strongest signal.

**Score.** Each edge is scored by the cosine similarity of its endpoints' final embeddings
(the trained model's view of how related they are; cosine rather than the raw dot product so
that user-item and knowledge edges are on one scale), and a path by the mean over its edges.
A path is only as plausible as the model finds each of its steps, and the mean keeps
2-hop and 3-hop paths comparable.

**Choice.** The best path of each kind is taken first, then the best of the others, each
intermediate node (seen item, entity, other user) at most once while paths through others
are left, so that an explanation shows several kinds of reason rather than one reason
several times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.graph.container import REVERSE_PREFIX
from kgrec.models.graph_tensors import GraphTensors

from kgrec.explain.names import NodeNames

USER_TYPE, ITEM_TYPE = 0, 1
KINDS = ("knowledge", "collaborative", "direct")


@dataclass(frozen=True)
class Path:
    """One path from a user to a recommended item.

    Attributes:
        kind: ``knowledge``, ``collaborative`` or ``direct``.
        nodes: global node indices, the user first and the recommended item last.
        relations: relation name of each edge ``nodes[j] -> nodes[j + 1]``, as in the graph.
        edge_scores: cosine similarity of each edge's endpoints.
        score: mean of ``edge_scores``.
    """

    kind: str
    nodes: tuple[int, ...]
    relations: tuple[str, ...]
    edge_scores: tuple[float, ...]
    score: float

    def edges(self) -> list[tuple[int, str, int]]:
        return [(self.nodes[j], self.relations[j], self.nodes[j + 1]) for j in range(len(self.relations))]


@dataclass
class Explanation:
    """Why ``item`` is recommended to ``user``: the model's score and the best paths."""

    user: int
    item: int
    score: float
    rank: int | None
    paths: list[Path]


def relation_label(name: str) -> tuple[str, bool]:
    """``"rev_item:genre:Genre"`` -> ``("genre", True)``: a short name and whether it is reversed."""
    reverse = name.startswith(REVERSE_PREFIX)
    base = name[len(REVERSE_PREFIX) :] if reverse else name
    parts = base.split(":")
    return (parts[1] if len(parts) == 3 else base), reverse


def format_path(path: Path, names: NodeNames) -> str:
    """One line: ``user 7 --rate--> Alien [12] --genre--> Horror <--genre-- The Thing [40]``."""
    out = [names.name(path.nodes[0])]
    for (_, rel, dst), s in zip(path.edges(), path.edge_scores):
        short, reverse = relation_label(rel)
        arrow = f" <--{short}-- " if reverse else f" --{short}--> "
        out.append(arrow + names.name(dst))
    return "".join(out)


def format_explanation(exp: Explanation, names: NodeNames) -> str:
    head = f"{exp.rank}. " if exp.rank is not None else ""
    lines = [f"{head}{names.name(exp.item)}  (model score {exp.score:.3f})"]
    if not exp.paths:
        lines.append("   no path of length <= 3 in the training graph (the score comes from the embeddings alone)")
    for p in exp.paths:
        lines.append(f"   [{p.score:+.3f} {p.kind}] {format_path(p, names)}")
    return "\n".join(lines)


def explanation_record(exp: Explanation, names: NodeNames) -> dict:
    """An explanation as plain data (``kgrec explain --format json``): ids, types and names."""

    def node(n: int) -> dict:
        return {"id": names.ids[n], "type": names.kind(n), "name": names.name(n)}

    return {
        "item": names.ids[exp.item],
        "name": names.name(exp.item),
        "rank": exp.rank,
        "score": float(exp.score),
        "paths": [
            {
                "kind": p.kind,
                "score": float(p.score),
                "nodes": [node(n) for n in p.nodes],
                "relations": list(p.relations),
                "edge_scores": [float(x) for x in p.edge_scores],
            }
            for p in exp.paths
        ],
    }


class PathFinder:
    """Enumerates and scores paths on one graph with one set of final embeddings.

    Args:
        g: the training graph (or one extended with cold nodes).
        z: ``[g.num_nodes, d]`` final node embeddings of the trained model on ``g``.
    """

    def __init__(self, g: GraphTensors, z: Tensor):
        if z.size(0) != g.num_nodes:
            raise KgrecError(f"{z.size(0)} embeddings for a graph of {g.num_nodes} nodes")
        src = g.edge_index[0].cpu().numpy()
        dst = g.edge_index[1].cpu().numpy()
        rel = g.edge_type.cpu().numpy()
        order = np.lexsort((dst, src))
        self.dst, self.rel = dst[order], rel[order]
        self.indptr = np.zeros(g.num_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=g.num_nodes), out=self.indptr[1:])
        self.node_type = g.node_type.cpu().numpy()
        self.relation_names = list(g.relation_names)
        self.rarity = np.bincount(rel, minlength=len(self.relation_names))
        self.unit = torch.nn.functional.normalize(z.float().cpu(), dim=-1).numpy()
        self.model_z = z.float().cpu().numpy()
        self._name_to_id = {n: k for k, n in enumerate(self.relation_names)}

    # ------------------------------------------------------------------ graph access
    def _neighbours(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edges out of ``nodes``: (owner position, neighbour, relation id), one per node pair."""
        starts, ends = self.indptr[nodes], self.indptr[nodes + 1]
        lengths = ends - starts
        owner = np.repeat(np.arange(len(nodes)), lengths)
        idx = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        nbr, rel = self.dst[idx], self.rel[idx]
        # one edge per (owner, neighbour): the rarest relation
        order = np.lexsort((self.rarity[rel], nbr, owner))
        owner, nbr, rel = owner[order], nbr[order], rel[order]
        first = np.ones(len(owner), dtype=bool)
        first[1:] = (owner[1:] != owner[:-1]) | (nbr[1:] != nbr[:-1])
        return owner[first], nbr[first], rel[first]

    def has_edge(self, source: int, relation: str, target: int) -> bool:
        """Whether ``source -[relation]-> target`` is an edge of the graph."""
        lo, hi = self.indptr[source], self.indptr[source + 1]
        rel_id = self._name_to_id.get(relation)
        return rel_id is not None and bool(np.any((self.dst[lo:hi] == target) & (self.rel[lo:hi] == rel_id)))

    def _cos(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("nd,nd->n", self.unit[a], self.unit[b])

    # ------------------------------------------------------------------ paths
    def paths(self, user: int, item: int, k: int = 3, kinds: tuple[str, ...] = KINDS) -> list[Path]:
        """The ``k`` best paths from ``user`` to ``item`` (global node indices), best first."""
        if self.node_type[user] != USER_TYPE or self.node_type[item] != ITEM_TYPE:
            raise KgrecError(f"paths run from a user node to an item node, not from node {user} to node {item}")
        _, seen, seen_rel = self._neighbours(np.array([user]))
        keep = (self.node_type[seen] == ITEM_TYPE) & (seen != item)
        seen, seen_rel = seen[keep], seen_rel[keep]
        if len(seen) == 0:
            return []
        _, near_item, near_rel = self._neighbours(np.array([item]))
        rel_to_item = dict(zip(near_item.tolist(), near_rel.tolist()))  # m -> (item -> m) relation

        owner, mid, mid_rel = self._neighbours(seen)
        candidates: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        direct = mid == item
        if "direct" in kinds and direct.any():
            candidates.append(("direct", owner[direct], mid[direct], mid_rel[direct]))
        linked = np.isin(mid, near_item) & (mid != user) & (mid != item)
        is_user = self.node_type[mid] == USER_TYPE
        for kind, mask in (("collaborative", linked & is_user), ("knowledge", linked & ~is_user)):
            if kind in kinds and mask.any():
                candidates.append((kind, owner[mask], mid[mask], mid_rel[mask]))

        found: list[Path] = []
        for kind, own, m, m_rel in candidates:
            s = seen[own]
            c_us = self._cos(np.full(len(s), user), s)
            c_sm = self._cos(s, m)
            if kind == "direct":
                scores = (c_us + c_sm) / 2
                edge_scores = np.stack([c_us, c_sm], 1)
            else:
                c_mi = self._cos(m, np.full(len(m), item))
                scores = (c_us + c_sm + c_mi) / 3
                edge_scores = np.stack([c_us, c_sm, c_mi], 1)
            top = np.argsort(-scores, kind="stable")[: max(k * 20, 50)]  # enough for the diverse pick
            for j in top.tolist():
                nodes = (user, int(s[j]), int(m[j])) + (() if kind == "direct" else (item,))
                rels = [self.relation_names[int(seen_rel[own[j]])], self.relation_names[int(m_rel[j])]]
                if kind != "direct":
                    rels.append(_reverse(self.relation_names[rel_to_item[int(m[j])]]))
                found.append(Path(kind, nodes, tuple(rels), tuple(float(x) for x in edge_scores[j]), float(scores[j])))
        found.sort(key=lambda p: -p.score)
        return _diverse(found, k)

    def explain(self, user: int, items: list[int], k: int = 3, ranks: list[int] | None = None) -> list[Explanation]:
        """An :class:`Explanation` per item: the model's dot-product score and the ``k`` best paths."""
        out = []
        for pos, item in enumerate(items):
            score = float(self.model_z[user] @ self.model_z[item])
            out.append(Explanation(user, item, score, ranks[pos] if ranks else None, self.paths(user, item, k)))
        return out


def _reverse(name: str) -> str:
    return name[len(REVERSE_PREFIX) :] if name.startswith(REVERSE_PREFIX) else REVERSE_PREFIX + name


def _diverse(paths: list[Path], k: int) -> list[Path]:
    """The best path of each kind first (on MovieLens the collaborative paths score highest and
    would otherwise hide the knowledge ones); then best first, each intermediate node (seen
    item, entity, other user) used at most once while paths through unused ones are left; then
    the best of the rest. Returned best first."""
    chosen: list[Path] = []
    used: set[int] = set()

    def take(p: Path) -> None:
        chosen.append(p)
        used.update(p.nodes[1:-1])

    for kind in KINDS:
        best = next((p for p in paths if p.kind == kind and not used & set(p.nodes[1:-1])), None)
        if best is not None and len(chosen) < k:
            take(best)
    for p in paths:
        if len(chosen) < k and p not in chosen and not used & set(p.nodes[1:-1]):
            take(p)
    for p in paths:
        if len(chosen) < k and p not in chosen:
            take(p)
    return sorted(chosen, key=lambda p: -p.score)
