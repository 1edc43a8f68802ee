"""Cold-start items: embed items that have a description and RDF triples but no interaction.

A new item becomes a node of the trained graph (see :mod:`kgrec.coldstart.extend`): its
layer-0 input is the trained text projection of its BERT encoding plus an ID part (the mean
trained item ID embedding by default, or zero), its RDF triples become edges to the entities
and items the trained graph already has, and the trained encoder propagates over the result.
Only links to nodes that take part in message passing are kept: an entity the training graph
left out (a leaf below ``kg_min_degree``) has an untrained ID embedding and would only add
noise.

Two front ends build the same :class:`ColdItems`: :func:`cold_items_from_rdf` (RDF files, for
``kgrec add-items``) and :func:`cold_items_from_graph` (items cut out of a built graph, for the
cold-start protocol).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from kgrec.models.content import ContentModel, new_item_inputs
from kgrec.coldstart.extend import NewEdges, extend_graph
from kgrec.config import RdfSource, TextConfig
from kgrec.errors import KgrecError
from kgrec.graph.build import relation_name
from kgrec.graph.container import ITEM, REVERSE_PREFIX, KnowledgeGraph
from kgrec.ingest.knowledge import knowledge_from_statements
from kgrec.ingest.matching import item_id_namer, match_items
from kgrec.ingest.sources import BuildReport
from kgrec.ingest.statements import read_statements, statement_iris, unique_statements
from kgrec.models.base import Recommender
from kgrec.models.graph_tensors import GraphTensors
from kgrec.text.features import node_text

#: How a new item's missing ID embedding is filled: the mean trained item ID embedding, or zero.
ID_INITS = ("mean", "zero")
LINK_COLUMNS = ["item", "relation", "node", "outgoing"]


class Encoder(Protocol):
    """Anything that turns texts into unit-length vectors (:class:`kgrec.text.TextEncoder`)."""

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray: ...


@dataclass
class ColdItems:
    """Items to add: ids, texts and links to nodes of the trained graph.

    Attributes:
        ids, labels, texts: one entry per new item; ``texts`` is what BERT encodes (None: none).
        links: columns ``item`` (position in ``ids``), ``relation`` (a relation name of the
            trained graph, read in the edge's direction), ``node`` (global index of the linked
            node) and ``outgoing`` (True: ``item -> node``; False: ``node -> item``).
        report: counts of what was kept and dropped, and why.
    """

    ids: list[str]
    labels: list[str | None]
    texts: list[str | None]
    links: pd.DataFrame
    report: Counter = field(default_factory=Counter)
    iris: list[str | None] | None = None
    """The RDF resource of each new item (for exports), when it came from RDF."""
    descriptions: list[str | None] | None = None
    """Each new item's description alone (``texts`` joins label and description)."""

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, positions: list[int]) -> "ColdItems":
        """Only the items at ``positions`` (in that order), their links renumbered."""
        new_pos = {old: new for new, old in enumerate(positions)}
        links = self.links[self.links["item"].isin(new_pos)].copy()
        links["item"] = links["item"].map(new_pos).astype(self.links["item"].dtype)

        def pick(values):
            return None if values is None else [values[k] for k in positions]

        return dataclasses.replace(
            self, ids=pick(self.ids), labels=pick(self.labels), texts=pick(self.texts), links=links.reset_index(drop=True),
            iris=pick(self.iris), descriptions=pick(self.descriptions), report=Counter(self.report),
        )  # fmt: skip

    def edges(self, first_node: int) -> NewEdges:
        """The links as :class:`NewEdges`, new item ``k`` being node ``first_node + k``."""
        items = (self.links["item"].to_numpy() + first_node).tolist()
        nodes = self.links["node"].to_numpy().tolist()
        out = self.links["outgoing"].to_numpy().tolist()
        return NewEdges(
            source=[i if o else n for i, n, o in zip(items, nodes, out)],
            target=[n if o else i for i, n, o in zip(items, nodes, out)],
            relation=self.links["relation"].tolist(),
        )


