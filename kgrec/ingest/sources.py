"""The typed tables that ingestion hands to graph building.

Every reader in :mod:`kgrec.ingest` ends in a :class:`SourceTables`; the graph builder reads
nothing else. Ids stay as the strings the user wrote (item ids, user ids, IRIs) until the
graph builder maps them to integer indices.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

#: Columns of :attr:`SourceTables.interactions`.
INTERACTION_COLUMNS = ["user", "item", "event", "rating", "timestamp"]
#: Columns of :attr:`SourceTables.triples` (IRIs or, for KGAT/RecBole imports, entity keys).
TRIPLE_COLUMNS = ["head", "relation", "tail"]
#: Columns of :attr:`SourceTables.texts`.
TEXT_COLUMNS = ["node", "label", "description"]
#: Columns of :attr:`SourceTables.node_types`.
NODE_TYPE_COLUMNS = ["node", "type"]


@dataclass
class BuildReport:
    """What a build read, kept and dropped, with a count per reason for every drop.

    ``counts`` is keyed by source (e.g. ``"interactions"``, ``"triples"``) then by
    ``"read"``, ``"kept"`` or ``"dropped: <reason>"``.
    """

    counts: dict[str, Counter] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, source: str, key: str, n: int = 1) -> None:
        if n:
            self.counts.setdefault(source, Counter())[key] += int(n)

    def read(self, source: str, n: int) -> None:
        self.add(source, "read", n)

    def kept(self, source: str, n: int) -> None:
        self.add(source, "kept", n)

    def dropped(self, source: str, reason: str, n: int = 1) -> None:
        self.add(source, f"dropped: {reason}", n)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def merge(self, other: "BuildReport") -> None:
        for source, counter in other.counts.items():
            self.counts.setdefault(source, Counter()).update(counter)
        self.notes.extend(other.notes)

    def to_dict(self) -> dict:
        return {
            "counts": {s: dict(sorted(c.items())) for s, c in self.counts.items()},
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "BuildReport":
        return cls({s: Counter(c) for s, c in d.get("counts", {}).items()}, list(d.get("notes", [])))

    def format(self) -> str:
        lines = ["Build report"]
        for source, counter in self.counts.items():
            lines.append(f"  {source}:")
            first = [k for k in ("read", "kept") if k in counter]
            dropped = sorted(k for k in counter if k.startswith("dropped"))
            other = sorted(k for k in counter if k not in first and k not in dropped)
            for key in first + other + dropped:
                lines.append(f"    {key:<48} {counter[key]:>10,}")
        for text in self.notes:
            lines.append(f"  note: {text}")
        return "\n".join(lines)


@dataclass
class SourceTables:
    """Validated, deduplicated inputs to :func:`kgrec.graph.build.build_graph`.

    Attributes:
        interactions: one row per positive user-item event. Columns
            :data:`INTERACTION_COLUMNS`: ``user`` and ``item`` (str, original ids), ``event``
            (str, e.g. ``"click"``; one edge type per distinct value), ``rating`` (float, NaN
            when absent), ``timestamp`` (float seconds, NaN when absent). Rows that fail the
            implicit-feedback rule are already dropped (and counted in the report).
        item_nodes: item id -> node key (the IRI the item was matched to, or ``None`` when
            it matched no RDF resource). Every item of ``interactions`` is a key.
        user_nodes: user id -> node key for users that have RDF, else absent.
        triples: knowledge triples between node keys. Columns :data:`TRIPLE_COLUMNS`
            (``relation`` is the predicate IRI). Only IRI objects, never literals.
        texts: one row per node key with text: columns :data:`TEXT_COLUMNS`; ``label`` and
            ``description`` are str or None.
        node_types: entity node key -> type name (e.g. from ``rdf:type``). Keys absent here
            get the type ``"entity"``. Never says "user" or "item".
        report: what was read, kept and dropped.
    """

    interactions: pd.DataFrame
    item_nodes: dict[str, str | None]
    triples: pd.DataFrame
    texts: pd.DataFrame
    report: BuildReport
    user_nodes: dict[str, str] = field(default_factory=dict)
    node_types: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, list[str]] = field(default_factory=dict)
    """Which files went in, by role (``interactions``, ``rdf``, ``link``...), for the manifest."""
    rdf_settings: dict | None = None
    """How the RDF was read (the spec's ``[rdf]`` table, paths resolved), for the manifest: RDF
    added later (cold-start items) is read and matched the same way."""
    interaction_settings: dict | None = None
    """How the log was read (the spec's ``[interactions]`` table, path resolved), for the
    manifest: interactions appended later (``kgrec build --append``, ``kgrec update``) are read
    the same way."""
    statements: pd.DataFrame | None = None
    """The RDF's classes and literals as written (:func:`kgrec.ingest.knowledge.original_statements`),
    for exports that give back what went in; None from importers without RDF."""

    @staticmethod
    def empty_triples() -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in TRIPLE_COLUMNS})

    @staticmethod
    def empty_texts() -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TEXT_COLUMNS})
