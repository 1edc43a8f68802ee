"""Node texts -> a BERT feature matrix in the graph's homogeneous node order.

Which text a node gets (:func:`node_text`): its label and its description joined as
``"label. description"``, or whichever of the two exists. A node with neither (a user without
RDF, a Freebase entity known only by its id) gets a zero row and ``has_text = False``; the
model gives every node a learnable ID embedding as well, so such nodes still have an input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kgrec.config import TextConfig
from kgrec.graph.container import KnowledgeGraph
from kgrec.text.encoder import TextEncoder

_SENTENCE_END = (".", "!", "?", ":", ";")


def _clean(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = " ".join(str(value).split())
    return text or None


def node_text(label: object, description: object) -> str | None:
    """The text encoded for one node: ``"label. description"``, whichever exists, or None.

    The label is left out when the description already starts with it (e.g. "Toy Story
    (1995). Genres: ...") so that the encoder does not see the title twice.
    """
    label, description = _clean(label), _clean(description)
    if label and description:
        if description.lower().startswith(label.lower()):
            return description
        separator = " " if label.endswith(_SENTENCE_END) else ". "
        return label + separator + description
    return label or description


def node_texts(kg: KnowledgeGraph) -> list[str | None]:
    """Every node's text, in the homogeneous order of :attr:`KnowledgeGraph.node_types`."""
    texts: list[str | None] = []
    for node_type in kg.node_types:
        frame = kg.nodes[node_type]
        labels = frame["label"] if "label" in frame else [None] * len(frame)
        descriptions = frame["text"] if "text" in frame else [None] * len(frame)
        texts.extend(node_text(lab, desc) for lab, desc in zip(labels, descriptions))
    return texts


def build_node_features(
    kg: KnowledgeGraph, config: TextConfig, device: str | torch.device = "cpu", encoder: TextEncoder | None = None
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """BERT features for all nodes of ``kg``.

    Args:
        kg: the graph; nodes are laid out users, items, then entity types (the order of
            :attr:`KnowledgeGraph.node_types`), each type in node index order.
        config: which model, batch size, truncation and cache folder.
        device: where the encoder runs (``cpu``, ``cuda``, ``auto``...).
        encoder: an encoder of ``config`` already loaded (``kgrec update`` encodes its new
            nodes' texts with the same one); None loads one.

    Returns:
        ``(features, has_text)``: ``float32 [num_nodes, d]`` on the CPU (zero rows for nodes
        without text) and ``bool [num_nodes]``. Each distinct text is encoded once.
    """
    texts = node_texts(kg)
    encoder = encoder or TextEncoder(
        config.model,
        device=device,
        batch_size=config.batch_size,
        max_length=config.max_length,
        cache_dir=Path(config.cache_dir) if config.cache_dir else None,
    )
    has_text = np.array([t is not None for t in texts], dtype=bool)
    distinct = list(dict.fromkeys(t for t in texts if t is not None))
    features = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    if distinct:
        embeddings = encoder.encode(distinct)
        row_of = {t: i for i, t in enumerate(distinct)}
        rows = [row_of[t] for t in texts if t is not None]
        features[has_text] = embeddings[rows]
    return torch.from_numpy(features), torch.from_numpy(has_text)
