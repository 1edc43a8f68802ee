"""Synthetic recommendation data of any size: an invented book shop with a knowledge graph.

Real data sets are small (ml-100k) or cannot be redistributed; to know whether kgrec builds and
trains at the scale of Amazon-Book, and at ten times that, it needs data of exactly that shape.
:func:`write_synth` writes, into one folder, the same inputs a user would bring:

* ``interactions.csv`` — ``user,item,event,rating,timestamp`` (the columns ``kgrec build`` reads
  by default), in time order; events ``view``, ``cart``, ``buy`` and ``rate`` (a rating 1-5
  only on ``rate`` rows); every (user, item) pair at most once, so every row is kept;
* ``knowledge.nt`` — N-Triples: exactly ``triples`` IRI-to-IRI statements (the knowledge
  edges), plus an ``rdfs:label`` and a ``schema:description`` for every item, and an
  ``rdf:type`` and an ``rdfs:label`` for every entity (the way the ml-100k conversion carries
  its text). Items are ``<http://example.org/kgrec-synth/item/{id}>``, so the default matching
  rule of ``kgrec build`` (an IRI ending in ``/{id}``) finds every one of them;
* ``graph.toml`` — a graph spec, so that ``kgrec build --spec DIR/graph.toml --out graphs/NAME``
  is all it takes (the same as ``kgrec build --interactions DIR/interactions.csv --rdf
  DIR/knowledge.nt --out graphs/NAME``);
* ``about.json`` — the parameters and the counts.

With ``scenes`` (``kgrec data synth --scenes N``) the log gets a ``scene`` column
(``scene-0`` ... ``scene-{N-1}``) and the tastes become scene-specific (:func:`sample_scene_interactions`):
each user has one home segment, and in scene ``s`` prefers the segment ``shift[s][home]`` (scene 0
keeps the home segment; each other scene maps segments by a permutation of its own). Scene sizes
fall by a factor :data:`SCENE_DECAY` each, so the last scene is sparse. The truth goes to
``truth/scene_tastes.csv`` (user, scene, segment: the segment that user favours in that scene)
and ``truth/item_segments.csv`` (item, segment). Without ``scenes`` nothing changes: the same
seed gives the same bytes as before.

Shape, so that the data stresses what real data stresses:

* **power-law degrees** everywhere: user activity, item popularity and entity popularity follow
  Zipf-like weights (``rank ** -exponent``), so a few users, items and entities take a large
  share of the edges and most have one or two; every user, item and entity still takes part in
  at least one interaction or triple, so the built graph has exactly the counts asked for;
* **six entity types** (genre, person, publisher, series, topic, place) and **twelve relation
  types** with very different fan-outs: a handful of genres shared by thousands of items, many
  authors with a few books each, topic-to-topic links inside the entity graph, places reached
  only through people and publishers (two hops from items, as in KGAT's Freebase data);
* **text**: every item has a title and a one-sentence description naming its genre, author,
  publisher, series and topics; every entity has a label.

The ``amazon-book`` preset has the counts of KGAT's Amazon-Book (70,679 users, 24,915 items,
847,733 interactions, 88,572 entities, 2,557,746 triples). KGAT counts its items among the
entities; here ``entities`` are the non-item nodes only, so the synthetic graph has 24,915 more
knowledge nodes than KGAT's, which errs on the large side for a scale test. ``amazon-book-10x``
multiplies every count by ten.

Everything is drawn with numpy from one seeded generator (the same seed gives the same bytes),
vectorised; the files are written in chunks (the 10x preset fits a 24 GiB machine) to temporary
files that replace their targets only when complete (:func:`kgrec.io.atomic_path`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kgrec.errors import KgrecError
from kgrec.io import atomic_path, write_json, write_text

BASE = "http://example.org/kgrec-synth/"
ITEM_IRI = BASE + "item/{id}"
VOCAB = BASE + "vocab#"
SCHEMA = "http://schema.org/"
SKOS = "http://www.w3.org/2004/02/skos/core#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
DESCRIPTION = SCHEMA + "description"

#: Preset name -> counts (users, items, interactions, entities, triples).
PRESETS: dict[str, dict[str, int]] = {
    "amazon-book": dict(users=70_679, items=24_915, interactions=847_733, entities=88_572, triples=2_557_746),
}
PRESETS["amazon-book-10x"] = {k: 10 * v for k, v in PRESETS["amazon-book"].items()}
COUNT_NAMES = ("users", "items", "interactions", "entities", "triples")

#: Unix time of 2015-01-01 00:00 UTC; the log spans three years from there.
START_TIME = 1_420_070_400
TIME_SPAN = 3 * 365 * 86_400
EVENTS = np.array(["view", "cart", "buy", "rate"])
EVENT_SHARES = np.array([0.50, 0.15, 0.20, 0.15])
RATING_SHARES = np.array([0.05, 0.07, 0.15, 0.33, 0.40])  # ratings 1..5: skewed high, as in shops
#: Zipf-like exponents of user activity and item popularity (``weight = rank ** -exponent``).
USER_EXPONENT = 0.6
ITEM_EXPONENT = 0.75
#: Taste: items fall into this many segments (neighbours in popularity rank go to different
#: segments, so every segment spans the whole popularity range), each user has a home segment,
#: and this share of a user's draws is moved to the item of nearly the same popularity in the
#: home segment. Without it the interactions would follow popularity alone and no model could
#: learn more than popularity; with it, validation curves mean something at any size.
TASTE_SEGMENTS = 64
TASTE_SHARE = 0.5
#: Rows per chunk written to ``interactions.csv`` and statements per chunk of ``knowledge.nt``.
CHUNK = 1_000_000
#: With scenes: fewer, larger segments than :data:`TASTE_SEGMENTS` and a stronger pull, so the
#: planted scene-specific taste is what a model must learn, not noise around popularity.
SCENE_SEGMENTS = 16
SCENE_TASTE_SHARE = 0.7
#: Each scene has this share of the previous scene's interactions (3 scenes: 69%, 23%, 8%).
SCENE_DECAY = 1 / 3


@dataclass(frozen=True)
class EntityType:
    name: str  # IRI path segment and key
    cls: str  # rdf:type class (local name in VOCAB): the node type in the built graph
    prefix: str  # local names are prefix + number, never "i..." (the items' names)
    share: float  # share of the entities


@dataclass(frozen=True)
class Relation:
    predicate: str
    head: str  # "item" or an entity type name
    tail: str  # an entity type name
    share: float  # share of the triples (before the minimum each relation needs)
    head_exponent: float  # Zipf-like skew of how many such triples a head has
    tail_exponent: float  # ... and of how often a tail is the object


ENTITY_TYPES = [
    EntityType("genre", "Genre", "g", 0.004),
    EntityType("person", "Person", "a", 0.40),
    EntityType("publisher", "Organization", "p", 0.04),
    EntityType("series", "BookSeries", "s", 0.12),
    EntityType("topic", "Topic", "t", 0.30),
    EntityType("place", "Place", "l", 0.136),
]
RELATIONS = [
    # item -> entity: 45 % of the triples
    Relation(SCHEMA + "genre", "item", "genre", 0.05, 0.3, 1.0),
    Relation(SCHEMA + "author", "item", "person", 0.06, 0.3, 0.8),
    Relation(SCHEMA + "publisher", "item", "publisher", 0.03, 0.0, 1.1),
    Relation(SCHEMA + "isPartOf", "item", "series", 0.03, 0.0, 0.5),
    Relation(SCHEMA + "about", "item", "topic", 0.28, 0.6, 0.9),
    # entity -> entity: 55 %
    Relation(SCHEMA + "birthPlace", "person", "place", 0.04, 0.0, 1.0),
    Relation(SCHEMA + "knowsAbout", "person", "topic", 0.20, 0.8, 0.9),
    Relation(SCHEMA + "location", "publisher", "place", 0.01, 0.3, 1.0),
    Relation(SCHEMA + "genre", "series", "genre", 0.02, 0.3, 1.0),
    Relation(SKOS + "broader", "topic", "topic", 0.10, 0.5, 1.1),
    Relation(SKOS + "related", "topic", "topic", 0.15, 0.7, 0.8),
    Relation(SCHEMA + "containedInPlace", "place", "place", 0.03, 0.3, 1.2),
]
#: Entity type -> the relation whose objects cover it (each entity is the object of one at least).
COVERING = {"genre": 0, "person": 1, "publisher": 2, "series": 3, "topic": 4, "place": 5}

# Words for titles, descriptions and labels (ASCII, no quotes or backslashes: literal-safe).
ADJECTIVES = (
    "Silent Hidden Broken Golden Distant Burning Forgotten Crimson Secret Endless Quiet Wild "
    "Hollow Bright Frozen Last Lost Gentle Restless Iron Paper Glass Velvet Bitter Sweet Northern "
    "Southern Eastern Western Little Great Dark Midnight Summer Winter Autumn Spring Stolen Wandering"
).split()
NOUNS = (
    "River Garden Empire Letters Harbor Kingdom Mirror Orchard Tide Lantern Compass Map Bridge "
    "Island Forest Station Machine Library Signal Winter Crown Engine Shadow Voyage Archive Mountain "
    "Window Promise Storm Child House City Road Sea Fire Star Song Clock Key Door"
).split()
GENRE_NAMES = (
    "Mystery|Thriller|Romance|Science Fiction|Fantasy|Horror|Historical Fiction|Biography|History|"
    "Poetry|Travel|Cookery|Self-Help|Philosophy|Economics|Politics|Science|Mathematics|Art|Music|"
    "Children's|Young Adult|Crime|Humour|Religion|Psychology|Business|Health|Sport|Nature"
).split("|")
FIRST_NAMES = (
    "Ada Ben Clara David Elena Felix Grace Hugo Ines Jonas Kira Leo Maya Nils Olga Pablo Rosa "
    "Samir Tara Ugo Vera Wen Xavier Yara Zoe Amir Bea Cyril Dina Emil"
).split()
LAST_NAMES = (
    "Abbott Brandt Castillo Dubois Eriksen Fontaine Garcia Hale Ibsen Jansen Kowalski Lindqvist "
    "Moreau Novak Okafor Petrov Quinn Rossi Sato Tanaka Urban Varga Weber Xu Young Zeller Arden "
    "Bishop Carver Delgado"
).split()
PUBLISHER_WORDS = "Press Books House Publishing Editions Library Media Imprint".split()
SERIES_WORDS = "Chronicles Saga Cycle Trilogy Quartet Files Mysteries Adventures".split()
TOPIC_WORDS = (
    "memory exile war friendship grief ambition faith science power family money music art "
    "identity migration justice love revenge childhood nature technology history language sea "
    "cities travel crime madness hope loss"
).split()
PLACE_WORDS = "Haven Ford Bury Vale Mouth Port Wick Field Cross Moor Stead Ridge".split()


# --------------------------------------------------------------------------- parameters
def resolve_counts(preset: str | None = None, **counts: int | None) -> dict[str, int]:
    """The five counts: the preset's, overridden by those given (None = not given).

    Raises:
        KgrecError: an unknown preset, a count missing with no preset, or a count that is not a
            positive integer.
    """
    if preset is not None and preset not in PRESETS:
        raise KgrecError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    resolved = dict(PRESETS[preset]) if preset else {}
    for name in COUNT_NAMES:
        value = counts.get(name)
        if value is not None:
            resolved[name] = value
    missing = [name for name in COUNT_NAMES if name not in resolved]
    if missing:
        raise KgrecError(
            "missing " + ", ".join(f"--{m}" for m in missing) + f" (or give --preset, one of {', '.join(PRESETS)})"
        )
    for name in COUNT_NAMES:
        value = resolved[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise KgrecError(f"--{name} must be a positive whole number, not {value!r}")
        resolved[name] = int(value)
    return resolved


def entity_counts(entities: int) -> dict[str, int]:
    """Entities per type: shares of ``entities`` (largest remainders), at least one each."""
    if entities < len(ENTITY_TYPES):
        raise KgrecError(
            f"--entities must be at least {len(ENTITY_TYPES)} (one per entity type: "
            f"{', '.join(t.name for t in ENTITY_TYPES)}), not {entities:,}"
        )
    shares = np.array([t.share for t in ENTITY_TYPES])
    counts = _apportion(entities - len(ENTITY_TYPES), shares) + 1
    return {t.name: int(n) for t, n in zip(ENTITY_TYPES, counts)}


def relation_counts(items: int, entities: int, triples: int) -> list[int]:
    """Triples per relation: each entity type gets at least as many objects as it has entities
    and the item relations at least one triple per item (so that everything can be covered);
    the rest goes by the relations' shares, never past a relation's distinct (head, tail) pairs.

    Raises:
        KgrecError: ``triples`` is too few to cover every item and entity, or more than the
            distinct pairs the relations can hold.
    """
    sizes = {"item": items, **entity_counts(entities)}
    capacity = np.array(
        [sizes[r.head] * sizes[r.tail] - (sizes[r.head] if r.head == r.tail else 0) for r in RELATIONS], dtype=np.int64
    )
    minimum = np.zeros(len(RELATIONS), dtype=np.int64)
    for kind, index in COVERING.items():
        minimum[index] = sizes[kind]
    item_relations = [k for k, r in enumerate(RELATIONS) if r.head == "item"]
    short = items - int(minimum[item_relations].sum())
    if short > 0:  # more items than item-relation objects: topics take the rest ("about")
        minimum[COVERING["topic"]] += short
    needed = int(minimum.sum())
    if triples < needed:
        raise KgrecError(
            f"--triples {triples:,} is too few for {items:,} items and {entities:,} entities: every item "
            f"and every entity takes part in a triple, which needs at least {needed:,} triples"
        )
    if triples > int(capacity.sum()):
        raise KgrecError(
            f"--triples {triples:,} is more than {items:,} items and {entities:,} entities can hold: "
            f"at most {int(capacity.sum()):,} distinct triples (raise --items or --entities)"
        )
    counts = minimum.copy()
    left = triples - needed
    shares = np.array([r.share for r in RELATIONS])
    while left > 0:  # water-filling: full relations drop out, the others share what remains
        room = capacity - counts
        open_ = room > 0
        extra = np.minimum(_apportion(left, np.where(open_, shares, 0.0)), room)
        if extra.sum() == 0:  # every open relation got a zero share: give one each in order
            extra = np.zeros_like(counts)
            for k in np.flatnonzero(open_)[:left]:
                extra[k] = 1
        counts += extra
        left -= int(extra.sum())
    return [int(c) for c in counts]


def check_counts(users: int, items: int, interactions: int, entities: int, triples: int) -> None:
    """Raise a :class:`KgrecError` for counts that no data set can have."""
    if interactions < max(users, items):
        raise KgrecError(
            f"--interactions {interactions:,} is too few: every one of the {users:,} users and "
            f"{items:,} items takes part in an interaction, so at least {max(users, items):,} are needed"
        )
    if interactions > users * items:
        raise KgrecError(
            f"--interactions {interactions:,} is more than {users:,} users x {items:,} items: each "
            f"(user, item) pair occurs once, so at most {users * items:,} interactions"
        )
    relation_counts(items, entities, triples)


def _apportion(total: int, shares: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``shares`` (whole numbers, largest remainders first)."""
    shares = np.asarray(shares, dtype=float)
    if total <= 0 or shares.sum() <= 0:
        return np.zeros(len(shares), dtype=np.int64)
    exact = total * shares / shares.sum()
    whole = np.floor(exact).astype(np.int64)
    rest = total - int(whole.sum())
    order = np.argsort(-(exact - whole), kind="stable")
    whole[order[:rest]] += 1
    return whole