def encode_item_texts(texts: list[str | None], config: TextConfig, encoder: Encoder | None = None, device: str = "cpu") -> tuple[Tensor, Tensor]:
    """BERT features of new items: ``(features [m, F], has_text [m])``, zero rows without text."""
    if encoder is None:
        from kgrec.text.encoder import TextEncoder

        encoder = TextEncoder(
            config.model, device=device, batch_size=config.batch_size, max_length=config.max_length,
            cache_dir=Path(config.cache_dir) if config.cache_dir else None,
        )
    has_text = np.array([t is not None for t in texts], dtype=bool)
    present = [t for t in texts if t is not None]
    rows = encoder.encode(present, progress=False) if present else np.zeros((0, 1), dtype=np.float32)
    dim = rows.shape[1] if present else getattr(encoder, "dim", 1)
    features = np.zeros((len(texts), dim), dtype=np.float32)
    if present:
        features[has_text] = rows
    return torch.from_numpy(features), torch.from_numpy(has_text)


@dataclass
class EmbeddedItems:
    """The graph after adding cold items, and where they are."""

    graph: GraphTensors
    layer0: Tensor
    embeddings: Tensor
    nodes: Tensor
    """Global node indices of the new items, in the order of :attr:`ColdItems.ids`."""


def embed_items(
    model: Recommender,
    g: GraphTensors,
    x0: Tensor,
    items: ColdItems,
    features: Tensor | None,
    has_text: Tensor | None,
    *,
    id_init: str = "mean",
    content: "ContentModel | None" = None,
    z: Tensor | None = None,
    content_features: Tensor | None = None,
) -> EmbeddedItems:
    """Append ``items`` to graph ``g`` (layer-0 ``x0``) and propagate with the trained encoder.

    With the run's ``content`` model (:mod:`kgrec.models.content`) the new items' final
    embeddings are the content model's vectors, made from their text and the trained
    embeddings ``z`` (of ``g``, before the items were added) of the nodes they link to, and the
    other nodes keep ``z``: adding items does not change how the trained ones rank. Without
    one, every node takes the embedding the encoder propagates over the extended graph.
    ``content_features``: the new items' text as the run's tuned encoder has it (``[text]
    tune``), for the content model only; the propagation keeps ``features``.

    Args:
        model: the trained recommender (its text projection, ID table and encoder are used).
        g, x0: the graph to extend and its layer-0 embeddings (the trained graph and
            ``model.layer0(g)``, or an already extended one).
        features, has_text: BERT features of the new items (:func:`encode_item_texts`).
        id_init: ``"mean"`` (the mean trained item ID embedding) or ``"zero"``.
    """
    if id_init not in ID_INITS:
        raise KgrecError(f"unknown id_init {id_init!r} (choose {' or '.join(ID_INITS)})")
    m = len(items)
    device = x0.device
    new = torch.zeros(m, x0.size(1), device=device)
    if features is not None and model.node_input.text_projection is not None:
        projected = model.text_input(features.to(device))
        mask = has_text.to(device) if has_text is not None else torch.ones(m, dtype=torch.bool, device=device)
        new = new + projected * mask.unsqueeze(1)
    if id_init == "mean":
        new = new + model.mean_id(g.num_users, g.num_users + g.num_items).to(device)
    g_ext = extend_graph(g, torch.full((m,), 1, dtype=torch.long), items.edges(g.num_nodes), features, has_text)
    x0_ext = torch.cat([x0, new])
    z_ext = model.propagate(g_ext, x0_ext)
    nodes = torch.arange(g.num_nodes, g.num_nodes + m)
    if content is not None:
        if z is None:
            raise KgrecError("the content model needs the graph's final embeddings (z) to embed new items")
        inputs = new_item_inputs(
            z, torch.from_numpy(items.links["item"].to_numpy(np.int64).copy()), torch.from_numpy(items.links["node"].to_numpy(np.int64).copy()),
            m, None if features is None or content.feature_dim == 0 else (features if content_features is None else content_features).float(),
            has_text, z_ext[nodes.to(z_ext.device)],
        )  # fmt: skip
        empty = inputs.empty_rows().nonzero(as_tuple=True)[0].tolist()
        if empty:
            raise KgrecError(f"item {items.ids[empty[0]]!r} has neither a description nor a link to the graph: nothing to embed it from")
        with torch.inference_mode():
            vectors = content.to(z.device)(inputs).to(z.dtype)
        if not content.uses_kg:  # a text-only content model: an item with links but no text keeps its propagation
            no_text = inputs.empty_rows(text_only=True).to(vectors.device).unsqueeze(1)
            vectors = torch.where(no_text, z_ext[nodes.to(z_ext.device)].to(vectors), vectors)
        z_ext = torch.cat([z, vectors])  # the trained nodes keep their embeddings: warm rankings do not move
    return EmbeddedItems(g_ext, x0_ext, z_ext, nodes)


