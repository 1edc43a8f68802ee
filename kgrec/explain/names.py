"""Readable names for global node indices: ``user 196``, ``Kolya``, ``Comedy``, ``m.01_njt``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from kgrec.graph.container import ITEM, USER, KnowledgeGraph


def _short(key: str) -> str:
    """An IRI's local name (after the last ``/``, ``#`` or ``:``), or the key itself."""
    return re.split(r"[/#:]", key.rstrip("/#"))[-1] or key


@dataclass
class NodeNames:
    """Type, id and display name of every node of a (possibly extended) training graph.

    Attributes:
        types: node type name per global index (``user``, ``item``, ``Genre``...).
        ids: original user/item id or entity IRI per global index.
        labels: label per global index (None when the node has none).
    """

    types: list[str]
    ids: list[str]
    labels: list[str | None]
    _item_pos: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, kg: KnowledgeGraph) -> "NodeNames":
        types, ids, labels = [], [], []
        for t in kg.node_types:
            frame = kg.nodes[t]
            types += [t] * len(frame)
            ids += frame["id"].astype(str).tolist()
            labels += [lab if isinstance(lab, str) and lab else None for lab in frame["label"].tolist()]
        return cls(types, ids, labels)

    def extend(self, node_type: str, ids: list[str], labels: list[str | None]) -> "NodeNames":
        """Names for nodes appended to the graph (cold items, cold users), in order."""
        return NodeNames(self.types + [node_type] * len(ids), self.ids + list(ids), self.labels + list(labels))

    def __len__(self) -> int:
        return len(self.ids)

    def kind(self, node: int) -> str:
        return self.types[node]

    def name(self, node: int) -> str:
        """What a person reads: ``user 196``, ``Kolya [242]``, ``Comedy``, ``m.01_njt``."""
        t, key, label = self.types[node], self.ids[node], self.labels[node]
        if t == USER:
            return f"user {key}"
        if t == ITEM:
            return f"{label} [{key}]" if label and label != key else f"item {key}"
        return label or _short(key)

    def item_node(self, item_id: str) -> int | None:
        """Global index of an item id (trained or added), or None."""
        if not self._item_pos:
            arr = np.array(self.types)
            for node in np.nonzero(arr == ITEM)[0].tolist():
                self._item_pos[self.ids[node]] = node
        return self._item_pos.get(item_id)
