"""The cold-start protocols: can the model recommend items nobody has interacted with yet, and
serve users it has never seen?

Items (the three settings of the cold-start literature):

1. Hold out a random ``fraction`` of the items **with all of their interactions** (they stay
   out of training, validation and model selection: the model never sees them).
2. Train on the rest, as usual (its own random split, selection on its own validation set);
   the run distils its content model (:mod:`kgrec.models.content`) from warm items only.
3. Add the held-out items back as cold items, from their description and knowledge edges only
   (:mod:`kgrec.coldstart.items`, no retraining).
4. Score, with full ranking:

   * ``cold_only``: every user who interacted with a held-out item ranks **the held-out items**
     (which new item to show to whom);
   * ``warm_only``: the warm run's test interactions, ranked among the warm items (train and
     validation masked): what the cold-start measures cost the warm catalogue;
   * ``hybrid``: the warm test interactions *and* the cold items' interactions, ranked in the
     whole catalogue (train and validation masked), with the cold items' share of the truth
     scored apart (``cold recall@K``) and the share of cold items in the top K.

Users: :mod:`kgrec.bench.coldstart_users` (0, 1, 3 or 5 interactions revealed).

Item baselines, scored on the very same users, candidates and truth:

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
from kgrec.bench.coldstart_users import choose_cold_users, cold_user_tables, drop_users
from kgrec.io import atomic_path, is_empty_or_missing, replacing_folder, write_json
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


#: The item settings of the cold-start literature, and the user settings (see the module doc).
ITEM_SETTINGS = ("cold_only", "warm_only", "hybrid")
PARTS = ("items", "users")


@dataclass
class ColdStartResult:
    """One metric table per setting: ``items[cold_only|warm_only|hybrid]``, ``users[k0..k5]``.

    Each table has one row per method and the full-ranking metrics as columns; the hybrid table
    also has ``cold recall@K`` / ``cold ndcg@K`` (the cold items' interactions alone, ranked in
    the whole catalogue) and ``cold share@K`` (how much of the top K is cold items).
    """

    items: dict[str, pd.DataFrame]
    users: dict[str, pd.DataFrame]
    details: dict

    def format(self, part: str, setting: str, cols: list[str]) -> str:
        table = (self.items if part == "items" else self.users)[setting]
        cols = [c for c in cols if c in table.columns]
        lines = [f"{'method':<40}" + "".join(f"{c:>16}" for c in cols)]
        for method, row in table.iterrows():
            lines.append(f"{method:<40}" + "".join(f"{row[c]:>16.4f}" for c in cols))
        return "\n".join(lines)

    def markdown(self) -> str:
        """``results.md``: every table, with what was held out."""
        d = self.details
        out = ["# Cold start", ""]
        if self.items:
            i = d["items"]
            out += [
                f"## Cold items: {i['cold_items']} of {i['catalogue']} items held out with all their "
                f"{i['held_out_interactions']:,} interactions (fraction {d['fraction']}, seed {d['seed']})", "",
            ]  # fmt: skip
            for setting, cols in (
                ("cold_only", ["recall@20", "ndcg@20"]),
                ("warm_only", ["recall@20", "ndcg@20"]),
                ("hybrid", ["recall@20", "ndcg@20", "cold recall@20", "cold ndcg@20", "cold share@20"]),
            ):
                out += [f"### {setting}: {ITEM_TEXT[setting]}", "", *_md_table(self.items[setting], cols), ""]
        if self.users:
            u = d["users"]
            out += [
                f"## Cold users: {u['users_evaluated']} held-out users, the first {u['revealed_at_most']} of their "
                f"interactions ({u['order']}) revealed as k1/k3/k5, or as a text profile (k0); truth: the "
                f"other {u['truth_interactions']:,}, the whole catalogue ranked", "",
            ]  # fmt: skip
            for setting, table in self.users.items():
                out += [f"### {setting}", "", *_md_table(table, ["recall@20", "ndcg@20"]), ""]
        return "\n".join(out)


ITEM_TEXT = {
    "cold_only": "each user ranks the held-out items only",
    "warm_only": "the warm run's test interactions, ranked among the warm items",
    "hybrid": "the warm test interactions and the cold items' interactions, ranked in the whole catalogue",
}


def _md_table(table: pd.DataFrame, cols: list[str]) -> list[str]:
    cols = [c for c in cols if c in table.columns]
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for method, row in table.iterrows():
        lines.append(f"| {method} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
    return lines


def run_cold_start(
    graph_dir: Path,
    config: ExperimentConfig,
    out: Path,
    *,
    fraction: float = 0.1,
    seed: int = 2024,
    ks: tuple[int, ...] = (10, 20, 50),
    encoder: Encoder | None = None,
    student: Encoder | None = None,
    parts: tuple[str, ...] = PARTS,
    progress: bool = True,
    log=print,
    force: bool = False,
    resume: bool = False,
) -> ColdStartResult:
    """Run the cold-item and cold-user protocols; their warm graphs and runs land in ``out``.

    Writes ``out/results.json`` (``items.{cold_only,warm_only,hybrid}`` and
    ``users.{k0,k1,k3,k5}``, each ``{method: metrics}``, and ``details``) and
    ``out/results.md``. An existing folder is refused unless ``resume`` (its finished warm runs
    are reused when they were trained with this configuration) or ``force`` (everything runs
    again in a staging folder that replaces the old one whole at the end).
    """
    graph_dir, out = Path(graph_dir), Path(out)
    check_experiment(config)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise KgrecError(f"unknown cold-start part {unknown[0] if unknown else '(none)'!r} (choose from {', '.join(PARTS)})")
    args = (graph_dir, config, fraction, seed, ks, (encoder, student), parts, progress, log)
    if is_empty_or_missing(out):
        return _run_cold_start(*args, out)
    if not any((out / f).is_file() for f in ("results.json", "cold_start.json", "items/run/run.json", "users/run/run.json", "run/run.json")):
        raise KgrecError("exists and is not a kgrec cold-start folder; choose another --out", path=out)
    if resume and not force:
        return _run_cold_start(*args, out, reuse=True)
    if not force:
        raise KgrecError(
            "a cold-start work folder is already there; add --resume to reuse its warm runs, "
            "or --force to run the protocol again and replace it",
            path=out,
        )
    with replacing_folder(out) as staging:
        return _run_cold_start(*args, staging, final=out)


def _run_cold_start(graph_dir, config, fraction, seed, ks, encoders, parts, progress, log, work_dir, reuse: bool = False, final: Path | None = None) -> ColdStartResult:
    encoder, student = encoders
    full = load_graph(graph_dir)
    details: dict = {"graph": str(graph_dir), "fraction": fraction, "seed": seed, "config_seed": config.train.seed}
    items: dict[str, pd.DataFrame] = {}
    users: dict[str, pd.DataFrame] = {}
    if "items" in parts:
        cold_idx = choose_cold_items(full, fraction, seed)
        log(f"cold items: {len(cold_idx)} of {full.num_items} items held out with all their interactions (seed {seed})")
        trained = _warm_run(drop_items(full, cold_idx), config, work_dir / "items", reuse, progress, log)
        if set(trained.kg.nodes[ITEM]["id"]) & set(full.nodes[ITEM]["id"].iloc[cold_idx]):
            raise KgrecError("the warm run was trained with other held-out items; use --force", path=work_dir / "items")
        items, details["items"] = _cold_item_tables(trained, full, cold_idx, seed, ks, encoder, log, student)
        details["items"]["run"] = str((final or work_dir) / "items" / "run")
    if "users" in parts:
        cold_users = choose_cold_users(full, fraction, seed)
        log(f"cold users: {len(cold_users)} of {full.num_users} users held out with all their interactions (seed {seed})")
        trained = _warm_run(drop_users(full, cold_users), config, work_dir / "users", reuse, progress, log)
        users, details["users"] = cold_user_tables(trained, full, cold_users, seed, ks, encoder)
        details["users"]["run"] = str((final or work_dir) / "users" / "run")
    result = ColdStartResult(items, users, details)
    write_json(
        work_dir / "results.json",
        {
            "items": {k: t.to_dict(orient="index") for k, t in items.items()},
            "users": {k: t.to_dict(orient="index") for k, t in users.items()},
            "details": details,
        },
    )
    with atomic_path(work_dir / "results.md") as tmp:
        tmp.write_text(result.markdown() + "\n", encoding="utf-8")
    return result


def _warm_run(warm: KnowledgeGraph, config: ExperimentConfig, folder: Path, reuse: bool, progress, log) -> Run:
    """Train (or, with ``reuse``, reload) the run on the warm graph in ``folder/{graph,run}``."""
    run_dir = folder / "run"
    if reuse and (run_dir / "results.json").is_file():
        stored = read_experiment(run_dir / "config.toml", written_by_kgrec=True)
        if stored != config:
            raise KgrecError("its warm run was trained with another configuration; use --force to run again", path=run_dir)
        log(f"reusing the warm run in {run_dir}")
    else:
        save_graph(warm, folder / "graph", force=True)  # the work folder is ours
        t0 = time.perf_counter()
        train_run(folder / "graph", config, run_dir, progress=progress, log=log, force=True)
        log(f"warm model trained in {time.perf_counter() - t0:.0f}s")
    return load_run(run_dir, device=config.train.device, added_items=False)


def _cold_item_tables(trained: Run, full: KnowledgeGraph, cold_idx: list[int], seed: int, ks, encoder, log, student=None) -> tuple[dict[str, pd.DataFrame], dict]:
    """The three item settings for a run trained without the items ``cold_idx``."""
    warm = trained.kg
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
    nu, nw, m = warm.num_users, warm.num_items, len(cold_idx)
    truth_cold = UserItemSets.from_pairs(truth_users, truth_items, nu, m)

    # Each method scores [users, warm + cold items]: what `recommend` ranks by (the dot product,
    # plus the blended item-item view where the run has one, which has nothing for a cold item).
    scorers: dict[str, torch.Tensor] = {}
    everyone = torch.arange(nu)
    if trained.content is not None:
        run = trained.without_added_items()
        run.add_cold_items(cold, features, has_text)
        scorers["kgrec (content model)"] = run.full_scores(everyone).cpu()
        if student is not None and trained.model.uses_text:  # the same, the new texts encoded by a light student
            s_features, s_has_text = encode_item_texts(cold.texts, trained.config.text, student, device=str(trained.device))
            run = trained.without_added_items()
            run.add_cold_items(cold, s_features, s_has_text)
            scorers["kgrec (content model, student text)"] = run.full_scores(everyone).cpu()
    for id_init in ("mean", "zero"):
        run = trained.without_added_items()
        run.add_cold_items(cold, features, has_text, id_init=id_init, use_content=False)
        scorers[f"kgrec (propagation, {id_init} ID)"] = run.full_scores(everyone).cpu()
    scorers.update(_baselines(trained, full, cold_idx, cold, features, seed, encoder))

    split = trained.split
    known = pd.concat([split.train, split.valid], ignore_index=True)
    known_all = UserItemSets.from_pairs(known["user"].to_numpy(), known["item"].to_numpy(), nu, nw + m)
    known_warm = UserItemSets.from_pairs(known["user"].to_numpy(), known["item"].to_numpy(), nu, nw)
    test_u, test_i = split.test["user"].to_numpy(), split.test["item"].to_numpy()
    truth_warm = UserItemSets.from_pairs(test_u, test_i, nu, nw)
    truth_hybrid = UserItemSets.from_pairs(np.concatenate([test_u, truth_users]), np.concatenate([test_i, truth_items + nw]), nu, nw + m)
    truth_cold_all = UserItemSets.from_pairs(truth_users, truth_items + nw, nu, nw + m)
    top = max(ks)

    tables: dict[str, dict] = {k: {} for k in ITEM_SETTINGS}
    for name, scores in scorers.items():
        tables["cold_only"][name] = full_ranking_metrics(lambda b, s=scores[:, nw:]: s[b], truth_cold, None, ks=ks, progress=False)
        if name in ("random", "popularity (oracle, reference)"):
            continue
        tables["warm_only"][name] = full_ranking_metrics(lambda b, s=scores[:, :nw]: s[b], truth_warm, known_warm, ks=ks, progress=False)
        row = full_ranking_metrics(lambda b, s=scores: s[b], truth_hybrid, known_all, ks=ks, progress=False)
        cold_row = full_ranking_metrics(lambda b, s=scores: s[b], truth_cold_all, known_all, ks=ks, progress=False)
        row.update({f"cold {k}": v for k, v in cold_row.items() if "@" in k})
        masked = scores.clone()
        masked[known_all.dense_rows(everyone).cpu()] = -float("inf")
        best = torch.topk(masked, min(top, nw + m), dim=1).indices
        for k in ks:
            row[f"cold share@{k}"] = float((best[:, :k] >= nw).float().mean())
        tables["hybrid"][name] = row
    details = {
        "cold_items": m,
        "catalogue": full.num_items,
        "users_with_cold_interactions": int((truth_cold.row_counts() > 0).sum()),
        "held_out_interactions": int(len(held)),
        "links": dict(cold.report),
        "warm_test": json.loads((trained.run_dir / "results.json").read_text())["test"],
        "content_model": json.loads((trained.run_dir / "results.json").read_text()).get("content_model"),
    }
    return {k: pd.DataFrame(v).T for k, v in tables.items()}, details


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
