"""Named datasets: the bundled demo (:mod:`kgrec.datasets.demo`) and fetched public ones.

:func:`fetch` downloads and converts a public dataset into ``<cache_root>/<name>/``, ready for
the graph spec of the same name in ``graphs/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from kgrec.datasets.movielens import fetch_ml100k, fetch_ml100k_scenes
from kgrec.datasets.synth import fetch_synth_scenes
from kgrec.errors import KgrecError

#: Dataset name -> fetcher ``(cache_root, force) -> folder``.
DATASETS: dict[str, Callable[..., Path]] = {
    "ml-100k": fetch_ml100k,
    "ml-100k-scenes": fetch_ml100k_scenes,
    "synth-scenes": fetch_synth_scenes,
}


def fetch(name: str, cache_root: Path = Path("data/cache"), force: bool = False) -> Path:
    """Fetch dataset ``name`` into ``cache_root`` (skipped when already there unless ``force``)."""
    fetcher = DATASETS.get(name)
    if fetcher is None:
        raise KgrecError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})")
    return fetcher(cache_root=Path(cache_root), force=force)


__all__ = ["DATASETS", "fetch", "fetch_ml100k"]
