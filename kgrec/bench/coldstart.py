"""The cold-start-item protocol: can the model recommend items nobody has interacted with yet?

1. Hold out a random ``fraction`` of the items **with all of their interactions** (they stay
   out of training, validation and model selection: the model never sees them).
2. Train on the rest, as usual (its own random split, selection on its own validation set).
3. Add the held-out items back as cold items, from their description and knowledge edges only
   (:mod:`kgrec.coldstart.items`, no retraining).
4. For every user who interacted with a held-out item, rank **the held-out items** (the
   candidate set is the cold items: the question is which new item to show to whom) and score
   Recall@K and NDCG@K against the user's interactions with them.

Baselines, scored on the very same users, candidates and truth:

* ``text-only``: BERT cosine between the candidate's description and the user's training items'
  descriptions (mean of the unit vectors: the content-based recommender);
* ``popularity (KG neighbours)``: a cold item has no popularity of its own, so it gets the mean
  training popularity of the warm items it shares an entity with (the same director, genre...)
  -- the popularity estimate one actually has at cold-start time;
* ``popularity (oracle)``: the held-out items' true interaction counts, which no system can know
  for a new item; shown as a reference, not as a competitor;
* ``random``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from kgrec.coldstart.items import Encoder, cold_items_from_graph, encode_item_texts
from kgrec.config import ExperimentConfig, read_experiment
from kgrec.errors import KgrecError
from kgrec.eval.metrics import full_ranking_metrics
from kgrec.graph.container import ITEM, USER, KnowledgeGraph
from kgrec.graph.store import load_graph, save_graph
from kgrec.graph.useritem import UserItemSets
from kgrec.experiment import check_experiment
from kgrec.io import is_empty_or_missing, replacing_folder, write_json
from kgrec.runs import Run, load_run, train_run


def choose_cold_items(kg: KnowledgeGraph, fraction: float = 0.1, seed: int = 2024) -> list[int]:
    """A random ``fraction`` of the items that have at least one interaction (sorted indices)."""
    if not 0.0 < fraction < 1.0:
        raise KgrecError(f"the cold-item fraction must be in (0, 1), got {fraction}")
    with_interactions = np.unique(kg.interactions["item"].to_numpy())
    n = max(1, int(round(fraction * kg.num_items)))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(with_interactions, size=min(n, len(with_interactions)), replace=False).tolist())


def drop_items(kg: KnowledgeGraph, items: list[int]) -> KnowledgeGraph:
    """``kg`` without ``items``: their nodes, interactions and knowledge edges removed.

    Users and entities keep their indices (a user whose only interactions were with dropped
    items stays, without interactions); the remaining items are renumbered in order.
    """
    keep = np.ones(kg.num_items, dtype=bool)
    keep[np.asarray(items, dtype=np.int64)] = False
    new_index = np.full(kg.num_items, -1, dtype=np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    remap = torch.as_tensor(new_index)

    nodes = dict(kg.nodes)
    nodes[ITEM] = kg.nodes[ITEM][keep].reset_index(drop=True)
    inter = kg.interactions[keep[kg.interactions["item"].to_numpy()]].copy()
    inter["item"] = new_index[inter["item"].to_numpy()]
    data = HeteroData()
    for t, frame in nodes.items():
        data[t].num_nodes = len(frame)
    for src_t, rel, dst_t in kg.data.edge_types:
        ei = kg.data[src_t, rel, dst_t].edge_index
        if src_t == ITEM:
            ei = torch.stack([remap[ei[0]], ei[1]])
        if dst_t == ITEM:
            ei = torch.stack([ei[0], remap[ei[1]]])
        ei = ei[:, (ei >= 0).all(dim=0)]
        data[src_t, rel, dst_t].edge_index = ei.contiguous()
    manifest = dict(kg.manifest)
    manifest["node_counts"] = {t: len(f) for t, f in nodes.items()}
    manifest["name"] = f"{kg.manifest.get('name', 'graph')}-warm"
    return KnowledgeGraph(data, nodes, inter.reset_index(drop=True), dict(kg.relations), list(kg.behaviours), manifest)


@dataclass
class ColdStartResult:
    """One metric row per method, plus what was held out and how it went.

    Attributes:
        table: the protocol: each user ranks the held-out (cold) items only.
        catalogue: each user ranks every item, warm and cold (the user's warm items masked).
    """

    table: pd.DataFrame
    catalogue: pd.DataFrame
    details: dict

    def format(self, ks: tuple[int, ...] = (20,), catalogue: bool = False) -> str:
        cols = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg")]
        lines = [f"{'method':<34}" + "".join(f"{c:>12}" for c in cols)]
        for method, row in (self.catalogue if catalogue else self.table).iterrows():
            lines.append(f"{method:<34}" + "".join(f"{row[c]:>12.4f}" for c in cols))
        return "\n".join(lines)


def run_cold_start(
    graph_dir: Path,
    config: ExperimentConfig,
    work_dir: Path,
    *,
    fraction: float = 0.1,
    seed: int = 2024,
    ks: tuple[int, ...] = (10, 20, 50),
    encoder: Encoder | None = None,
    progress: bool = True,
    log=print,
    force: bool = False,
    resume: bool = False,
) -> ColdStartResult:
    """Run the protocol; the warm graph and run land in ``work_dir``.

    Writes ``work_dir/cold_start.json`` (the table and details) and returns the result. An
    existing work folder is refused unless ``resume`` (its finished warm run is reused, when it
    was trained with this configuration) or ``force`` (the protocol runs again in a staging
    folder that replaces the old one whole at the end).
    """
    graph_dir, work_dir = Path(graph_dir), Path(work_dir)
    check_experiment(config)
    if is_empty_or_missing(work_dir):
        return _run_cold_start(graph_dir, config, work_dir, fraction, seed, ks, encoder, progress, log)
    if not ((work_dir / "cold_start.json").is_file() or (work_dir / "run" / "run.json").is_file()):
        raise KgrecError("exists and is not a kgrec cold-start folder; choose another --out", path=work_dir)
    if resume and not force:
        return _run_cold_start(graph_dir, config, work_dir, fraction, seed, ks, encoder, progress, log, reuse=True)
    if not force:
        raise KgrecError(
            "a cold-start work folder is already there; add --resume to reuse its warm run, "
            "or --force to run the protocol again and replace it",
            path=work_dir,
        )
    with replacing_folder(work_dir) as staging:
        return _run_cold_start(graph_dir, config, staging, fraction, seed, ks, encoder, progress, log, final=work_dir)


def _run_cold_start(
    graph_dir, config, work_dir, fraction, seed, ks, encoder, progress, log, reuse: bool = False, final: Path | None = None
) -> ColdStartResult:
    """The protocol in ``work_dir`` (``final``: where that folder will end up, for the record)."""
    full = load_graph(graph_dir)
    cold_idx = choose_cold_items(full, fraction, seed)
    log(f"cold start: {len(cold_idx)} of {full.num_items} items held out with all their interactions (seed {seed})")
    run_dir = work_dir / "run"
    if reuse and (run_dir / "results.json").is_file():
        stored = read_experiment(run_dir / "config.toml", written_by_kgrec=True)
        if stored != config:
            raise KgrecError("its warm run was trained with another configuration; use --force to run again", path=work_dir)
        log(f"reusing the warm run in {run_dir}")
    else:
        save_graph(drop_items(full, cold_idx), work_dir / "graph", force=True)  # the work folder is ours
        t0 = time.perf_counter()
        train_run(work_dir / "graph", config, run_dir, progress=progress, log=log, force=True)
        log(f"warm model trained in {time.perf_counter() - t0:.0f}s")
    trained = load_run(run_dir, device=config.train.device, added_items=False)
    warm = trained.kg
    if set(warm.nodes[ITEM]["id"]) & set(full.nodes[ITEM]["id"].iloc[cold_idx]):
        raise KgrecError(f"the run in {run_dir} was trained with other held-out items; delete it", path=run_dir)

    cold = cold_items_from_graph(full, cold_idx, warm, trained.trained_graph)
    log("cold items: " + ", ".join(f"{k} {v:,}" for k, v in sorted(cold.report.items())))
    features, has_text = encode_item_texts(cold.texts, trained.config.text, encoder, device=str(trained.device))

    # truth: (user, cold item) pairs; users matched by id (warm keeps the user table)
    warm_user = warm.user_index
    full_users = full.nodes[USER]["id"].to_numpy()
    position = {i: k for k, i in enumerate(cold_idx)}
    held = full.interactions[full.interactions["item"].isin(position)]
    truth_users = np.array([warm_user[full_users[u]] for u in held["user"]], dtype=np.int64)
    truth_items = held["item"].map(position).to_numpy(np.int64)
    truth = UserItemSets.from_pairs(truth_users, truth_items, warm.num_users, len(cold_idx))

    # Each method scores [users, warm + cold items]; the protocol ranks the cold columns only,
    # the "whole catalogue" view ranks all of them (known warm items masked), which tells
    # whether cold items can compete with trained ones at all.
    scorers: dict[str, torch.Tensor] = {}
    if trained.content is not None:
        run = trained.without_added_items()
        run.add_cold_items(cold, features, has_text)
        scorers["kgrec (content model)"] = run.full_scores(torch.arange(warm.num_users)).cpu()
    for id_init in ("mean", "zero"):
        run = trained.without_added_items()
        run.add_cold_items(cold, features, has_text, id_init=id_init, use_content=False)
        # what `recommend` ranks by: the dot product, plus the blended item-item view where the run has one
        scorers[f"kgrec (propagation, {id_init} ID)"] = run.full_scores(torch.arange(warm.num_users)).cpu()
    scorers.update(_baselines(trained, full, cold_idx, cold, features, seed, encoder))

    known = pd.concat(list(trained.split.parts().values()), ignore_index=True)
    known_sets = UserItemSets.from_pairs(known["user"].to_numpy(), known["item"].to_numpy(), warm.num_users, warm.num_items + len(cold_idx))
    truth_all = UserItemSets.from_pairs(truth_users, truth_items + warm.num_items, warm.num_users, warm.num_items + len(cold_idx))
    rows, rows_all = {}, {}
    for name, scores in scorers.items():
        cold_cols = scores[:, warm.num_items :]
        rows[name] = full_ranking_metrics(lambda b, s=cold_cols: s[b], truth, None, ks=ks, progress=False)
        if name not in ("random", "popularity (oracle, reference)"):
            rows_all[name] = full_ranking_metrics(lambda b, s=scores: s[b], truth_all, known_sets, ks=ks, progress=False)
    table = pd.DataFrame(rows).T
    catalogue = pd.DataFrame(rows_all).T
    details = {
        "graph": str(graph_dir),
        "run": str((final or work_dir) / "run"),
        "fraction": fraction,
        "seed": seed,
        "cold_items": len(cold_idx),
        "candidates": "the held-out items only",
        "users_evaluated": int(table["num_users"].iloc[0]),
        "held_out_interactions": int(len(held)),
        "links": dict(cold.report),
        "warm_test": json.loads((run_dir / "results.json").read_text())["test"],
    }
    result = ColdStartResult(table, catalogue, details)
    write_json(
        work_dir / "cold_start.json",
        {"cold_candidates": table.to_dict(orient="index"), "whole_catalogue": catalogue.to_dict(orient="index"), "details": details},
    )
    return result


def _baselines(trained: Run, full: KnowledgeGraph, cold_idx: list[int], cold, features: torch.Tensor, seed: int, encoder: Encoder | None = None) -> dict[str, torch.Tensor]:
    """Scores ``[users, warm + cold items]`` of the text-only, popularity and random baselines."""
    warm, g = trained.kg, trained.trained_graph
    num_users, m = warm.num_users, len(cold_idx)
    train = trained.split.train
    train_users = torch.as_tensor(train["user"].to_numpy().copy())
    train_items = torch.as_tensor(train["item"].to_numpy().copy())

    # text-only: mean unit BERT vector of the user's training items . candidate's unit vector
    if g.features is not None:
        item_feats = g.features[g.num_users : g.num_users + g.num_items].float().cpu()
    else:
        from kgrec.text.features import node_text

        texts = [node_text(a, b) for a, b in zip(warm.nodes[ITEM]["label"], warm.nodes[ITEM]["text"])]
        item_feats, _ = encode_item_texts(texts, trained.config.text, encoder)
    all_feats = torch.nn.functional.normalize(torch.cat([item_feats, features.float().cpu()]), dim=-1)
    profile = torch.zeros(num_users, all_feats.size(1)).index_add_(0, train_users, all_feats[train_items])
    counts = torch.bincount(train_users, minlength=num_users).clamp(min=1)
    text = (profile / counts.unsqueeze(1)) @ all_feats.T

    # popularity through the knowledge graph: mean training popularity of warm items sharing an entity
    popularity = np.bincount(train["item"].to_numpy(), minlength=warm.num_items).astype(np.float64)
    src, dst = g.edge_index[0].cpu().numpy(), g.edge_index[1].cpu().numpy()
    is_item = (dst >= g.num_users) & (dst < g.num_users + g.num_items)
    entity_items = pd.DataFrame({"entity": src[is_item], "item": dst[is_item] - g.num_users})
    entity_items = entity_items[entity_items["entity"] >= g.num_users + g.num_items]
    links = cold.links[cold.links["node"] >= g.num_users + g.num_items][["item", "node"]].rename(columns={"item": "cold", "node": "entity"})
    joined = links.merge(entity_items, on="entity").drop_duplicates(["cold", "item"])
    kg_pop = np.zeros(m)
    if len(joined):
        means = joined.assign(pop=popularity[joined["item"].to_numpy()]).groupby("cold")["pop"].mean()
        kg_pop[means.index.to_numpy()] = means.to_numpy()

    oracle = full.interactions[full.interactions["item"].isin(cold_idx)]["item"].value_counts()
    oracle_pop = np.array([oracle.get(i, 0) for i in cold_idx], dtype=np.float64)
    rng = torch.Generator().manual_seed(seed)

    def per_user(cold_scores: np.ndarray) -> torch.Tensor:  # the same scores for every user
        v = np.concatenate([popularity, cold_scores])
        return torch.as_tensor(v, dtype=torch.float32).unsqueeze(0).expand(num_users, -1)

    return {
        "text-only (BERT cosine)": text,
        "popularity (KG neighbours)": per_user(kg_pop),
        "popularity (oracle, reference)": per_user(oracle_pop),
        "random": torch.rand(num_users, warm.num_items + m, generator=rng),
    }
