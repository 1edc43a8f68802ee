"""Atomic file and folder writes: a crash never leaves a half-written artifact in place.

Everything kgrec writes (graphs, splits, run folders, weights) is written to a temporary
sibling first and moved into place with :func:`os.replace`, which is atomic on POSIX file
systems. A reader therefore sees either the old complete artifact or the new complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; on success move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are ordinary files
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``path`` (old one removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        swap_into_place(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def is_empty_or_missing(path: Path) -> bool:
    """True for a path that does not exist or an empty folder: safe to write into."""
    path = Path(path)
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


@contextmanager
def replacing_folder(path: Path) -> Iterator[Path]:
    """Yield a staging folder beside ``path``; on success it replaces ``path`` whole.

    For ``--force``: the old folder stays complete and untouched until the new one is, so a
    run that is killed or fails never leaves old and new files mixed. The staging folder's name
    is fixed (``.NAME.new``), so several processes of one job agree on it and a killed attempt's
    leftovers are cleared by the next one.
    """
    path = Path(path)
    staging = staging_folder(path)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_into_place(staging, path)


def staging_folder(path: Path) -> Path:
    """Where :func:`replacing_folder` builds the replacement of ``path``."""
    path = Path(path)
    return path.parent / f".{path.name}.new"


def swap_into_place(staging: Path, path: Path) -> None:
    """Move the complete folder ``staging`` onto ``path`` (two renames; the old one is removed)."""
    backup = None
    if path.exists():
        backup = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, backup)
    os.replace(staging, path)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def content_hash(folder: Path, patterns: tuple[str, ...] = ("**/*.parquet",)) -> str:
    """SHA-256 over the relative names and bytes of the files of ``folder`` matching ``patterns``."""
    import hashlib

    folder = Path(folder)
    digest = hashlib.sha256()
    files = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    for p in files:
        digest.update(p.relative_to(folder).as_posix().encode() + b"\0")
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()
