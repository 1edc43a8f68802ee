"""The trained-run object: one door into a finished run, for every command and the Python API.

.. code-block:: python

    import kgrec

    run = kgrec.load_run("runs/demo")
    run.evaluate("test")                          # full-ranking metrics, as results.json has them
    run.recommend(["u278"], k=10)                 # DataFrame user, item, rank, score
    for e in run.explain("u278", k=3):            # paths user -> ... -> recommended item
        print(run.format(e))
    run.similar("m118", k=5)                      # "more like this"
    run.bundles("m118", k=5)                      # "often taken together"
    run.add_items(["new_films.ttl"], save=True)   # cold items: text + RDF, no retraining
    run.recommend_for_text("dark science fiction with a great soundtrack", k=10)
    run.recommend_for_items(["m118", "m009"], k=10)

A :class:`Run` holds the model with its selected weights, the graph it was trained on, the
split, and the *current catalogue*: the trained items plus any items added after training
(``kgrec add-items`` saves them in ``RUN/added_items/``, :mod:`kgrec.runs.added`; loading
embeds them again). Every ranking -- evaluation, ``recommend``, explanations, exports, SPARQL,
the speed benchmark, the cold-start protocol -- goes through :meth:`Run.full_scores`, i.e.
the model's own :meth:`~kgrec.models.base.Recommender.full_scores`: added items are ranked
with the same scores as the trained ones. Where the run cannot score them for a view (the
item-item view knows only the items it was fitted on), :meth:`Run.view_notes` says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kgrec.models.content import ContentModel, load_content_model
from kgrec.text.tuning import load_tuned_text
from kgrec.coldstart.items import ColdItems, Encoder, catalogue_with, cold_items_from_rdf, embed_items, encode_item_texts
from kgrec.coldstart.users import items_for_text, main_behaviour, user_embedding
from kgrec.config import ExperimentConfig
from kgrec.device import resolve_device
from kgrec.errors import KgrecError
from kgrec.eval.metrics import topk_items
from kgrec.eval.sets import SplitSets
from kgrec.eval.splits import Split, read_split
from kgrec.experiment import load_experiment
from kgrec.explain.names import NodeNames
from kgrec.explain.paths import Explanation, PathFinder, explanation_record, format_explanation
from kgrec.graph.container import ITEM, USER, KnowledgeGraph
from kgrec.io import atomic_path
from kgrec.models.base import Embeddings, Recommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.runs.added import AddedBatch, has_added, read_added, write_added
from kgrec.runs.folder import read_run_meta, run_graph
from kgrec.runs.training import prepare_model
from kgrec.similar import bundle_items, similar_items
from kgrec.text.features import node_text
from kgrec.train.checkpoint import load_weights


def load_run(run_dir: str | Path, device: str = "auto", *, added_items: bool = True, graph: str | Path | None = None) -> "Run":
    """Load a finished run (the weights selected on validation) for every use of it.

    Args:
        run_dir: a run folder written by ``kgrec train``.
        device: ``auto``, ``cpu``, ``cuda``...
        added_items: embed the items saved by ``kgrec add-items`` too (they join the catalogue).
        graph: the run's graph folder, where it is no longer where training found it; it must
            have the same content (:func:`kgrec.runs.folder.run_graph`).
    """
    run_dir = Path(run_dir)
    meta = read_run_meta(run_dir)
    if not (run_dir / "model.safetensors").is_file():
        raise KgrecError("the run has no model.safetensors: did its training finish?", path=run_dir)
    config = load_experiment(run_dir / "config.toml", written_by_kgrec=True)
    kg, _ = run_graph(run_dir, meta, graph)
    dev = resolve_device(device)
    split = read_split(run_dir / "split", kg.user_index, kg.item_index)
    model, g = prepare_model(kg, config, split, dev)
    load_weights(model, run_dir / "model.safetensors", dev)
    content = load_content_model(run_dir, dev)
    tuned = load_tuned_text(run_dir, dev) if content is not None else None
    return Run(config, kg, split, model, g, dev, run_dir, added_items=added_items, content=content, tuned_text=tuned)


class Run:
    """A trained model with its graph, split and catalogue (trained items, then added ones).

    Args:
        config, kg, split: the run's configuration, graph and split.
        model: the trained recommender (weights selected on validation).
        graph: the training graph the model was built for.
        device: where the model lives.
        run_dir: the run folder, or None for a run held only in memory (a benchmark's).
        added_items: embed the items saved in ``run_dir/added_items/``.
        content: the run's content model for items added later (``RUN/content_model.*``,
            :mod:`kgrec.models.content`); None: they are embedded by propagation alone.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        kg: KnowledgeGraph,
        split: Split,
        model: Recommender,
        graph: GraphTensors,
        device: torch.device,
        run_dir: str | Path | None = None,
        *,
        added_items: bool = True,
        content: ContentModel | None = None,
        tuned_text=None,
    ):
        self.config = config
        self.content = content
        self.tuned_text = tuned_text
        self.kg = kg
        self.split = split
        self.model = model
        self.device = torch.device(device)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.trained_graph = graph
        self.graph = graph
        base = model.infer(graph)
        self.x0, self.z = base.layer0, base.final
        self.names = NodeNames.from_graph(kg)
        self.item_nodes: list[int] = list(range(kg.num_users, kg.num_users + kg.num_items))
        self.item_ids: list[str] = kg.nodes[ITEM]["id"].astype(str).tolist()
        self._item_texts: list[str | None] = [node_text(a, b) for a, b in zip(kg.nodes[ITEM]["label"], kg.nodes[ITEM]["text"])]
        self.added: list[AddedBatch] = []
        self._id_init = "mean"
        self._finder: PathFinder | None = None
        self._emb: Embeddings | None = None
        self._sets: SplitSets | None = None
        self._pos: dict[str, int] = {}
        if added_items and self.run_dir is not None and has_added(self.run_dir):
            batches, id_init = read_added(self.run_dir, self.names)
            self._apply(batches, id_init)

    def without_added_items(self) -> "Run":
        """The same trained run with the trained catalogue only (a fresh object)."""
        return Run(
            self.config, self.kg, self.split, self.model, self.trained_graph, self.device, self.run_dir, added_items=False, content=self.content,
            tuned_text=self.tuned_text,
        )

    # ------------------------------------------------------------------ the catalogue
    @property
    def num_users(self) -> int:
        return self.kg.num_users

    @property
    def catalogue_size(self) -> int:
        """Rankable items: the trained ones and those added after training."""
        return len(self.item_ids)

    @property
    def added_item_ids(self) -> list[str]:
        return self.item_ids[self.kg.num_items :]

    @property
    def user_ids(self) -> list[str]:
        return self.kg.nodes[USER]["id"].astype(str).tolist()

    def _user_node(self, user: str) -> int:
        node = self.kg.user_index.get(str(user))
        if node is None:
            raise KgrecError(f"unknown user id {user!r}")
        return node

    def _item_pos(self, item: str) -> int:
        if len(self._pos) != len(self.item_ids):
            self._pos = {iid: k for k, iid in enumerate(self.item_ids)}
        pos = self._pos.get(str(item))
        if pos is None:
            raise KgrecError(f"unknown item id {item!r}")
        return pos

    def item_label(self, item: str) -> str | None:
        """The label of an item id (trained or added), or None."""
        return self.names.labels[self.item_nodes[self._item_pos(item)]]

    def embeddings(self) -> Embeddings:
        """Final and layer-0 embeddings of the current graph, the catalogue in item order."""
        if self._emb is None:
            added = len(self.item_nodes) != self.kg.num_items
            nodes = torch.as_tensor(self.item_nodes, device=self.z.device) if added else None
            self._emb = Embeddings(self.z, self.x0, self.kg.num_users, self.kg.num_items, item_nodes=nodes)
        return self._emb

    def user_embeddings(self) -> torch.Tensor:
        """``[users, d]`` final embeddings of every user."""
        return self.embeddings().user_table()

    def item_embeddings(self) -> torch.Tensor:
        """``[items, d]`` final embeddings of every item, trained then added ones."""
        return self.embeddings().item_table()

    def catalogue_graph(self) -> KnowledgeGraph:
        """The run's graph with its added items (what exports and SPARQL show)."""
        return catalogue_with(self.kg, [batch.items for batch in self.added])

    def view_notes(self) -> list[str]:
        """What the ranking cannot score for a view (said wherever added items are ranked)."""
        view = self.model.item_item
        if not self.model.blends_item_item() or self.catalogue_size <= view.num_items:
            return []
        extra = self.catalogue_size - view.num_items
        return [
            f"the {self.config.model.item_item} item-item view has no scores for the {extra} item(s) added after "
            "training (they have no interactions): they are ranked by the dot product alone"
        ]

    # ------------------------------------------------------------------ ranking
    def sets(self) -> SplitSets:
        """The split as per-user sets over the current catalogue (added items are in no part)."""
        if self._sets is None or self._sets.train.num_items != self.catalogue_size:
            self._sets = SplitSets.from_split(self.split, self.kg.num_users, self.catalogue_size, self.device)
        return self._sets

    def full_scores(self, users: torch.Tensor) -> torch.Tensor:
        """``[B, items]`` ranking scores of users (indices) against the current catalogue."""
        return self.model.full_scores(users, self.embeddings())

    def evaluate(self, which: str = "test") -> dict[str, float]:
        """Full-ranking metrics on ``test`` (train and valid masked) or ``valid`` (train masked).

        Every item of the current catalogue is a candidate, added items included.
        """
        if which not in ("test", "valid"):
            raise KgrecError(f"unknown evaluation set {which!r} (test or valid)")
        ec = self.config.eval
        return self.sets().evaluate(self.model, self.embeddings(), which, ec.ks, ec.batch_size)

    def topk(self, users: torch.Tensor, k: int, *, progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(items [B, k], scores [B, k])`` on the CPU: each user's best items, train and
        validation items excluded (-1 where a user has fewer than ``k`` candidates)."""
        seen = self.sets().seen_at_test()
        items, scores = topk_items(self.full_scores, users, seen, k, batch_size=self.config.eval.batch_size, progress=progress)
        return items.cpu(), scores.cpu()

    def recommend(self, users: list[str] | None = None, k: int = 20) -> pd.DataFrame:
        """Top-``k`` items per user (original ids; added items included), excluding the items
        seen in train and validation. Columns ``user``, ``item``, ``rank`` (1-based), ``score``."""
        if k < 1:
            raise KgrecError(f"k must be at least 1, got {k}")
        if users is None:
            nodes = list(range(self.kg.num_users))
        else:
            index = self.kg.user_index
            unknown = [u for u in users if u not in index]
            if unknown:
                raise KgrecError(f"unknown user id(s): {', '.join(map(str, unknown[:5]))}" + (" ..." if len(unknown) > 5 else ""))
            nodes = [index[u] for u in users]
        u = torch.as_tensor(nodes, dtype=torch.long, device=self.device)
        items, scores = self.topk(u, k)
        valid = items >= 0
        rows = valid.nonzero(as_tuple=False)
        user_ids = self.kg.nodes[USER]["id"].to_numpy()
        item_ids = np.asarray(self.item_ids, dtype=object)
        return pd.DataFrame(
            {
                "user": user_ids[u.cpu()[rows[:, 0]].numpy()],
                "item": item_ids[items[valid].numpy()],
                "rank": (rows[:, 1] + 1).numpy(),
                "score": scores[valid].numpy(),
            }
        )

    def write_recommendations(self, recs: pd.DataFrame, out: str | Path) -> None:
        with atomic_path(Path(out), ".csv") as tmp:
            recs.to_csv(tmp, index=False)

    # ------------------------------------------------------------------ explain
    def path_finder(self) -> PathFinder:
        if self._finder is None:
            self._finder = PathFinder(self.graph, self.z)
        return self._finder

    def explain(self, user: str, item: str | None = None, k: int = 3, paths: int = 3) -> list[Explanation]:
        """Paths that connect ``user`` to ``item``, or to each of the user's top-``k`` items.

        Args:
            user: a user id.
            item: an item id; None explains the user's ``k`` best recommendations.
            k: how many recommendations to explain when ``item`` is None.
            paths: paths per item.
        """
        node = self._user_node(user)
        if item is not None:
            targets, ranks = [self.item_nodes[self._item_pos(item)]], None
        else:
            recs = self.recommend([user], k=k)
            targets = [self.item_nodes[self._item_pos(i)] for i in recs["item"]]
            ranks = recs["rank"].tolist()
        return self.path_finder().explain(node, targets, k=paths, ranks=ranks)

    def format(self, explanation: Explanation) -> str:
        """An explanation as text, one line per path."""
        return format_explanation(explanation, self.names)

    def draw(self, explanations: list[Explanation], out: str | Path, title: str | None = None) -> Path:
        """A PNG of the explanations' paths."""
        from kgrec.explain.picture import draw_explanations

        return draw_explanations(explanations, self.names, Path(out), title=title)

    # ------------------------------------------------------------------ item to item
    def _frame(self, item_pos: torch.Tensor, scores: torch.Tensor) -> pd.DataFrame:
        keep = item_pos >= 0
        pos = item_pos[keep].tolist()
        return pd.DataFrame(
            {
                "item": [self.item_ids[p] for p in pos],
                "label": [self.names.labels[self.item_nodes[p]] for p in pos],
                "rank": np.arange(1, len(pos) + 1),
                "score": scores[keep].numpy(),
            }
        )

    def similar(self, item: str, k: int = 10) -> pd.DataFrame:
        """"More like this": the ``k`` items with the closest embeddings (columns item, label, rank, score)."""
        pos, sims = similar_items(self.item_embeddings(), self._item_pos(item), k)
        return self._frame(torch.as_tensor(pos), torch.as_tensor(sims))

    def bundles(self, item: str, k: int = 10, min_support: int = 2) -> pd.DataFrame:
        """Items most often taken with ``item`` (training and validation interactions), by lift."""
        pos = self._item_pos(item)
        parts = pd.concat([self.split.train, self.split.valid], ignore_index=True)
        frame = bundle_items(parts["user"].to_numpy(), parts["item"].to_numpy(), self.kg.num_users, pos, k, min_support)
        frame.insert(1, "label", [self.names.labels[self.item_nodes[p]] for p in frame["item"]])
        frame["item"] = [self.item_ids[p] for p in frame["item"]]
        return frame

    # ------------------------------------------------------------------ cold items
    def add_items(
        self,
        rdf: list[str | Path],
        *,
        items: list[str] | None = None,
        item_iri: str | None = None,
        save: bool = False,
        encoder: Encoder | None = None,
        id_init: str = "mean",
        replace: bool = False,
    ) -> ColdItems:
        """Add items described only by RDF (description + triples) and embed them, no retraining.

        The RDF is read and matched as the graph's own was (its spec's predicates, ignore list
        and item matching rule, kept in the graph's manifest).

        Args:
            rdf: RDF files about the new items.
            items: ids of the items to add (default: every described resource new to the graph).
            item_iri: IRI template of items, e.g. ``http://example.org/item/{id}`` (replaces
                the graph's matching rule).
            save: also write them to ``RUN/added_items/`` so later loads include them.
            encoder: a text encoder (default: the run's ``[text]`` model).
            id_init: ID part of the new items' layer-0: ``mean`` item ID embedding or ``zero``.
            replace: items added earlier under the same ids are replaced (``add-items
                --force``); without, such an id is refused.

        Returns:
            the :class:`ColdItems` added (ids, texts, links kept and a report of drops).
        """
        if save and self.run_dir is None:
            raise KgrecError("this run lives only in memory: there is no run folder to save added items in")
        known = set(self.item_ids[: self.kg.num_items]) if replace else set(self.item_ids)
        cold = cold_items_from_rdf([Path(p) for p in rdf], self.kg, self.trained_graph, item_ids=items, item_iri=item_iri, known_ids=known)
        replaced = set(cold.ids) & set(self.added_item_ids)
        if replaced:  # rebuild the added catalogue without them, then add the new versions
            earlier = [b for b in (batch.without(replaced) for batch in self.added) if b is not None]
            id_init_before = self._id_init
            self._reset()
            self._apply(earlier, id_init_before)
        features = has_text = None
        if self.model.uses_text:  # a model without text has no use for the features
            features, has_text = encode_item_texts(cold.texts, self.config.text, encoder, device=str(self.device))
        self._apply([AddedBatch(cold, features, has_text)], id_init)
        if save:
            write_added(self.run_dir, self.added, self.names, self._id_init)
        return cold

    def _reset(self) -> None:
        """Back to the trained catalogue (no added items)."""
        self.__dict__.update(self.without_added_items().__dict__)  # every field, none forgotten

    def record(self, explanation: Explanation) -> dict:
        """An explanation as plain data (what ``kgrec explain --format json`` prints)."""
        return explanation_record(explanation, self.names)

    def add_cold_items(
        self, cold: ColdItems, features: torch.Tensor | None, has_text: torch.Tensor | None, id_init: str = "mean", *, use_content: bool = True
    ) -> None:
        """Add items already gathered as :class:`ColdItems` with their text features.

        ``use_content=False`` embeds them by propagation alone even when the run has a content
        model (what the cold-start protocol compares it with).
        """
        self._apply([AddedBatch(cold, features, has_text)], id_init, use_content=use_content)

    def _apply(self, batches: list[AddedBatch], id_init: str, *, use_content: bool = True) -> None:
        content = self.content if use_content else None
        for batch in batches:
            cold = batch.items
            content_features = None
            if content is not None and self.tuned_text is not None and batch.has_text is not None:
                content_features = self.tuned_text.encode([t or "" for t in cold.texts]).to(self.z.device)
                content_features = content_features * batch.has_text.to(content_features.device).unsqueeze(1)
            embedded = embed_items(
                self.model, self.graph, self.x0, cold, batch.features, batch.has_text, id_init=id_init, content=content, z=self.z,
                content_features=content_features,
            )  # fmt: skip
            self.graph, self.x0, self.z = embedded.graph, embedded.layer0, embedded.embeddings
            self.item_nodes += embedded.nodes.tolist()
            self.item_ids += list(cold.ids)
            self._item_texts += list(cold.texts)
            self.names = self.names.extend(ITEM, cold.ids, cold.labels)
            self.added.append(batch)
            self._id_init = id_init
        self._finder = None
        self._emb = None

    # ------------------------------------------------------------------ cold users
    def _recommend_for_vector(self, vector: torch.Tensor, k: int, exclude: list[int], liked: list[int] | None = None) -> pd.DataFrame:
        scores = self.model.vector_scores(vector, self.embeddings(), liked)
        if exclude:
            scores[torch.as_tensor(exclude, device=scores.device)] = -float("inf")
        top = torch.topk(scores, min(k, scores.numel()))
        items = top.indices.cpu().masked_fill(torch.isinf(top.values.cpu()), -1)
        return self._frame(items, top.values.cpu())

    def recommend_for_items(self, items: list[str], k: int = 20, method: str = "fold-in") -> pd.DataFrame:
        """Top-``k`` for a new user who liked ``items`` (ids), those items excluded."""
        positions = [self._item_pos(i) for i in items]
        vector = user_embedding(
            self.model, self.graph, self.x0, self.z, [self.item_nodes[p] for p in positions],
            behaviour=main_behaviour(self.graph, self.kg.behaviours), method=method,
        )  # fmt: skip
        return self._recommend_for_vector(vector, k, positions, liked=positions)

    def item_text_features(self, encoder: Encoder | None = None) -> np.ndarray:
        """``[items, F]`` unit-length text encodings of every item (zero rows: no text)."""
        g = self.graph
        if g.features is not None:
            rows = torch.as_tensor(self.item_nodes, device=g.features.device)
            return torch.nn.functional.normalize(g.features[rows].float(), dim=-1).cpu().numpy()
        features, _ = encode_item_texts(self._item_texts, self.config.text, encoder)
        return features.numpy()

    def recommend_for_text(self, profile: str, k: int = 20, n_items: int = 10, encoder: Encoder | None = None) -> pd.DataFrame:
        """Top-``k`` for a new user described by a sentence: its ``n_items`` closest items by text,
        then as :meth:`recommend_for_items` (those items are not excluded: they match the text)."""
        if not profile or not profile.strip():
            raise KgrecError("the text profile is empty")
        vector, _ = encode_item_texts([profile.strip()], self.config.text, encoder)
        positions, sims = items_for_text(vector[0].numpy(), self.item_text_features(encoder), n_items)
        liked_positions = [p for p, s in zip(positions.tolist(), sims.tolist()) if s > 0]
        liked = [self.item_nodes[p] for p in liked_positions]
        if not liked:
            raise KgrecError("no item description resembles the profile (the run's items have no text?)")
        user = user_embedding(self.model, self.graph, self.x0, self.z, liked, behaviour=main_behaviour(self.graph, self.kg.behaviours))
        return self._recommend_for_vector(user, k, [], liked=liked_positions)


__all__ = ["Run", "load_run"]