# --------------------------------------------------------------------------- front ends
def _message_degree(g: GraphTensors) -> np.ndarray:
    return torch.bincount(g.edge_index[0].cpu(), minlength=g.num_nodes).numpy()


def graph_rdf_settings(kg: KnowledgeGraph) -> RdfSource:
    """How the graph's own RDF was read (its spec's ``[rdf]`` table, kept in the manifest).

    New RDF is read the same way: the same description, label and type predicates, the same
    ignored predicates, the same item matching rule. A graph built before kgrec kept these (or
    from an importer) gets the defaults. The file format is taken from each new file's
    extension, whatever the graph's files were.
    """
    stored = kg.manifest.get("rdf")
    if not isinstance(stored, dict):
        return RdfSource()
    known = {f.name for f in dataclasses.fields(RdfSource)}
    settings = {k: v for k, v in stored.items() if k in known}
    settings.update(paths=[], format=None)
    return RdfSource(**settings)


def cold_items_from_rdf(
    paths: list[Path],
    kg: KnowledgeGraph,
    g: GraphTensors,
    *,
    item_ids: list[str] | None = None,
    item_iri: str | None = None,
    rdf: RdfSource | None = None,
    known_ids: set[str] | None = None,
) -> ColdItems:
    """New items described by RDF files, linked to the nodes of the trained graph.

    The files are read as ``kgrec build`` reads RDF (:mod:`kgrec.ingest`: the same readers and
    checks, the graph's predicates and ignore list, :func:`graph_rdf_settings`), and items are
    matched to resources by the graph's own rule (:func:`~kgrec.ingest.matching.match_items`;
    ``item_iri`` replaces it by a template). Which resources are new items: with ``item_ids``,
    those; without, every resource that has a label or a description, is not a node of the
    graph and names an item id (:func:`~kgrec.ingest.matching.item_id_namer`) that is not an
    item yet.

    Triples between a new item and a node of the training graph (an entity by IRI, an item by
    the IRI it was matched to) become links, when the predicate is a relation of the graph and
    the node takes part in message passing; the rest are counted in :attr:`ColdItems.report`.

    Raises:
        KgrecError: unreadable RDF, a requested item the RDF does not describe, an id that is
            already an item, or no new item at all.
    """
    rdf = rdf or graph_rdf_settings(kg)
    if item_iri is not None:
        rdf = dataclasses.replace(rdf, item_iri=item_iri, link=None)
    paths = [Path(p) for p in paths]
    build_report = BuildReport()
    parts = [read_statements(p, rdf.format, report=build_report) for p in paths]
    statements = unique_statements(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
    resources = statement_iris(statements)
    triples, texts, _ = knowledge_from_statements(statements, rdf, build_report)
    existing = set(kg.item_index) | set(known_ids or ())
    offsets = kg.node_offsets()
    entity_node = {}
    for t in kg.node_types[2:]:
        for k, iri in enumerate(kg.nodes[t]["id"].tolist()):
            entity_node[iri] = offsets[t] + k
    report: Counter = Counter()

    if item_ids is not None:
        matches = match_items(item_ids, resources, rdf)
        missing = [i for i in item_ids if matches.get(str(i)) is None]
        if missing:
            raise KgrecError(
                f"the RDF says nothing about item {missing[0]!r} by the graph's matching rule "
                f"({_rule(rdf)}); name the IRI pattern with --item-iri", path=paths[0],
            )
        ids = [str(i) for i in item_ids]
        iris = [matches[i] for i in ids]
    else:
        id_of = item_id_namer(rdf)
        described = texts["node"].tolist()
        iris = [n for n in described if n not in entity_node and id_of(n) is not None and id_of(n) not in existing]
        skipped = len(described) - len(iris)
        if skipped:
            report["described resources already in the graph (skipped)"] += skipped
        ids = [id_of(i) for i in iris]
    clash = [i for i in ids if i in existing]
    if clash:
        raise KgrecError(f"item id(s) already in the run: {', '.join(clash[:5])}; new items need new ids (`kgrec add-items --force` replaces items added earlier)", path=paths[0])
    if not iris:
        raise KgrecError("the RDF describes no new item (a resource with a label or description that is not yet in the graph)", path=paths[0])

    position = {iri: k for k, iri in enumerate(iris)}
    item_node = _item_nodes_by_iri(kg)
    degree = _message_degree(g)
    relation_of = {iri: name for name, iri in kg.relations.items()}
    known_relations = set(g.relation_names)
    type_of_node = _node_type_lookup(kg)
    rows = []
    for head, pred, tail in triples.itertuples(index=False):
        head, pred, tail = str(head), str(pred), str(tail)
        for new_end, other, outgoing in ((head, tail, True), (tail, head, False)):
            if new_end not in position:
                continue
            node = entity_node.get(other)
            if node is None and other not in position:
                node = item_node.get(other)
            if node is None:
                report["triples to nodes the graph does not have"] += 1
                continue
            name = relation_of.get(pred, relation_name(pred))
            other_type = type_of_node(node)
            label = f"{ITEM}:{name}:{other_type}" if outgoing else f"{other_type}:{name}:{ITEM}"
            if label not in known_relations:
                report["triples whose relation the trained graph does not have"] += 1
            elif degree[node] == 0:
                report["triples to nodes left out of message passing"] += 1
            else:
                rows.append((position[new_end], label, node, outgoing))
                report["links kept"] += 1
    text_of = texts.set_index("node")
    labels, descriptions, item_texts = [], [], []
    for iri in iris:
        label = text_of.at[iri, "label"] if iri in text_of.index else None
        description = text_of.at[iri, "description"] if iri in text_of.index else None
        labels.append(label)
        descriptions.append(description)
        item_texts.append(node_text(label, description))
    links = pd.DataFrame(rows, columns=LINK_COLUMNS).drop_duplicates(ignore_index=True)
    return ColdItems(ids, labels, item_texts, links, report, iris=iris, descriptions=descriptions)


def _rule(rdf: RdfSource) -> str:
    if rdf.item_iri is not None:
        return f"the IRI template {rdf.item_iri!r}"
    if rdf.link is not None:
        return f"the link file {rdf.link}"
    return "an IRI ending in '/<id>' or '#<id>'"


def _item_nodes_by_iri(kg: KnowledgeGraph) -> dict[str, int]:
    """IRI an item was matched to at build time -> its global node (items without RDF left out)."""
    frame = kg.nodes[ITEM]
    if "iri" not in frame.columns:
        return {}
    start = kg.node_offsets()[ITEM]
    return {iri: start + k for k, iri in enumerate(frame["iri"].tolist()) if isinstance(iri, str)}


def _node_type_lookup(kg: KnowledgeGraph):
    """Global node index -> node type name."""
    offsets = kg.node_offsets()
    starts = np.array([offsets[t] for t in kg.node_types])
    names = kg.node_types

    def lookup(node: int) -> str:
        return names[int(np.searchsorted(starts, node, side="right")) - 1]

    return lookup


def cold_items_from_graph(full: KnowledgeGraph, items: list[int], warm: KnowledgeGraph, g: GraphTensors) -> ColdItems:
    """Items of a built graph (``full``), as cold items for a model trained on ``warm``.

    ``warm`` is ``full`` without those items (:func:`kgrec.bench.coldstart.drop_items`):
    the items' knowledge edges in ``full`` become links to the same entities (matched by
    type and IRI) and items (matched by id) of ``warm``. Interactions are not looked at.
    """
    offsets_full, offsets_warm = full.node_offsets(), warm.node_offsets()
    position = {offsets_full[ITEM] + i: k for k, i in enumerate(items)}
    warm_node: dict[tuple[str, str], int] = {}
    for t in warm.node_types[1:]:
        for k, key in enumerate(warm.nodes[t]["id"].tolist()):
            warm_node[(t, key)] = offsets_warm[t] + k
    degree = _message_degree(g)
    known_relations = set(g.relation_names)
    report: Counter = Counter()
    rows = []
    for src_t, rel, dst_t in full.knowledge_edge_types():
        if ITEM not in (src_t, dst_t):
            continue
        ei = full.data[src_t, rel, dst_t].edge_index
        label = f"{src_t}:{rel}:{dst_t}"
        src_ids = full.nodes[src_t]["id"].to_numpy()
        dst_ids = full.nodes[dst_t]["id"].to_numpy()
        for s, d in ei.t().tolist():
            for new_end, other_t, other, outgoing in (
                (offsets_full[src_t] + s, dst_t, dst_ids[d], True),
                (offsets_full[dst_t] + d, src_t, src_ids[s], False),
            ):
                if new_end not in position:
                    continue
                node = warm_node.get((other_t, other))
                if node is None:
                    report["links to other held-out items (dropped)"] += 1
                elif label not in known_relations:
                    report["links whose relation the trained graph does not have"] += 1
                elif degree[node] == 0:
                    report["links to nodes left out of message passing"] += 1
                else:
                    rows.append((position[new_end], label, node, outgoing))
                    report["links kept"] += 1
    frame = full.nodes[ITEM].iloc[items]
    labels = frame["label"].tolist()
    descriptions = frame["text"].tolist()
    texts = [node_text(lab, desc) for lab, desc in zip(labels, descriptions)]
    links = pd.DataFrame(rows, columns=LINK_COLUMNS).drop_duplicates(ignore_index=True)
    iris = frame["iri"].tolist() if "iri" in frame.columns else None
    return ColdItems(frame["id"].astype(str).tolist(), labels, texts, links, report, iris=iris, descriptions=descriptions)


def catalogue_with(kg: KnowledgeGraph, added: list[ColdItems]) -> KnowledgeGraph:
    """``kg`` with items added after training: item rows and their links as knowledge edges.

    What exports and SPARQL see of a run that has added items: the new items are items like the
    others (after the trained ones, in order), with their label, description and IRI, and
    every link becomes a knowledge edge of its relation in both directions. They have no
    interactions. ``kg`` itself is not changed.
    """
    if not added:
        return kg
    offsets = kg.node_offsets()
    type_of_node = _node_type_lookup(kg)
    new_items, edges = [], {}
    first = kg.num_items
    for cold in added:
        n = len(cold)
        new_items.append(
            pd.DataFrame(
                {
                    "id": pd.Series(cold.ids, dtype="string"),
                    "label": pd.Series(cold.labels, dtype=object),
                    "text": pd.Series(cold.descriptions or [None] * n, dtype=object),
                    "iri": pd.Series(cold.iris or [None] * n, dtype=object),
                }
            )
        )
        for item, relation, node, outgoing in cold.links.itertuples(index=False):
            other_type = type_of_node(int(node))
            other = int(node) - offsets[other_type]
            src_t, rel, dst_t = relation.split(":")
            pair = (first + int(item), other) if outgoing else (other, first + int(item))
            edges.setdefault((src_t, rel, dst_t), []).append(pair)
        first += n
    nodes = dict(kg.nodes)
    nodes[ITEM] = pd.concat([kg.nodes[ITEM], *new_items], ignore_index=True)
    data = kg.data.clone()
    data[ITEM].num_nodes = len(nodes[ITEM])
    for (src_t, rel, dst_t), pairs in edges.items():
        extra = torch.tensor(pairs, dtype=torch.long).t()
        for et, ei in (((src_t, rel, dst_t), extra), ((dst_t, REVERSE_PREFIX + rel, src_t), extra.flip(0))):
            old = data[et].edge_index if et in data.edge_types else torch.empty(2, 0, dtype=torch.long)
            data[et].edge_index = torch.cat([old, ei], dim=1)
    manifest = dict(kg.manifest)
    manifest["node_counts"] = {t: len(f) for t, f in nodes.items()}
    return KnowledgeGraph(data, nodes, kg.interactions, dict(kg.relations), list(kg.behaviours), manifest, kg.statements)
