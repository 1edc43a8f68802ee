"""The Python API: a trained run as one object, mirroring the command line.

.. code-block:: python

    import kgrec

    run = kgrec.load_run("runs/demo")
    run.recommend(["u278"], k=10)                 # DataFrame user, item, rank, score
    for e in run.explain("u278", k=3):            # paths user -> ... -> recommended item
        print(run.format(e))
    run.similar("m118", k=5)                      # "more like this"
    run.bundles("m118", k=5)                      # "often taken together"
    run.add_items(["new_films.ttl"])              # cold items: text + RDF, no retraining
    run.recommend_for_text("dark science fiction with a great soundtrack", k=10)
    run.recommend_for_items(["m118", "m009"], k=10)

:class:`Run` composes :class:`kgrec.runs.TrainedRun` (loading, evaluation) with the analysis
modules: :mod:`kgrec.explain`, :mod:`kgrec.coldstart`, :mod:`kgrec.similar`. It keeps the
current graph, its layer-0 and its final embeddings; adding items extends all three.

Items added with ``add_items(..., save=True)`` (what ``kgrec add-items`` does) are written to
``RUN/added_items/`` (CSV tables and the items' BERT features in safetensors) and embedded
again whenever the run is loaded through :func:`load_run`, so ``kgrec explain``/``similar`` and
this API see them; the weights are never touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from kgrec.coldstart.extend import layer0, propagate
from kgrec.coldstart.items import ColdItems, Encoder, cold_items_from_rdf, embed_items, encode_item_texts
from kgrec.coldstart.users import items_for_text, main_behaviour, user_embedding
from kgrec.errors import KgrecError
from kgrec.eval.metrics import topk_items
from kgrec.explain.names import NodeNames
from kgrec.explain.paths import Explanation, PathFinder, format_explanation
from kgrec.graph.container import ITEM
from kgrec.graph.useritem import UserItemSets
from kgrec.io import atomic_folder, atomic_path
from kgrec.runs import TrainedRun
from kgrec.runs import load_run as _load_trained
from kgrec.similar import bundle_items, similar_items
from kgrec.text.features import node_text

ADDED_FOLDER = "added_items"


def load_run(run_dir: str | Path, device: str = "auto", *, added_items: bool = True) -> "Run":
    """Load a finished run for recommendation, explanation and cold start.

    Args:
        run_dir: a run folder written by ``kgrec train``.
        device: ``auto``, ``cpu``, ``cuda``...
        added_items: embed the items saved by ``kgrec add-items`` too.
    """
    return Run(_load_trained(Path(run_dir), device=device), added_items=added_items)


class Run:
    """A trained run: recommend, explain, find similar items, add cold items and users."""

    def __init__(self, trained: TrainedRun, *, added_items: bool = True):
        self.trained = trained
        self.kg = trained.kg
        self.model = trained.model
        self.graph = trained.graph
        self.x0 = layer0(self.model, self.graph)
        self.z = propagate(self.model, self.graph, self.x0)
        self.names = NodeNames.from_graph(self.kg)
        num_users, num_items = self.kg.num_users, self.kg.num_items
        self.item_nodes: list[int] = list(range(num_users, num_users + num_items))
        self.item_ids: list[str] = self.kg.nodes[ITEM]["id"].astype(str).tolist()
        self._item_texts: list[str | None] = [node_text(a, b) for a, b in zip(self.kg.nodes[ITEM]["label"], self.kg.nodes[ITEM]["text"])]
        self._added: list[tuple[ColdItems, torch.Tensor | None, torch.Tensor | None]] = []
        self._id_init = "mean"
        self._finder: PathFinder | None = None
        if added_items and (self.run_dir / ADDED_FOLDER).is_dir():
            self._apply(*self._read_added())

    # ------------------------------------------------------------------ basics
    @property
    def run_dir(self) -> Path:
        return self.trained.run_dir

    @property
    def user_ids(self) -> list[str]:
        return self.kg.nodes["user"]["id"].astype(str).tolist()

    def _user_node(self, user: str) -> int:
        node = self.kg.user_index.get(str(user))
        if node is None:
            raise KgrecError(f"unknown user id {user!r}")
        return node

    def _item_pos(self, item: str) -> int:
        if not hasattr(self, "_pos") or len(self._pos) != len(self.item_ids):
            self._pos = {iid: k for k, iid in enumerate(self.item_ids)}
        pos = self._pos.get(str(item))
        if pos is None:
            raise KgrecError(f"unknown item id {item!r}")
        return pos

    def item_label(self, item: str) -> str | None:
        """The label of an item id (trained or added), or None."""
        return self.names.labels[self.item_nodes[self._item_pos(item)]]

    def item_embeddings(self) -> torch.Tensor:
        """``[items, d]`` final embeddings of every item, trained then added ones."""
        return self.z[torch.as_tensor(self.item_nodes, device=self.z.device)]

    def _seen(self) -> UserItemSets:
        parts = pd.concat([self.trained.split.train, self.trained.split.valid], ignore_index=True)
        return UserItemSets.from_pairs(parts["user"].to_numpy(), parts["item"].to_numpy(), self.kg.num_users, len(self.item_ids))

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

    # ------------------------------------------------------------------ recommend
    def recommend(self, users: list[str] | None = None, k: int = 20) -> pd.DataFrame:
        """Top-``k`` items per user (added items included), excluding train and validation items.

        Returns a DataFrame with columns ``user``, ``item``, ``rank`` (1-based), ``score``.
        """
        if users is None:
            nodes = list(range(self.kg.num_users))
        else:
            nodes = [self._user_node(u) for u in users]
        user_emb, item_emb = self.z[: self.kg.num_users], self.item_embeddings()
        items, scores = topk_items(lambda b: self.model.rank_scores(user_emb, item_emb, b), nodes, self._seen(), k)
        rows = (items >= 0).nonzero(as_tuple=False)
        ids = self.user_ids
        return pd.DataFrame(
            {
                "user": [ids[nodes[r]] for r in rows[:, 0].tolist()],
                "item": [self.item_ids[i] for i in items[items >= 0].tolist()],
                "rank": (rows[:, 1] + 1).numpy(),
                "score": scores[items >= 0].numpy(),
            }
        )

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
    def similar(self, item: str, k: int = 10) -> pd.DataFrame:
        """"More like this": the ``k`` items with the closest embeddings (columns item, label, rank, score)."""
        pos, sims = similar_items(self.item_embeddings(), self._item_pos(item), k)
        return self._frame(torch.as_tensor(pos), torch.as_tensor(sims))

    def bundles(self, item: str, k: int = 10, min_support: int = 2) -> pd.DataFrame:
        """Items most often taken with ``item`` (training and validation interactions), by lift."""
        pos = self._item_pos(item)
        parts = pd.concat([self.trained.split.train, self.trained.split.valid], ignore_index=True)
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
    ) -> ColdItems:
        """Add items described only by RDF (description + triples) and embed them, no retraining.

        Args:
            rdf: RDF files about the new items.
            items: ids of the items to add (default: every described resource new to the graph).
            item_iri: IRI template of items, e.g. ``http://example.org/item/{id}``.
            save: also write them to ``RUN/added_items/`` so later loads include them.
            encoder: a text encoder (default: the run's ``[text]`` model).
            id_init: ID part of the new items' layer-0: ``mean`` item ID embedding or ``zero``.

        Returns:
            the :class:`ColdItems` added (ids, texts, links kept and a report of drops).
        """
        cold = cold_items_from_rdf([Path(p) for p in rdf], self.kg, self.trained.graph, item_ids=items, item_iri=item_iri, known_ids=set(self.item_ids))
        features = has_text = None
        if self.model.node_input.text_projection is not None:  # a model without text has no use for it
            features, has_text = encode_item_texts(cold.texts, self.trained.config.text, encoder, device=str(self.trained.device))
        self._apply([(cold, features, has_text)], id_init)
        if save:
            self._write_added()
        return cold

    def add_cold_items(self, cold: ColdItems, features: torch.Tensor | None, has_text: torch.Tensor | None, id_init: str = "mean") -> None:
        """Add items already gathered as :class:`ColdItems` with their text features."""
        self._apply([(cold, features, has_text)], id_init)

    def _apply(self, batches: list[tuple[ColdItems, torch.Tensor, torch.Tensor]], id_init: str) -> None:
        for cold, features, has_text in batches:
            embedded = embed_items(self.model, self.graph, self.x0, cold, features, has_text, id_init=id_init)
            self.graph, self.x0, self.z = embedded.graph, embedded.layer0, embedded.embeddings
            self.item_nodes += embedded.nodes.tolist()
            self.item_ids += list(cold.ids)
            self._item_texts += list(cold.texts)
            self.names = self.names.extend(ITEM, cold.ids, cold.labels)
            self._added.append((cold, features, has_text))
            self._id_init = id_init
        self._finder = None

    def _write_added(self) -> None:
        folder = self.run_dir / ADDED_FOLDER
        items, links, feats, flags = [], [], [], []
        offset = 0
        for cold, features, has_text in self._added:
            items.append(pd.DataFrame({"id": cold.ids, "label": cold.labels, "text": cold.texts}))
            link = cold.links.copy()
            link["item"] = [cold.ids[i] for i in link["item"]]
            link["node_type"] = [self.names.kind(n) for n in link["node"]]
            link["node_id"] = [self.names.ids[n] for n in link["node"]]
            links.append(link.drop(columns="node"))
            if features is not None:
                feats.append(features.float().cpu())
                flags.append(has_text.cpu())
            offset += len(cold)
        with atomic_folder(folder) as tmp:
            pd.concat(items, ignore_index=True).to_csv(tmp / "items.csv", index=False)
            pd.concat(links, ignore_index=True).to_csv(tmp / "links.csv", index=False)
            if feats:  # the BERT features, so that loading needs no text model
                save_file({"features": torch.cat(feats).contiguous(), "has_text": torch.cat(flags).to(torch.uint8).contiguous()}, str(tmp / "features.safetensors"))
            (tmp / "added.json").write_text(json.dumps({"id_init": self._id_init, "items": offset}, indent=2) + "\n")

    def _read_added(self) -> tuple[list[tuple[ColdItems, torch.Tensor, torch.Tensor]], str]:
        folder = self.run_dir / ADDED_FOLDER
        try:
            meta = json.loads((folder / "added.json").read_text(encoding="utf-8"))
            items = pd.read_csv(folder / "items.csv", dtype={"id": str}, keep_default_na=False)
            links = pd.read_csv(folder / "links.csv", dtype={"item": str, "node_id": str}, keep_default_na=False)
            tensors = load_file(str(folder / "features.safetensors")) if (folder / "features.safetensors").is_file() else {}
        except (OSError, ValueError, KeyError) as e:
            raise KgrecError(f"damaged added-items folder ({e}); delete it and run `kgrec add-items` again", path=folder) from None
        position = {iid: k for k, iid in enumerate(items["id"])}
        node_of = {(t, key): n for n, (t, key) in enumerate(zip(self.names.types, self.names.ids))}
        try:
            nodes = [node_of[(t, key)] for t, key in zip(links["node_type"], links["node_id"])]
        except KeyError as e:
            raise KgrecError(f"an added item links to {e.args[0]}, which the run's graph does not have", path=folder / "links.csv") from None
        frame = pd.DataFrame(
            {
                "item": [position[i] for i in links["item"]],
                "relation": links["relation"].astype(str),
                "node": nodes,
                "outgoing": links["outgoing"].astype(str).str.lower().eq("true"),
            }
        )
        none = lambda v: v if isinstance(v, str) and v else None  # noqa: E731
        cold = ColdItems(items["id"].tolist(), [none(v) for v in items["label"]], [none(v) for v in items["text"]], frame)
        features, has_text = tensors.get("features"), tensors.get("has_text")
        return [(cold, features, None if has_text is None else has_text.bool())], str(meta.get("id_init", "mean"))

    # ------------------------------------------------------------------ cold users
    def _recommend_for_vector(self, vector: torch.Tensor, k: int, exclude: list[int], liked: list[int] | None = None) -> pd.DataFrame:
        scores = self.model.vector_scores(vector, self.item_embeddings(), liked)
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
        )
        return self._recommend_for_vector(vector, k, positions, liked=positions)

    def item_text_features(self, encoder: Encoder | None = None) -> np.ndarray:
        """``[items, F]`` unit-length text encodings of every item (zero rows: no text)."""
        g = self.graph
        if g.features is not None:
            return torch.nn.functional.normalize(g.features[torch.as_tensor(self.item_nodes, device=g.features.device)].float(), dim=-1).cpu().numpy()
        features, _ = encode_item_texts(self._item_texts, self.trained.config.text, encoder)
        return features.numpy()

    def recommend_for_text(self, profile: str, k: int = 20, n_items: int = 10, encoder: Encoder | None = None) -> pd.DataFrame:
        """Top-``k`` for a new user described by a sentence: its ``n_items`` closest items by text,
        then as :meth:`recommend_for_items` (those items are not excluded: they match the text)."""
        if not profile or not profile.strip():
            raise KgrecError("the text profile is empty")
        vector, _ = encode_item_texts([profile.strip()], self.trained.config.text, encoder)
        positions, sims = items_for_text(vector[0].numpy(), self.item_text_features(encoder), n_items)
        liked_positions = [p for p, s in zip(positions.tolist(), sims.tolist()) if s > 0]
        liked = [self.item_nodes[p] for p in liked_positions]
        if not liked:
            raise KgrecError("no item description resembles the profile (the run's items have no text?)")
        user = user_embedding(self.model, self.graph, self.x0, self.z, liked, behaviour=main_behaviour(self.graph, self.kg.behaviours))
        return self._recommend_for_vector(user, k, [], liked=liked_positions)

    def write_recommendations(self, recs: pd.DataFrame, out: str | Path) -> None:
        with atomic_path(Path(out), ".csv") as tmp:
            recs.to_csv(tmp, index=False)
