"""The cold-start-user protocol: users the model never saw, with 0, 1, 3 or 5 interactions.

1. Hold out a random ``fraction`` of the users that have at least ``REVEAL + 1`` interactions,
   **with all of their interactions** (the model never sees them; their nodes stay in the
   graph without edges, so nothing else is renumbered).
2. Train on the rest, as usual (its own split, selection on its own validation set).
3. Each held-out user's interactions are put in time order (a seeded shuffle breaks ties, and
   orders a log without timestamps): the first ``REVEAL`` (5) are what the user *reveals*, the
   rest is the truth. ``k1``, ``k3``, ``k5`` reveal the first 1, 3, 5 of them; ``k0`` reveals
   none and gives a *text profile* instead: the mean BERT vector of the descriptions of those
   same five items (the user says what they like in words; which items are not known).
4. Every user ranks the whole catalogue with the five revealed items masked, in every setting,
   so the candidates and the truth are the same for ``k0`` to ``k5`` and the columns compare.

Methods, on the same users, candidates and truth:

* ``popularity``: training popularity (the same list for everyone);
* ``text cosine``: BERT cosine between each item and the mean unit vector of the revealed
  items (for ``k0``, the profile);
* ``kgrec (fold-in)``: the revealed items become the new user's edges and the trained encoder
  propagates (:func:`kgrec.coldstart.users.user_embedding`), then the run's ranking scores (the
  blended item-item view of the revealed items included); for ``k0``, the ten items whose
  descriptions are closest to the profile play the revealed items (what ``kgrec new-user
  --text`` does without a content model);
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from kgrec.coldstart.extend import NewEdges, extend_graph
from kgrec.coldstart.users import main_behaviour
from kgrec.errors import KgrecError
from kgrec.eval.metrics import full_ranking_metrics
from kgrec.graph.container import KnowledgeGraph
from kgrec.graph.useritem import UserItemSets
from kgrec.runs import Run

#: How many interactions a held-out user reveals at most; the settings reveal 0, 1, 3 and 5.
REVEAL = 5
SETTINGS = {"k0": 0, "k1": 1, "k3": 3, "k5": 5}
#: How many items stand for a text profile in the fold-in.
PROFILE_ITEMS = 10


def choose_cold_users(kg: KnowledgeGraph, fraction: float = 0.1, seed: int = 2024) -> list[int]:
    """A random ``fraction`` of the users with more than :data:`REVEAL` interactions (sorted)."""
    if not 0.0 < fraction < 1.0:
        raise KgrecError(f"the cold-user fraction must be in (0, 1), got {fraction}")
    counts = kg.interactions.groupby("user").size()
    eligible = np.sort(counts[counts > REVEAL].index.to_numpy())
    if len(eligible) == 0:
        raise KgrecError(f"no user has more than {REVEAL} interactions: the cold-user protocol needs some")
    n = max(1, int(round(fraction * kg.num_users)))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(eligible, size=min(n, len(eligible)), replace=False).tolist())


def drop_users(kg: KnowledgeGraph, users: list[int]) -> KnowledgeGraph:
    """``kg`` without the interactions of ``users`` (their nodes stay, without edges)."""
    from kgrec.graph.container import USER

    keep = ~kg.interactions["user"].isin(users)
    data = kg.data.clone()
    gone = torch.zeros(kg.num_users, dtype=torch.bool)
    gone[torch.as_tensor(users, dtype=torch.long)] = True
    for et in data.edge_types:
        src_t, _, dst_t = et
        ei = data[et].edge_index
        mask = torch.ones(ei.size(1), dtype=torch.bool)
        if src_t == USER:
            mask &= ~gone[ei[0]]
        if dst_t == USER:
            mask &= ~gone[ei[1]]
        data[et].edge_index = ei[:, mask].contiguous()
    manifest = dict(kg.manifest)
    manifest["name"] = f"{kg.manifest.get('name', 'graph')}-warm-users"
    return KnowledgeGraph(
        data, dict(kg.nodes), kg.interactions[keep].reset_index(drop=True), dict(kg.relations), list(kg.behaviours), manifest, kg.statements
    )


def reveal_order(kg: KnowledgeGraph, users: list[int], seed: int) -> dict[int, list[int]]:
    """Each user's distinct items in time order (ties and logs without time: a seeded shuffle)."""
    frame = kg.interactions[kg.interactions["user"].isin(users)][["user", "item", *(["timestamp"] if "timestamp" in kg.interactions else [])]]
    rng = np.random.default_rng(seed)
    frame = frame.assign(_tie=rng.random(len(frame)))
    keys = ["user", "timestamp", "_tie"] if "timestamp" in frame else ["user", "_tie"]
    frame = frame.sort_values(keys, kind="stable").drop_duplicates(["user", "item"])
    return {int(u): g["item"].astype(int).tolist() for u, g in frame.groupby("user", sort=True)}


