"""The bundled demo dataset: an invented film shop whose logs a recommender can learn from.

``write_demo(folder, seed=7)`` writes two files, byte for byte the same for the same seed:

* ``interactions.csv`` — columns ``user,item,event,rating,timestamp``; events ``view``,
  ``click``, ``buy`` and ``rate``; ``rating`` (1-5) only on ``rate`` rows, blank otherwise;
  ``timestamp`` in Unix seconds.
* ``items.ttl`` — RDF Turtle about every film: ``rdfs:label``, ``schema:description``,
  ``schema:genre``, ``schema:director``, ``schema:productionCompany`` and ``schema:keywords``
  links to typed, labelled entities (genres, people, studios, keywords), plus where each
  director was born (``schema:birthPlace``). Items are ``<http://example.org/kgrec-demo/item/{id}>``
  so that the default ``/{id}`` suffix matching finds them.

Why the data is learnable: every user has a hidden taste (a few favourite genres, favourite
keywords, a favourite director or two); which films a user meets, and how they rate them,
follows that taste. The same genres and keywords appear in the knowledge graph and in the
descriptions, so both knowledge edges and text features carry signal beyond the log.

All names are invented. Regenerate with ``python -m kgrec.datasets.demo data/demo``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef

from kgrec.io import write_text

BASE = "http://example.org/kgrec-demo/"
EX = Namespace(BASE)
VOCAB = Namespace(BASE + "vocab#")
SCHEMA = Namespace("http://schema.org/")
ITEM_IRI = BASE + "item/{id}"

NUM_USERS = 300
NUM_ITEMS = 200
NUM_DIRECTORS = 40
#: Unix time of 2023-01-01 00:00 UTC; the log falls within 2023.
START_TIME = 1_672_531_200

# Genre -> (adjectives for descriptions, keywords typical of it, words for titles).
GENRES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "Science Fiction": (
        ["cerebral", "far-future", "visionary"],
        ["space station", "time travel", "artificial intelligence", "first contact"],
        ["Orbit", "Signal", "Horizon", "Nebula", "Circuit", "Starfall"],
    ),
    "Drama": (
        ["quiet", "moving", "intimate"],
        ["family secrets", "grief", "coming of age", "second chances"],
        ["Winter", "Letters", "Harvest", "Silence", "Daughters", "Tides"],
    ),
    "Comedy": (
        ["light-hearted", "madcap", "witty"],
        ["road trip", "mistaken identity", "wedding", "office rivalry"],
        ["Trouble", "Weekend", "Mix-Up", "Neighbours", "Holiday", "Pickle"],
    ),
    "Thriller": (
        ["tense", "relentless", "twisting"],
        ["conspiracy", "kidnapping", "double agent", "chase"],
        ["Protocol", "Deadline", "Shadow", "Cipher", "Pursuit", "Fracture"],
    ),
    "Romance": (
        ["tender", "bittersweet", "sun-drenched"],
        ["summer love", "long-distance", "rivals to lovers", "old flame"],
        ["Promise", "Serenade", "Postcards", "Heartstrings", "Blossom", "Vows"],
    ),
    "Horror": (
        ["chilling", "unsettling", "gruesome"],
        ["haunted house", "cursed object", "small-town evil", "possession"],
        ["Hollow", "Whispers", "Rot", "Lantern", "Cellar", "Howl"],
    ),
    "Documentary": (
        ["eye-opening", "patient", "unflinching"],
        ["climate", "music history", "wildlife", "sport"],
        ["Record", "Witness", "Field Notes", "Archive", "Voices", "Tracks"],
    ),
    "Animation": (
        ["colourful", "playful", "hand-drawn"],
        ["talking animals", "magic kingdom", "toys come alive", "friendship"],
        ["Whiskers", "Paper Moon", "Button", "Sprocket", "Meadow", "Bubbles"],
    ),
    "Western": (
        ["dusty", "sweeping", "lawless"],
        ["frontier town", "bounty hunter", "cattle drive", "gold rush"],
        ["Canyon", "Spurs", "Mesa", "Outlaw", "Stagecoach", "Dust"],
    ),
    "Fantasy": (
        ["enchanted", "epic", "mythic"],
        ["dragons", "quest", "lost heir", "ancient prophecy"],
        ["Crown", "Thornwood", "Rune", "Emberglass", "Wyrm", "Oath"],
    ),
    "Mystery": (
        ["clever", "atmospheric", "puzzling"],
        ["detective", "locked room", "missing heiress", "stolen painting"],
        ["Clue", "Alibi", "Manor", "Riddle", "Verdict", "Keyhole"],
    ),
    "War": (
        ["harrowing", "stirring", "sombre"],
        ["resistance", "submarine", "home front", "battlefield medic"],
        ["Front", "Trenches", "Convoy", "Salute", "Beachhead", "Ration"],
    ),
}
TITLE_ADJECTIVES = [
    "Last", "Silent", "Crimson", "Midnight", "Broken", "Golden", "Northern", "Hidden",
    "Little", "Electric", "Lonely", "Second", "Burning", "Velvet", "Distant", "Wild",
]
FIRST_NAMES = [
    "Mara", "Tobias", "Ilse", "Rafferty", "Noor", "Caspian", "Odile", "Benedek", "Yara",
    "Lucan", "Sabine", "Emrys", "Priya", "Dorian", "Henrike", "Mateo", "Solveig", "Ansel",
    "Keziah", "Florin",
]
LAST_NAMES = [
    "Velden", "Quenneville", "Okafor", "Marchetti", "Lindqvist", "Hartwell", "Ostrowski",
    "Delacourt", "Brannigan", "Ishikawa", "Ferreira", "Thorsby", "Kovalenko", "Abernathy",
    "Castellanos", "Wexford", "Haldane", "Mbeki", "Rosenthal", "Ardell",
]
STUDIOS = [
    "Bluewater Pictures", "Lanternfish Films", "Northlight Studios", "Copperhill Media",
    "Gravelroad Productions", "Saltmarsh Pictures", "Red Kite Films", "Orchard Lane Studios",
    "Ninefold Entertainment", "Tidewell Pictures", "Ironbark Films", "Paper Crane Animation",
]
PLACES = [
    "Port Halvery", "Eastmoor", "Saint Aubrel", "New Caddock", "Vellmouth", "Brightwater Falls",
    "Corran Bay", "Old Tessick", "Marrowdale", "Kingsferry",
]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Film:
    id: str
    title: str
    year: int
    genres: list[str]
    keywords: list[str]
    director: str
    studio: str
    description: str
    popularity: float


@dataclass
class Director:
    name: str
    genre: str
    birthplace: str


@dataclass
class Catalogue:
    films: list[Film]
    directors: list[Director]


def _directors(rng: np.random.Generator) -> list[Director]:
    genres = list(GENRES)
    names: list[str] = []
    while len(names) < NUM_DIRECTORS:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if name not in names:
            names.append(name)
    return [
        Director(name, genres[i % len(genres)], str(rng.choice(PLACES))) for i, name in enumerate(names)
    ]


def _title(rng: np.random.Generator, genre: str, used: set[str]) -> str:
    words = GENRES[genre][2]
    while True:
        form = rng.integers(4)
        noun = str(rng.choice(words))
        if form == 0:
            title = f"The {rng.choice(TITLE_ADJECTIVES)} {noun}"
        elif form == 1:
            title = f"{noun} of {rng.choice(PLACES)}"
        elif form == 2:
            title = f"{rng.choice(TITLE_ADJECTIVES)} {noun}"
        else:
            title = f"{noun} {rng.choice(['Rising', 'Returns', 'in Winter', 'at Dawn', 'Forever', 'II'])}"
        if title not in used:
            used.add(title)
            return title


def _describe(rng: np.random.Generator, genres: list[str], keywords: list[str], director: str, studio: str) -> str:
    primary = genres[0]
    adjective = rng.choice(GENRES[primary][0])
    about = " and ".join(keywords[:2]) if len(keywords) > 1 else keywords[0]
    article = "An" if adjective[0] in "aeiou" else "A"
    text = f"{article} {adjective} {primary.lower()} film about {about}."
    if len(genres) > 1:
        text += f" It blends {primary.lower()} with {' and '.join(g.lower() for g in genres[1:])}"
        text += f", touching on {keywords[-1]}." if len(keywords) > 2 else "."
    return text + f" Directed by {director} for {studio}."


def make_catalogue(rng: np.random.Generator) -> Catalogue:
    """Invent the films and the people behind them."""
    genre_names = list(GENRES)
    directors = _directors(rng)
    studio_bias = {s: rng.choice(genre_names, size=3, replace=False).tolist() for s in STUDIOS}
    used_titles: set[str] = set()
    films = []
    for i in range(NUM_ITEMS):
        primary = genre_names[int(rng.integers(len(genre_names)))]
        genres = [primary]
        if rng.random() < 0.6:
            genres.append(str(rng.choice([g for g in genre_names if g != primary])))
            if rng.random() < 0.2:
                genres.append(str(rng.choice([g for g in genre_names if g not in genres])))
        keywords = rng.choice(GENRES[primary][1], size=int(rng.integers(2, 4)), replace=False).tolist()
        if len(genres) > 1 and rng.random() < 0.5:
            keywords.append(str(rng.choice(GENRES[genres[1]][1])))
        matching = [d for d in directors if d.genre == primary]
        pool = matching if rng.random() < 0.75 else directors  # mostly a specialist of the genre
        director = pool[int(rng.integers(len(pool)))]
        favoured = [s for s, g in studio_bias.items() if primary in g] or STUDIOS
        studio = str(rng.choice(favoured)) if rng.random() < 0.7 else str(rng.choice(STUDIOS))
        films.append(
            Film(
                id=f"m{i + 1:03d}",
                title=_title(rng, primary, used_titles),
                year=int(rng.integers(1972, 2024)),
                genres=genres,
                keywords=keywords,
                director=director.name,
                studio=studio,
                description=_describe(rng, genres, keywords, director.name, studio),
                popularity=float(rng.lognormal(0.0, 0.5)),
            )
        )
    return Catalogue(films, directors)


def make_interactions(catalogue: Catalogue, rng: np.random.Generator) -> pd.DataFrame:
    """Simulate a year of views, clicks, purchases and ratings driven by hidden tastes."""
    films = catalogue.films
    genre_names = list(GENRES)
    keyword_names = sorted({k for f in films for k in f.keywords})
    director_names = [d.name for d in catalogue.directors]
    # Item profiles as 0/1 matrices over genres, keywords and directors.
    item_genre = np.array([[g in f.genres for g in genre_names] for f in films], dtype=float)
    item_genre /= item_genre.sum(axis=1, keepdims=True)
    item_keyword = np.array([[k in f.keywords for k in keyword_names] for f in films], dtype=float)
    item_director = np.array([[f.director == d for d in director_names] for f in films], dtype=float)
    log_popularity = np.log([f.popularity for f in films])

    rows = []
    for u in range(NUM_USERS):
        user = f"u{u + 1:03d}"
        taste = rng.dirichlet(np.full(len(genre_names), 0.25))
        top_genres = np.argsort(-taste)[:2]
        liked_keywords = np.zeros(len(keyword_names))
        for g in top_genres:
            for k in rng.choice(GENRES[genre_names[g]][1], size=2, replace=False):
                liked_keywords[keyword_names.index(str(k))] = 1.0
        liked_directors = np.zeros(len(director_names))
        liked_directors[rng.choice(len(director_names), size=int(rng.integers(1, 3)), replace=False)] = 1.0

        affinity = (
            6.0 * item_genre @ taste + 0.8 * item_keyword @ liked_keywords + 1.2 * item_director @ liked_directors
        )
        score = affinity + 0.5 * log_popularity
        count = int(np.clip(rng.lognormal(np.log(17), 0.5), 5, 60))
        # Gumbel top-k: sample `count` distinct films with probability ~ softmax(score).
        chosen = np.argsort(-(score + rng.gumbel(size=len(films))))[:count]

        t = START_TIME + int(rng.integers(0, 200 * 86_400))
        for i in chosen:
            t += int(rng.exponential(2.0 * 86_400)) + 60
            item = films[i].id
            rows.append((user, item, "view", None, t))
            clicked = rng.random() < 0.55
            if clicked:
                rows.append((user, item, "click", None, t + int(rng.integers(5, 120))))
                if rng.random() < 0.3 + 0.1 * affinity[i]:
                    rows.append((user, item, "buy", None, t + int(rng.integers(120, 1_800))))
            if rng.random() < 0.35:
                stars = int(np.clip(np.rint(1.0 + 1.1 * affinity[i] + rng.normal(0.0, 0.8)), 1, 5))
                rows.append((user, item, "rate", stars, t + int(rng.integers(1_800, 86_400))))

    frame = pd.DataFrame(rows, columns=["user", "item", "event", "rating", "timestamp"])
    frame["rating"] = frame["rating"].astype("Int64")
    return frame.sort_values(["timestamp", "user", "item"], kind="stable").reset_index(drop=True)


def make_rdf(catalogue: Catalogue) -> Graph:
    """The knowledge graph about the films, as an rdflib graph."""
    graph = Graph()
    graph.bind("ex", EX)
    graph.bind("vocab", VOCAB)
    graph.bind("schema", SCHEMA, replace=True)
    graph.bind("rdfs", RDFS)

    def entity(kind: str, name: str, rdf_class: URIRef) -> URIRef:
        node = EX[f"{kind}/{slug(name)}"]
        graph.add((node, RDF.type, rdf_class))
        graph.add((node, RDFS.label, Literal(name, lang="en")))
        return node

    for genre, (adjectives, keywords, _) in GENRES.items():
        node = entity("genre", genre, VOCAB.Genre)
        graph.add((node, SCHEMA.description, Literal(f"{genre} films: {', '.join(keywords)}.", lang="en")))
    for d in catalogue.directors:
        person = entity("person", d.name, SCHEMA.Person)
        place = entity("place", d.birthplace, SCHEMA.Place)
        graph.add((person, SCHEMA.birthPlace, place))
        about = f"Film director born in {d.birthplace}, best known for {d.genre.lower()} films."
        graph.add((person, SCHEMA.description, Literal(about, lang="en")))
    for film in catalogue.films:
        node = URIRef(ITEM_IRI.format(id=film.id))
        graph.add((node, RDF.type, SCHEMA.Movie))
        graph.add((node, RDFS.label, Literal(film.title, lang="en")))
        graph.add((node, SCHEMA.description, Literal(film.description, lang="en")))
        graph.add((node, SCHEMA.datePublished, Literal(str(film.year))))
        for genre in film.genres:
            graph.add((node, SCHEMA.genre, EX[f"genre/{slug(genre)}"]))
        for keyword in film.keywords:
            graph.add((node, SCHEMA.keywords, entity("keyword", keyword, VOCAB.Keyword)))
        graph.add((node, SCHEMA.director, EX[f"person/{slug(film.director)}"]))
        graph.add((node, SCHEMA.productionCompany, entity("studio", film.studio, SCHEMA.Organization)))
    return graph


def write_demo(folder: Path, seed: int = 7) -> tuple[Path, Path]:
    """Write ``interactions.csv`` and ``items.ttl`` into ``folder``; same seed, same bytes."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    catalogue = make_catalogue(rng)
    interactions = make_interactions(catalogue, rng)
    inter_path, rdf_path = folder / "interactions.csv", folder / "items.ttl"
    write_text(inter_path, interactions.to_csv(index=False, lineterminator="\n"))
    header = (
        "# kgrec demo catalogue: invented films, people and studios (generated by\n"
        f"# `python -m kgrec.datasets.demo`, seed {seed}). Licence: Apache-2.0.\n"
    )
    write_text(rdf_path, header + _sorted_turtle(make_rdf(catalogue)))
    return inter_path, rdf_path


def _sorted_turtle(graph: Graph) -> str:
    """Turtle with subjects in a fixed order, so regenerating gives identical bytes."""
    text = graph.serialize(format="turtle")
    head, _, body = text.partition("\n\n")
    blocks = [b.strip() for b in body.split("\n\n") if b.strip()]
    return head + "\n\n" + "\n\n".join(sorted(blocks)) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else Path("data/demo")
    seed = int(argv[1]) if len(argv) > 1 else 7
    inter_path, rdf_path = write_demo(folder, seed)
    print(f"wrote {inter_path} and {rdf_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
