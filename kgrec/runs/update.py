"""``kgrec update``: fold new interactions, users and items into a trained run, without retraining.

::

    kgrec update --run RUN --interactions NEW.csv [--rdf NEW.ttl] --out RUN2

1. **Read** the new log (and RDF) exactly as the run's graph read its own, and grow a copy of
   the graph (:mod:`kgrec.graph.append`: the build's checks and strict/lenient rules, a build
   report; a new item needs RDF). The grown graph is saved inside the new run, ``RUN2/graph/``,
   so the new run is whole by itself and the parent's graph is never touched.
2. **Split** the new user-item pairs by the run's own ``[eval]`` settings (the same protocol,
   ratios and seed, per user over the new pairs) and add them to the parent's split: the new
   run validates and tests on old and new interactions alike.
3. **Grow the model** (:mod:`kgrec.models.grow`): every node the parent had keeps its trained
   ID row (moved to its new index), a new item starts from the mean trained item ID plus its
   own text, a new user from a zero ID row (the propagation of their items alone) or the mean
   layer-0 embedding of their training items (``update.user_init``), a new entity from its
   text and neighbours; the text projection and every other weight are the parent's. The item-item view (EASE) is a closed form of the
   training history, so it is fitted again on the grown history, and its blend weight chosen
   again on validation.
4. **Fine-tune** a bounded number of passes over the new interactions, replaying old ones and
   distilling what the parent knew (:mod:`kgrec.train.update`); the validation-best pass is
   kept (pass 0, no step at all, included).
5. **Write** the new run: a normal run folder (``kgrec recommend/evaluate/explain`` and
   ``kgrec.load_run`` open it) plus ``update.json`` -- the parent, what was added (counts and
   the build report), the settings, the steps taken, the seconds -- and ``run.json`` names the
   parent. ``results.json`` has the validation and test metrics; not the test set's breakdown
   beyond accuracy nor ``curves.png`` (each costs more than the fine-tuning; ``metrics.jsonl``
   holds every pass). The parent's content model for cold items and its items added with
   ``kgrec add-items`` are carried over (the content model is not distilled again: that costs
   about a quarter of a training run; train again to refresh it).

The new run is assembled in a staging folder beside ``--out`` and moved into place when it is
complete: an update killed at any point leaves no ``--out`` folder (only the hidden staging
folder, which the next attempt clears) and, like every update, leaves the parent run as it
was. An ``--out`` that exists, or a ``--run`` that is not a finished run, stops before anything
is written.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from kgrec.coldstart.items import encode_item_texts
from kgrec.config import ExperimentConfig, UpdateConfig, read_experiment, to_dict
from kgrec.device import resolve_device
from kgrec.errors import KgrecError
from kgrec.eval.sets import SplitSets
from kgrec.eval.splits import Split, make_split, read_split, thin_training
from kgrec.experiment import check_experiment, check_for_graph, load_experiment
from kgrec.explain.names import NodeNames
from kgrec.graph.append import append_spec, append_tables, node_map
from kgrec.graph.container import ITEM, KnowledgeGraph
from kgrec.graph.store import save_graph
from kgrec.ingest import ingest
from kgrec.io import replacing_folder, write_json
from kgrec.models.content import META_FILE, WEIGHTS_FILE
from kgrec.models.grow import ID_ROWS, VIEW, carry_over, new_node_mask, new_node_rows
from kgrec.models.sequential import is_sequential
from kgrec.runs.added import has_added, read_added, write_added
from kgrec.runs.folder import read_run_meta, run_graph, start_run_folder
from kgrec.runs.run import Run
from kgrec.runs.training import prepare_model
from kgrec.text.features import build_node_features, node_texts
from kgrec.text.tuning import FOLDER as TUNED_TEXT
from kgrec.train.checkpoint import LoopState, save_weights
from kgrec.train.blend import select_blend
from kgrec.train.device import seed_everything
from kgrec.train.loop import run_summary
from kgrec.train.update import Teacher, fine_tune, fold_in, remembering
from kgrec.train.view import target_pairs

#: What ``kgrec update`` adds to a run folder: the parent, what was added, the steps taken.
UPDATE_FILE = "update.json"
#: Where the grown graph lives inside the new run.
GRAPH_FOLDER = "graph"


def check_update_target(parent: Path, out: Path) -> dict:
    """Refuse, before any work, a ``--run`` that is not a finished run and an ``--out`` that exists.

    Returns the parent's ``run.json``.
    """
    parent, out = Path(parent), Path(out)
    if out.exists() or out.is_symlink():
        raise KgrecError("already exists; kgrec update writes a new run and never into an existing folder or file: choose another --out", path=out)
    meta = read_run_meta(parent)
    if not (parent / "results.json").is_file() or not (parent / "model.safetensors").is_file():
        raise KgrecError("is not a finished run (no results.json or model.safetensors): finish it with `kgrec train --resume`", path=parent)
    if out.resolve() == parent.resolve() or parent.resolve() in out.resolve().parents:
        raise KgrecError("--out lies inside the parent run, which kgrec update never changes: choose a folder outside it", path=out)
    return meta


def update_run(
    parent_dir: str | Path,
    interactions: str | Path,
    out: str | Path,
    *,
    rdf: list[str | Path] | None = None,
    lenient: bool = False,
    item_iri: str | None = None,
    link: str | Path | None = None,
    settings: UpdateConfig | None = None,
    graph: str | Path | None = None,
    device: str = "auto",
    log=print,
) -> dict:
    """Fold a new interaction log (and RDF) into the run ``parent_dir``; write the new run ``out``.

    Args:
        parent_dir: a finished run folder (never changed).
        interactions: the new interaction log (any format ``kgrec build`` reads, read with the
            graph's own column settings).
        out: the new run folder; must not exist.
        rdf: RDF about new items (and anything else the graph should learn).
        lenient: drop bad records and new items without RDF (counted) instead of stopping.
        item_iri, link: a matching rule for the new items instead of the graph's.
        settings: the ``[update]`` settings (default: the parent run's configuration's).
        graph: the parent's graph folder, if it moved.

    Returns:
        the new run's ``results.json`` content, with ``update`` (what ``update.json`` holds).
    """
    t0 = time.perf_counter()
    parent_dir, out = Path(parent_dir), Path(out)
    check_update_target(parent_dir, out)
    scenes = read_experiment(parent_dir / "config.toml", written_by_kgrec=True).scenes.mode
    if scenes != "off":
        raise KgrecError(f"scenes.mode = {scenes!r}: kgrec update does not grow a model's scene parts yet; train it again", path=parent_dir / "config.toml")
    parent, encoder, view = _load_parent(parent_dir, device, graph)
    config = copy.deepcopy(parent.config)
    if settings is not None:
        config.update = copy.deepcopy(settings)
    check_experiment(config)
    if is_sequential(parent.model):
        raise KgrecError(f"model.encoder = {config.model.encoder!r} is a sequential model; kgrec update grows graph models only: train it again")

    spec = append_spec(parent.kg, interactions, rdf, lenient=lenient, item_iri=item_iri, link=link)
    tables = ingest(spec)
    kg = append_tables(parent.kg, tables, lenient=lenient, rdf=spec.rdf)
    check_for_graph(config, kg)
    log(tables.report.format())
    rows = torch.as_tensor(node_map(parent.kg, kg))
    split, fresh = grown_split(parent.kg, kg, parent.split, config)
    added = dict(kg.manifest["appends"][-1]["added"]) | {"pairs": {name: len(part) for name, part in fresh.parts().items()}}
    if not len(fresh.train):
        raise KgrecError("the new interactions add no user-item pair to train on (all of them are already in the run)", path=interactions)
    log(
        f"added {added['users']:,} users, {added['items']:,} items, {added['entities']:,} entities, "
        f"{added['interactions']:,} interactions ({added['pairs']['train']:,} new training pairs, "
        f"{added['pairs']['valid']:,} validation, {added['pairs']['test']:,} test), {added['triples']:,} triples"
    )
    features = grown_features(parent, kg, rows, config, encoder)

    with replacing_folder(out) as staging:
        device_ = parent.device
        save_graph(kg, staging / GRAPH_FOLDER)
        kg.manifest["content_hash"] = _hash_of(staging / GRAPH_FOLDER)  # what run.json records, as for any run
        start_run_folder(staging, staging / GRAPH_FOLDER, kg, config, split, device_, 1)
        meta = json.loads((staging / "run.json").read_text(encoding="utf-8"))
        meta.update(graph=str((out / GRAPH_FOLDER).resolve()), parent=str(parent_dir.resolve()), update=UPDATE_FILE)
        write_json(staging / "run.json", meta)

        generator = seed_everything(config.train.seed, device_)
        model, g = prepare_model(kg, config, split, device_, features=features)
        grow_model(model, parent, g, rows, split, config.update.user_init, view)
        uc = config.update
        teacher = Teacher.from_parent(parent.z, parent.trained_graph, rows) if uc.distill_weight > 0 or uc.structure_weight > 0 else None
        sets = SplitSets.from_split(split, g.num_users, g.num_items, device_)
        new_pairs, old_pairs = _pairs(fresh.train), _pairs(parent.split.train)
        with remembering(model):  # the view's validation scores, computed once for the passes and the blend
            folded = fold_in(model, g, sets, new_pairs, new_node_mask(rows, g.num_nodes), config, device=device_, generator=generator, log=log)
            tuned = fine_tune(model, g, sets, new_pairs, old_pairs, teacher, config, staging, device=device_, generator=generator, log=log)
            emb = model.infer(g)
            valid, item_item = tuned["valid"], None
            if model.item_item is not None:  # the view was fitted on the grown history; its weight again on validation
                item_item = _choose_blend(model, emb, sets, config, tuned["valid"])
                valid = item_item.pop("valid")
        save_weights(model, staging / "model.safetensors")
        # the test metrics (no breakdown beyond accuracy and no curves.png: they cost more than the
        # fine-tuning itself; `kgrec evaluate` ranks the test set, metrics.jsonl holds the passes)
        test = sets.evaluate(model, emb, "test", config.eval.ks, config.eval.batch_size)
        state = LoopState(epoch=tuned["epochs_run"], best_epoch=tuned["selected_epoch"], epoch_times=[tuned["seconds_per_epoch"]] * tuned["epochs_run"])
        results = run_summary(state, config.eval.metric, valid, test, t0, device_, config.train.seed)
        if item_item is not None:
            results["item_item"] = item_item
        carried = _carry_extras(parent_dir, staging, kg)
        record = {
            "parent": {
                "run": str(parent_dir.resolve()),
                "graph_hash": parent.kg.manifest.get("content_hash"),
                "created": read_run_meta(parent_dir).get("created"),
            },
            "inputs": tables.inputs,
            "added": added,
            "report": tables.report.to_dict(),
            "settings": to_dict(config.update),
            "fold_in": folded,
            "fine_tuning": tuned,
            "carried_over": carried,
            "graph": {"nodes": kg.num_nodes, "users": kg.num_users, "items": kg.num_items, "content_hash": kg.manifest["content_hash"]},
        }
        record["seconds"] = time.perf_counter() - t0
        results["train_seconds"] = record["seconds"]
        results["update"] = record
        write_json(staging / UPDATE_FILE, record)
        write_json(staging / "results.json", results)
    log(f"updated run written to {out} in {record['seconds']:.1f}s (parent {parent_dir} unchanged)")
    return results


def _choose_blend(model, emb, sets: SplitSets, config: ExperimentConfig, carried: dict) -> dict:
    """The item-item view's blend weight on validation: the best of the shares training tries
    and the parent's weight (what the passes were selected with, ``carried`` its metrics)."""
    ec = config.eval
    weight = float(model.item_item.blend)
    chosen = select_blend(model, emb, sets.valid, sets.train, ec.metric, ec.ks, ec.batch_size)
    kept = carried[ec.metric] > chosen["valid"][ec.metric]
    if kept:
        model.item_item.blend.fill_(weight)
        chosen.update(share=None, blend=weight, valid=carried)
    return {"kind": config.model.item_item, "l2": config.model.item_item_l2, "parent_blend": weight, "kept_parent_blend": kept,
            "valid_with_parent_blend": carried, **chosen}  # fmt: skip


def grown_split(parent_kg: KnowledgeGraph, kg: KnowledgeGraph, parent_split: Split, config: ExperimentConfig) -> tuple[Split, Split]:
    """``(the new run's split, the new pairs' own split)``.

    The new user-item pairs (target behaviours, pairs the parent's graph did not have) are
    split by the run's ``[eval]`` settings, per user, and appended to the parent's split. Users
    and items keep their positions in a grown graph, so the parent's split holds as it is.
    """
    ec, events = config.eval, config.train.target_events
    old = target_pairs(parent_kg, events)
    pairs = target_pairs(kg, events)
    old_keys = old["user"].to_numpy() * kg.num_items + old["item"].to_numpy()
    new = pairs[~np.isin(pairs["user"].to_numpy() * kg.num_items + pairs["item"].to_numpy(), old_keys)].reset_index(drop=True)
    empty = pd.DataFrame({"user": pd.Series(dtype="int64"), "item": pd.Series(dtype="int64")})
    fresh = make_split(new, ec.split, ec.ratios, ec.split_seed) if len(new) else Split(empty, empty, empty, ec.split)
    if ec.train_fraction < 1.0 and len(new):
        fresh = thin_training(fresh, ec.train_fraction, ec.split_seed)

    def joined(a: pd.DataFrame | None, b: pd.DataFrame | None) -> pd.DataFrame | None:
        parts = [p for p in (a, b) if p is not None]
        return pd.concat(parts, ignore_index=True)[["user", "item"]] if parts else None

    grown = Split(
        joined(parent_split.train, fresh.train), joined(parent_split.valid, fresh.valid), joined(parent_split.test, fresh.test),
        "imported", joined(parent_split.withheld, fresh.withheld),
    )  # fmt: skip
    return grown, fresh


def _load_parent(run_dir: Path, device: str, graph: str | Path | None) -> tuple[Run, object | None, dict]:
    """The parent run (as :func:`kgrec.runs.load_run` loads it, without its added items and its
    item-item view) and the text encoder its features came from (None without text), loaded
    once for both graphs, and the trained view's weights (its blend)."""
    meta = read_run_meta(run_dir)
    config = load_experiment(run_dir / "config.toml", written_by_kgrec=True)
    kg, _ = run_graph(run_dir, meta, graph)
    dev = resolve_device(device)
    split = read_split(run_dir / "split", kg.user_index, kg.item_index)
    encoder = features = None
    if config.model.use_text:
        from kgrec.text.encoder import TextEncoder

        t = config.text
        encoder = TextEncoder(t.model, device=str(dev), batch_size=t.batch_size, max_length=t.max_length, cache_dir=Path(t.cache_dir) if t.cache_dir else None)
        features = build_node_features(kg, t, device=str(dev), encoder=encoder)
    # without the item-item view: the update fits it again on the grown history, and its blend
    # weight again on validation, so fitting the parent's would be time spent for nothing
    bare = copy.deepcopy(config)
    bare.model.item_item = "none"
    model, g = prepare_model(kg, bare, split, dev, features=features)
    weights = load_file(str(run_dir / "model.safetensors"), device=str(dev))
    view = {k: v for k, v in weights.items() if k.startswith(VIEW)}
    try:
        model.load_state_dict({k: v for k, v in weights.items() if k not in view})
    except RuntimeError as e:
        raise KgrecError(f"the weights do not match the model that config.toml describes ({e})", path=run_dir / "model.safetensors") from None
    return Run(config, kg, split, model, g, dev, run_dir, added_items=False), encoder, view


def grown_features(parent: Run, kg: KnowledgeGraph, rows: torch.Tensor, config: ExperimentConfig, encoder=None) -> tuple | None:
    """``(features, has_text)`` of the grown graph: the parent's rows moved to their new
    indices, and only the new nodes' texts encoded (None: the model reads no text)."""
    old = parent.trained_graph
    if not config.model.use_text or old.features is None:
        return None
    features = torch.zeros(kg.num_nodes, old.features.size(1), dtype=old.features.dtype)
    has_text = torch.zeros(kg.num_nodes, dtype=torch.bool)
    kept = rows >= 0
    features[rows[kept]] = old.features.cpu()[kept]
    has_text[rows[kept]] = old.has_text.cpu()[kept] if old.has_text is not None else True
    new_nodes = new_node_mask(rows, kg.num_nodes).nonzero(as_tuple=True)[0].tolist()
    texts = node_texts(kg)
    wanted = [n for n in new_nodes if texts[n] is not None]
    if wanted:
        encoded, _ = encode_item_texts([texts[n] for n in wanted], config.text, encoder, device=str(parent.device))
        features[torch.as_tensor(wanted)] = encoded.to(features.dtype)
        has_text[torch.as_tensor(wanted)] = True
    return features, has_text


def grow_model(model, parent: Run, g, rows: torch.Tensor, split: Split, user_init: str, view: dict | None = None) -> None:
    """The parent's weights (``view``: its item-item view's) in ``model`` (built for the grown
    graph), new nodes' ID rows filled."""
    old_state = parent.model.state_dict() | (view or {})
    old_relations, new_relations = parent.trained_graph.relation_names, g.relation_names
    ids = old_state.get(ID_ROWS)
    first = new_node_rows(ids, rows, g, {}, None, user_init="zero") if ids is not None else None
    carry_over(old_state, model, rows, old_relations, new_relations, first)
    if ids is None or user_init != "items":
        return
    new_user = torch.ones(g.num_users, dtype=torch.bool)
    new_user[rows[: parent.kg.num_users][rows[: parent.kg.num_users] >= 0]] = False
    train = split.train[new_user.numpy()[split.train["user"].to_numpy()]]
    user_items = {int(u): (g.num_users + items).tolist() for u, items in train.groupby("user")["item"]}
    with torch.no_grad():  # not inference mode: the model's per-graph caches made here serve training too
        x0 = model.node_input(g).float()
    rows_now = new_node_rows(ids, rows, g, user_items, x0, user_init="items")
    table = model.node_input.id_embedding.weight
    with torch.no_grad():
        table[new_node_mask(rows, g.num_nodes).to(table.device)] = rows_now.to(table)


def _pairs(part: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(part["user"].to_numpy(np.int64).copy()), torch.as_tensor(part["item"].to_numpy(np.int64).copy())


def _hash_of(graph_dir: Path) -> str | None:
    return json.loads((graph_dir / "manifest.json").read_text(encoding="utf-8")).get("content_hash")


def _carry_extras(parent_dir: Path, staging: Path, kg: KnowledgeGraph) -> list[str]:
    """The parent's content model (and tuned text encoder) and its added items, into the new run.

    Items added with ``kgrec add-items`` that the update made trained items (their RDF came
    with the new interactions) leave the added catalogue.
    """
    carried = []
    for name in (WEIGHTS_FILE, META_FILE):
        if (parent_dir / name).is_file():
            shutil.copy2(parent_dir / name, staging / name)
            carried.append(name)
    if (parent_dir / TUNED_TEXT).is_dir():
        shutil.copytree(parent_dir / TUNED_TEXT, staging / TUNED_TEXT)
        carried.append(TUNED_TEXT)
    if has_added(parent_dir):
        names = NodeNames.from_graph(kg)
        batches, id_init = read_added(parent_dir, names)
        trained = set(kg.nodes[ITEM]["id"].astype(str))
        kept = [b for b in (batch.without(trained) for batch in batches) if b is not None]
        if kept:
            write_added(staging, kept, names, id_init)
            carried.append("added_items")
    return carried


__all__ = ["GRAPH_FOLDER", "UPDATE_FILE", "check_update_target", "grown_split", "update_run"]