def fold_in_many(run: Run, liked: list[list[int]]) -> Tensor:
    """``[n, d]`` fold-in embeddings of ``n`` new users at once (each list: item positions).

    All the users are added to the graph together, each linked to its items by the graph's main
    behaviour, and the trained encoder propagates once. New users do not neighbour each other;
    they only share items, whose degrees they raise a little, as a day's new users would.
    """
    g, x0 = run.graph, run.x0
    behaviour = main_behaviour(g, run.kg.behaviours)
    first = g.num_nodes
    src, dst = [], []
    for k, items in enumerate(liked):
        src += [first + k] * len(items)
        dst += [run.item_nodes[p] for p in items]
    g_ext = extend_graph(g, torch.zeros(len(liked), dtype=torch.long), NewEdges(src, dst, [behaviour] * len(src)))
    x0_ext = torch.cat([x0, x0.new_zeros(len(liked), x0.size(1))])
    with torch.inference_mode():
        return run.model.propagate(g_ext, x0_ext)[first:].float()


def _run_scores(run: Run, users: Tensor, liked: list[list[int]]) -> Tensor:
    """``[n, items]`` the run's ranking scores for new users: dot products plus, where the run
    blends an item-item view, its scores of each user's liked items (as ``vector_scores``)."""
    scores = users.to(run.z.device) @ run.item_embeddings().float().t()
    model = run.model
    if model.blends_item_item():
        view = model.item_item
        for k, items in enumerate(liked):
            known = [p for p in items if p < view.num_items]
            if known:
                prior = view.for_items(torch.as_tensor(known)).to(scores.device, scores.dtype)
                scores[k, : prior.numel()] += view.blend.to(scores.device) * prior
    return scores.cpu()


def cold_user_tables(
    run: Run, full: KnowledgeGraph, cold_users: list[int], seed: int, ks: tuple[int, ...], encoder=None
) -> tuple[dict[str, pd.DataFrame], dict]:
    """The metric table of every setting (``k0``..``k5``) for a run trained without ``cold_users``.

    ``full`` is the graph with their interactions; user and item positions are shared with the
    run's graph (:func:`drop_users` renumbers nothing).
    """
    order = reveal_order(full, cold_users, seed)
    users = [u for u in cold_users if len(order.get(u, [])) > REVEAL]
    revealed = [order[u][:REVEAL] for u in users]
    truth_pairs = [(k, i) for k, u in enumerate(users) for i in order[u][REVEAL:]]
    n, num_items = len(users), run.kg.num_items
    truth = UserItemSets.from_pairs(np.array([p[0] for p in truth_pairs]), np.array([p[1] for p in truth_pairs]), n, num_items)
    masked = UserItemSets.from_pairs(np.repeat(np.arange(n), REVEAL), np.concatenate(revealed), n, num_items)

    feats = torch.as_tensor(run.item_text_features(encoder)[:num_items])  # unit rows (zero: no text)
    popularity = torch.as_tensor(np.bincount(run.split.train["item"].to_numpy(), minlength=num_items), dtype=torch.float32)

    def profile(k: int) -> Tensor:  # [n, F] mean unit vector of the first k (k0: all five) items
        rows = [feats[r[: (k or REVEAL)]].mean(0) for r in revealed]
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)

    def closest(vectors: Tensor, table: Tensor) -> list[list[int]]:
        sims = torch.nn.functional.normalize(vectors, dim=-1) @ torch.nn.functional.normalize(table, dim=-1).t()
        return torch.topk(sims, min(PROFILE_ITEMS, table.size(0)), dim=1).indices.tolist()

    tables: dict[str, pd.DataFrame] = {}
    for name, k in SETTINGS.items():
        text_profile = profile(k)
        scorers: dict[str, Tensor] = {"popularity": popularity.unsqueeze(0).expand(n, -1), "text cosine": text_profile @ feats.t()}
        if k > 0:
            liked = [r[:k] for r in revealed]
            scorers["kgrec (fold-in)"] = _run_scores(run, fold_in_many(run, liked), liked)
        else:
            liked = closest(text_profile, feats)
            scorers["kgrec (fold-in of text-closest items)"] = _run_scores(run, fold_in_many(run, liked), liked)
        rows = {
            method: full_ranking_metrics(lambda b, s=s: s[b], truth, masked, ks=ks, progress=False) for method, s in scorers.items()
        }
        tables[name] = pd.DataFrame(rows).T
    details = {
        "cold_users": len(cold_users),
        "users_evaluated": n,
        "revealed_at_most": REVEAL,
        "truth_interactions": len(truth_pairs),
        "order": "time order, a seeded shuffle breaking ties" if "timestamp" in full.interactions else "a seeded shuffle (no timestamps)",
    }
    return tables, details


__all__ = ["PROFILE_ITEMS", "REVEAL", "SETTINGS", "choose_cold_users", "cold_user_tables", "drop_users", "fold_in_many", "reveal_order"]