# --------------------------------------------------------------------------- sampling
def zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf-like weights ``rank ** -exponent`` (summing to 1), ranks shuffled over the ``n`` ids."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    weights = weights[rng.permutation(n)]
    return weights / weights.sum()


def _first_unique(keys: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each key, in order: dedup that keeps draw order."""
    _, first = np.unique(keys, return_index=True)
    return np.sort(first)


def _weighted_without_replacement(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct positions drawn in proportion to ``weights`` (Efraimidis-Spirakis keys)."""
    keys = np.log(rng.random(len(weights))) / np.maximum(weights, 1e-300)
    if k >= len(weights):
        return np.arange(len(weights))
    return np.sort(np.argpartition(-keys, k - 1)[:k])


def sample_pairs(
    count: int,
    head_weights: np.ndarray,
    tail_weights: np.ndarray,
    rng: np.random.Generator,
    *,
    no_loops: bool = False,
    rounds: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct (head, tail) pairs, heads and tails drawn by their weights.

    Dense cases (more than a quarter of the possible pairs) draw from all pairs at once; sparse
    ones draw with replacement in rounds and drop repeats, then fill what is still missing
    uniformly from the pairs not taken.
    """
    n_head, n_tail = len(head_weights), len(tail_weights)
    capacity = n_head * n_tail - (n_head if no_loops else 0)
    if count > capacity:
        raise ValueError(f"{count} pairs asked of {capacity}")
    if count == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if 4 * count >= capacity and capacity <= 50_000_000:
        every = np.arange(n_head * n_tail, dtype=np.int64)
        heads, tails = every // n_tail, every % n_tail
        if no_loops:
            keep = heads != tails
            heads, tails = heads[keep], tails[keep]
        chosen = _weighted_without_replacement(head_weights[heads] * tail_weights[tails], count, rng)
        chosen = chosen[rng.permutation(len(chosen))]
        return heads[chosen], tails[chosen]
    keys = np.zeros(0, dtype=np.int64)
    for attempt in range(rounds + 1000):
        missing = count - len(keys)
        if missing <= 0:
            break
        draw = int(missing * 1.1) + 16
        if attempt < rounds:
            heads = rng.choice(n_head, draw, p=head_weights)
            tails = rng.choice(n_tail, draw, p=tail_weights)
        else:  # the heavy pairs are taken: fill uniformly
            heads = rng.integers(0, n_head, draw)
            tails = rng.integers(0, n_tail, draw)
        if no_loops:
            keep = heads != tails
            heads, tails = heads[keep], tails[keep]
        keys = np.concatenate([keys, heads.astype(np.int64) * n_tail + tails])
        keys = keys[_first_unique(keys)][:count]
    return keys // n_tail, keys % n_tail


def cover(column: np.ndarray, n: int, rng: np.random.Generator, present: np.ndarray | None = None) -> np.ndarray:
    """Rewrite ``column`` (ids in ``0..n-1``) so that every id is in it or in ``present``.

    Ids found nowhere replace repeats: rows whose id occurs more than once, never the last row
    of an id, so no id is lost. A rewritten row names an id that occurred nowhere, so the pair
    it belongs to stays distinct (and, the id being no subject either, never loops).
    """
    column = column.copy()
    seen = np.zeros(n, dtype=bool) if present is None else present.copy()
    seen[column] = True
    absent = np.flatnonzero(~seen)
    if len(absent) == 0:
        return column
    order = np.argsort(column, kind="stable")
    ids = column[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    candidates = np.sort(order[~first])  # every row but the first of its id
    if len(candidates) < len(absent):
        raise AssertionError("not enough repeated rows to cover every id")  # prevented by relation_counts
    chosen = rng.choice(candidates, len(absent), replace=False)
    column[chosen] = rng.permutation(absent)
    return column


def _scatter(pairs: list, relations: list[int], column: np.ndarray, side: int) -> None:
    """Put the pieces of a concatenated head (``side`` 0) or tail (1) column back."""
    at = 0
    for k in relations:
        n = len(pairs[k][side])
        part = column[at : at + n]
        pairs[k] = (part, pairs[k][1]) if side == 0 else (pairs[k][0], part)
        at += n


def user_degrees(users: int, items: int, interactions: int, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: at least one, at most ``items``, Zipf-like, summing exactly."""
    weights = zipf_weights(users, USER_EXPONENT, rng)
    degrees = 1 + rng.multinomial(interactions - users, weights)
    for _ in range(1000):  # a user past the cap gives the excess back to those below it
        np.minimum(degrees, items, out=degrees)
        short = interactions - int(degrees.sum())
        if short == 0:
            return degrees
        room = np.where(degrees < items, weights, 0.0)
        degrees += rng.multinomial(short, room / room.sum())
    np.minimum(degrees, items, out=degrees)  # (never seen: heavy skew on tiny sizes) fill in order
    short, room = interactions - int(degrees.sum()), items - degrees
    degrees += np.minimum(room, np.maximum(0, short - np.concatenate([[0], np.cumsum(room)[:-1]])))
    return degrees


def sample_interactions(users: int, items: int, interactions: int, rng: np.random.Generator):
    """(user, item) index arrays: distinct pairs, Zipf-like on both sides, everyone present.

    Sparse sizes (every preset) also get taste: see :data:`TASTE_SHARE`.
    """
    degrees = user_degrees(users, items, interactions, rng)
    popularity = zipf_weights(items, ITEM_EXPONENT, rng)
    user_of_row = np.repeat(np.arange(users), degrees)
    if 4 * interactions >= users * items:  # dense: each user's items without replacement
        item_of_row = np.concatenate(
            [_weighted_without_replacement(popularity, int(d), rng) for d in degrees]
        )
    else:
        keys = np.zeros(0, dtype=np.int64)
        need = degrees.copy()
        by_rank = np.argsort(-popularity, kind="stable")  # items, most popular first
        rank_of = np.empty(items, dtype=np.int64)
        rank_of[by_rank] = np.arange(items)
        segments = min(TASTE_SEGMENTS, items)
        home = rng.integers(0, segments, users)
        for _ in range(40):
            if not need.any():
                break
            u = np.repeat(np.arange(users), need)
            draw = rng.choice(items, len(u), p=popularity)
            taste = rng.random(len(u)) < TASTE_SHARE
            r = rank_of[draw[taste]]
            snapped = r - r % segments + home[u[taste]]
            draw[taste] = by_rank[np.where(snapped < items, snapped, r)]
            keys = np.concatenate([keys, u.astype(np.int64) * items + draw])
            keys = keys[_first_unique(keys)]
            need = degrees - np.bincount(keys // items, minlength=users)
        for u in np.flatnonzero(need):  # users whose remaining picks keep colliding: a few at most
            taken = keys[keys // items == u] % items
            free = np.setdiff1d(np.arange(items), taken)
            extra = free[_weighted_without_replacement(popularity[free], int(need[u]), rng)]
            keys = np.concatenate([keys, u * items + extra])
        keys = np.sort(keys)
        user_of_row, item_of_row = keys // items, keys % items
    item_of_row = cover(item_of_row, items, rng)
    return user_of_row, item_of_row


def scene_shares(scenes: int) -> np.ndarray:
    """Each scene's share of the interactions: falling by :data:`SCENE_DECAY` from scene 0."""
    shares = SCENE_DECAY ** np.arange(scenes, dtype=np.float64)
    return shares / shares.sum()


def sample_scene_interactions(users: int, items: int, interactions: int, scenes: int, rng: np.random.Generator):
    """(user, item, scene) index arrays with planted scene-specific tastes, and the truth.

    Items fall into :data:`SCENE_SEGMENTS` segments by popularity rank (as for the plain taste);
    every user has a home segment; scene ``s`` maps it through ``shift[s]`` (identity in scene 0,
    a random permutation in every other). A row of scene ``s`` comes from the user's segment in
    that scene with probability :data:`SCENE_TASTE_SHARE`, otherwise by popularity. Every
    (user, item) pair occurs once across all scenes, and every user and item takes part.

    Returns:
        ``(user, item, scene, truth)``, ``truth`` holding ``home`` ``[users]``, ``shift``
        ``[scenes, segments]`` and ``item_segment`` ``[items]``.
    """
    degrees = user_degrees(users, items, interactions, rng)
    popularity = zipf_weights(items, ITEM_EXPONENT, rng)
    by_rank = np.argsort(-popularity, kind="stable")
    rank_of = np.empty(items, dtype=np.int64)
    rank_of[by_rank] = np.arange(items)
    segments = min(SCENE_SEGMENTS, items)
    home = rng.integers(0, segments, users)
    shift = np.stack([np.arange(segments)] + [rng.permutation(segments) for _ in range(scenes - 1)])
    shares = scene_shares(scenes)
    keys = np.zeros(0, dtype=np.int64)
    scene_of_key = np.zeros(0, dtype=np.int64)
    need = degrees.copy()
    for _ in range(60):
        if not need.any():
            break
        u = np.repeat(np.arange(users), need)
        s = rng.choice(scenes, len(u), p=shares)
        draw = rng.choice(items, len(u), p=popularity)
        taste = rng.random(len(u)) < SCENE_TASTE_SHARE
        r = rank_of[draw[taste]]
        snapped = r - r % segments + shift[s[taste], home[u[taste]]]
        draw[taste] = by_rank[np.where(snapped < items, snapped, r)]
        keys = np.concatenate([keys, u.astype(np.int64) * items + draw])
        scene_of_key = np.concatenate([scene_of_key, s])
        first = _first_unique(keys)
        keys, scene_of_key = keys[first], scene_of_key[first]
        need = degrees - np.bincount(keys // items, minlength=users)
    for u in np.flatnonzero(need):  # users whose remaining picks keep colliding
        taken = keys[keys // items == u] % items
        free = np.setdiff1d(np.arange(items), taken)
        extra = free[_weighted_without_replacement(popularity[free], int(need[u]), rng)]
        keys = np.concatenate([keys, u * items + extra])
        scene_of_key = np.concatenate([scene_of_key, rng.choice(scenes, len(extra), p=shares)])
    order = np.argsort(keys, kind="stable")
    keys, scene_of_key = keys[order], scene_of_key[order]
    user_of_row, item_of_row = keys // items, cover(keys % items, items, rng)
    truth = {"home": home, "shift": shift, "item_segment": rank_of % segments}
    return user_of_row, item_of_row, scene_of_key, truth


def write_scene_truth(folder: Path, truth: dict) -> None:
    """``truth/scene_tastes.csv`` (user, scene, segment) and ``truth/item_segments.csv`` (item, segment)."""
    home, shift = truth["home"], truth["shift"]
    users, scenes = len(home), shift.shape[0]
    tastes = pd.DataFrame(
        {"user": np.repeat([f"u{u}" for u in range(users)], scenes),
         "scene": np.tile([f"scene-{s}" for s in range(scenes)], users),
         "segment": shift[:, home].T.reshape(-1)}
    )  # fmt: skip
    write_text(folder / "truth" / "scene_tastes.csv", tastes.to_csv(index=False, lineterminator="\n"))
    segments = pd.DataFrame({"item": [f"i{i}" for i in range(len(truth["item_segment"]))], "segment": truth["item_segment"]})
    write_text(folder / "truth" / "item_segments.csv", segments.to_csv(index=False, lineterminator="\n"))


# --------------------------------------------------------------------------- text
def _join(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays and scalars (pyarrow, vectorised)."""
    arrays = [p if isinstance(p, (pa.Array, pa.ChunkedArray)) else pa.scalar(str(p)) for p in parts]
    return pc.binary_join_element_wise(*arrays, "")


def _numbers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, type=pa.int64()), pa.string())


def _pick(words: list[str], n: int, rng: np.random.Generator) -> pa.Array:
    return pa.array(np.asarray(words, dtype=object)[rng.integers(0, len(words), n)], type=pa.string())


def entity_labels(kind: str, n: int, rng: np.random.Generator) -> pa.Array:
    """Invented labels for ``n`` entities of one type (not unique: real names repeat too)."""
    if kind == "genre":
        names = [GENRE_NAMES[k % len(GENRE_NAMES)] + (f" {k // len(GENRE_NAMES) + 1}" if k >= len(GENRE_NAMES) else "") for k in range(n)]
        return pa.array(names, type=pa.string())
    if kind == "person":
        return _join(_pick(FIRST_NAMES, n, rng), " ", _pick(LAST_NAMES, n, rng))
    if kind == "publisher":
        return _join(_pick(LAST_NAMES, n, rng), " ", _pick(PUBLISHER_WORDS, n, rng))
    if kind == "series":
        return _join("The ", _pick(NOUNS, n, rng), " ", _pick(SERIES_WORDS, n, rng))
    if kind == "topic":
        return _join(_pick([a.lower() for a in ADJECTIVES], n, rng), " ", _pick(TOPIC_WORDS, n, rng))
    if kind == "place":
        return _join(_pick(NOUNS, n, rng), _pick([w.lower() for w in PLACE_WORDS], n, rng))
    raise ValueError(kind)


def _first_tail(heads: np.ndarray, tails: np.ndarray, n: int, labels: pa.Array, skip: int = 0) -> pa.Array:
    """Per head ``0..n-1``: the label of its ``skip``-th tail in the relation ("" when none)."""
    order = np.lexsort((np.arange(len(heads)), heads))
    h, t = heads[order], tails[order]
    start = np.searchsorted(h, np.arange(n))
    end = np.searchsorted(h, np.arange(n), side="right")
    has = end - start > skip
    at = np.minimum(start + skip, max(len(t) - 1, 0))
    picked = np.where(has, at, -1)
    texts = np.full(n, "", dtype=object)
    if len(t):
        texts[has] = np.asarray(labels.take(pa.array(t[picked[has]])).to_pylist(), dtype=object)
    return pa.array(texts, type=pa.string())


def item_texts(items: int, triples: list, labels: dict[str, pa.Array], rng: np.random.Generator):
    """(titles, descriptions) of the items, naming their first genre, author, publisher, series
    and topics so that the text carries the same signal as the knowledge edges."""
    titles = _join("The ", _pick(ADJECTIVES, items, rng), " ", _pick(NOUNS, items, rng))
    by_tail = {}
    for relation, (heads, tails) in zip(RELATIONS, triples):
        if relation.head == "item":
            by_tail[relation.tail] = (heads, tails)
    first = {kind: _first_tail(*by_tail[kind], items, labels[kind]) for kind in ("genre", "person", "publisher", "series", "topic")}
    second_topic = _first_tail(*by_tail["topic"], items, labels["topic"], skip=1)

    def clause(before: str, values: pa.Array, after: str = "") -> pa.Array:
        empty = pc.equal(values, "")
        return pc.if_else(empty, "", _join(before, values, after))

    descriptions = _join(
        titles,
        ": a ",
        pc.if_else(pc.equal(first["genre"], ""), "", _join(pc.utf8_lower(first["genre"]), " ")),
        "book",
        clause(" by ", first["person"]),
        clause(", published by ", first["publisher"]),
        ".",
        clause(" Part of ", first["series"], "."),
        clause(" About ", first["topic"]),
        clause(" and ", second_topic),
        pc.if_else(pc.equal(first["topic"], ""), "", "."),
    )
    return titles, descriptions


# --------------------------------------------------------------------------- writing
def _write_array(handle, lines: pa.Array) -> None:
    """Write a string array whose values are whole lines, straight from its buffer."""
    lines = pa.concat_arrays(lines.chunks) if isinstance(lines, pa.ChunkedArray) else lines
    if len(lines) == 0:
        return
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32 if lines.type == pa.string() else np.int64)
    begin, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    handle.write(memoryview(lines.buffers()[2])[begin:end])


def _iri_column(kind: str, ids: np.ndarray) -> pa.Array:
    if kind == "item":
        return _join("<", BASE, "item/i", _numbers(ids), ">")
    t = next(t for t in ENTITY_TYPES if t.name == kind)
    return _join("<", BASE, kind, "/", t.prefix, _numbers(ids), ">")


def _literal_lines(handle, kind: str, predicate: str, texts: pa.Array) -> None:
    for start in range(0, len(texts), CHUNK):
        part = texts.slice(start, CHUNK)
        ids = np.arange(start, start + len(part))
        _write_array(handle, _join(_iri_column(kind, ids), f" <{predicate}> \"", part, "\" .\n"))


def write_interactions(
    path: Path, users: np.ndarray, items: np.ndarray, rng: np.random.Generator, scenes: np.ndarray | None = None
) -> None:
    """``interactions.csv`` in time order, written in chunks to a temporary file first
    (with a ``scene`` column when ``scenes`` is given)."""
    n = len(users)
    events = rng.choice(len(EVENTS), n, p=EVENT_SHARES)
    ratings = rng.choice(5, n, p=RATING_SHARES) + 1
    timestamps = START_TIME + rng.integers(0, TIME_SPAN, n)
    order = np.argsort(timestamps, kind="stable")
    with atomic_path(path, ".csv") as tmp, tmp.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("user,item,event,rating,timestamp" + (",scene\n" if scenes is not None else "\n"))
        for start in range(0, n, CHUNK):
            rows = order[start : start + CHUNK]
            event = events[rows]
            rating = pd.array(np.where(event == 3, ratings[rows], 0), dtype="Int64")
            rating[event != 3] = pd.NA
            frame = pd.DataFrame(
                {
                    "user": _join("u", _numbers(users[rows])).to_numpy(zero_copy_only=False),
                    "item": _join("i", _numbers(items[rows])).to_numpy(zero_copy_only=False),
                    "event": EVENTS[event],
                    "rating": rating,
                    "timestamp": timestamps[rows],
                }
            )
            if scenes is not None:
                frame["scene"] = np.char.add("scene-", scenes[rows].astype(str))
            frame.to_csv(handle, header=False, index=False, lineterminator="\n")


def write_synth(
    out: Path,
    *,
    users: int,
    items: int,
    interactions: int,
    entities: int,
    triples: int,
    seed: int = 7,
    name: str | None = None,
    preset: str | None = None,
    scenes: int | None = None,
) -> dict:
    """Generate a synthetic data set into folder ``out``; return what ``about.json`` records.

    Raises:
        KgrecError: impossible counts (see :func:`check_counts`), or ``out`` is a file.
    """
    out = Path(out)
    counts = resolve_counts(
        None, users=users, items=items, interactions=interactions, entities=entities, triples=triples
    )
    check_counts(**counts)
    if scenes is not None and scenes < 2:
        raise KgrecError(f"--scenes {scenes}: scenes need at least two (leave --scenes out for a log without scenes)")
    if out.exists() and not out.is_dir():
        raise KgrecError("exists and is not a folder", path=out)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    sizes = {"item": items, **entity_counts(entities)}
    per_relation = relation_counts(items, entities, triples)

    # --- interactions
    if scenes is None:
        user_of_row, item_of_row = sample_interactions(users, items, interactions, rng)
        write_interactions(out / "interactions.csv", user_of_row, item_of_row, rng)
    else:
        user_of_row, item_of_row, scene_of_row, truth = sample_scene_interactions(users, items, interactions, scenes, rng)
        write_interactions(out / "interactions.csv", user_of_row, item_of_row, rng, scenes=scene_of_row)
        write_scene_truth(out, truth)
        scene_counts = {f"scene-{s}": int(n) for s, n in enumerate(np.bincount(scene_of_row, minlength=scenes))}
        del scene_of_row
    del user_of_row, item_of_row

    # --- knowledge triples: an entity's popularity rank is the same in every relation
    ranks = {kind: rng.permutation(n) + 1 for kind, n in sizes.items()}

    def weights(kind: str, exponent: float) -> np.ndarray:
        w = ranks[kind].astype(np.float64) ** -exponent
        return w / w.sum()

    pairs = []
    for relation, count in zip(RELATIONS, per_relation):
        head_w, tail_w = weights(relation.head, relation.head_exponent), weights(relation.tail, relation.tail_exponent)
        pairs.append(sample_pairs(count, head_w, tail_w, rng, no_loops=relation.head == relation.tail))
    # every item is the subject of an item triple, every entity takes part in a triple
    item_rel = [k for k, r in enumerate(RELATIONS) if r.head == "item"]
    heads = cover(np.concatenate([pairs[k][0] for k in item_rel]), items, rng)
    _scatter(pairs, item_rel, heads, side=0)
    for kind in sizes:
        if kind == "item":
            continue
        rel = [k for k, r in enumerate(RELATIONS) if r.tail == kind]
        # an entity that is a subject somewhere is there already (and must not become its own object)
        present = np.zeros(sizes[kind], dtype=bool)
        for relation, (h, _) in zip(RELATIONS, pairs):
            if relation.head == kind:
                present[h] = True
        tails = cover(np.concatenate([pairs[k][1] for k in rel]), sizes[kind], rng, present=present)
        _scatter(pairs, rel, tails, side=1)
    _check_distinct(pairs)

    labels = {t.name: entity_labels(t.name, sizes[t.name], rng) for t in ENTITY_TYPES}
    titles, descriptions = item_texts(items, pairs, labels, rng)
    with atomic_path(out / "knowledge.nt", ".nt") as tmp, tmp.open("wb") as handle:
        _literal_lines(handle, "item", RDFS_LABEL, titles)
        _literal_lines(handle, "item", DESCRIPTION, descriptions)
        for t in ENTITY_TYPES:
            ids = np.arange(sizes[t.name])
            for start in range(0, len(ids), CHUNK):
                part = ids[start : start + CHUNK]
                _write_array(handle, _join(_iri_column(t.name, part), f" <{RDF_TYPE}> <{VOCAB}{t.cls}> .\n"))
            _literal_lines(handle, t.name, RDFS_LABEL, labels[t.name])
        for relation, (h, t) in zip(RELATIONS, pairs):
            for start in range(0, len(h), CHUNK):
                _write_array(
                    handle,
                    _join(
                        _iri_column(relation.head, h[start : start + CHUNK]),
                        f" <{relation.predicate}> ",
                        _iri_column(relation.tail, t[start : start + CHUNK]),
                        " .\n",
                    ),
                )
    seconds = time.perf_counter() - t0

    name = name or out.name
    spec = (
        f"# Synthetic data written by `kgrec data synth` (seed {seed}"
        + (f", preset {preset}" if preset else "")
        + ").\n# Build it with: kgrec build --spec "
        + f"{out / 'graph.toml'} --out graphs/{name}\n"
        f'name = "{name}"\n\n[interactions]\npath = "interactions.csv"\n'
        "# Columns are the defaults: user, item, event (view/cart/buy/rate), rating, timestamp"
        + (", scene (scene-0 the largest, each next one a third of it).\n\n" if scenes else ".\n\n")
        + '[rdf]\npaths = ["knowledge.nt"]\n'
        f"# Items match by the default rule: <{ITEM_IRI}> ends in /{{id}}.\n"
    )
    about = {
        "dataset": "synthetic book shop (kgrec.datasets.synth)",
        "preset": preset,
        "seed": seed,
        "counts": {**counts, "entities_per_type": {k: v for k, v in sizes.items() if k != "item"}},
        "triples_per_relation": {
            f"{r.head} -[{r.predicate}]-> {r.tail}": n for r, n in zip(RELATIONS, per_relation)
        },
        "text_statements": 2 * items + 2 * entities,
        **({"scenes": {"interactions": scene_counts, "segments": min(SCENE_SEGMENTS, items),
                       "taste_share": SCENE_TASTE_SHARE,
                       "truth": "truth/scene_tastes.csv: the segment each user favours in each scene"}} if scenes else {}),
        "seconds": round(seconds, 1),
    }
    write_json(out / "about.json", about)
    write_text(out / "graph.toml", spec)
    return about


#: ``kgrec data fetch synth-scenes``: the scenes suite's synthetic data (seed 1, 3 scenes).
SYNTH_SCENES = {"users": 2000, "items": 1000, "interactions": 40000, "entities": 300, "triples": 4000}


def fetch_synth_scenes(cache_root: Path = Path("data/cache"), force: bool = False) -> Path:
    """Write the scenes suite's synthetic data set into ``<cache_root>/synth-scenes`` (kept unless ``force``)."""
    folder = Path(cache_root) / "synth-scenes"
    if force or not (folder / "graph.toml").is_file():
        write_synth(folder, seed=1, scenes=3, **SYNTH_SCENES)
    return folder


def _check_distinct(pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Generation guarantees distinct triples (a graph is a set); this keeps it honest."""
    for relation, (h, t) in zip(RELATIONS, pairs):
        keys = h.astype(np.int64) * (int(t.max(initial=0)) + 1) + t
        if len(np.unique(keys)) != len(keys) or (relation.head == relation.tail and (h == t).any()):
            raise AssertionError(f"repeated or looping pairs in {relation.predicate}")
