"""Fixtures of the explanation tests: the tiny trained run of tests/coldstart/tiny_run.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[1] / "coldstart" / "tiny_run.py"
_spec = importlib.util.spec_from_file_location("kgrec_tests_tiny_run", _path)
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)


@pytest.fixture(scope="package")
def tiny_run(tmp_path_factory):
    """The trained-run object over a tiny run trained with text features."""
    return tiny.train_tiny(tmp_path_factory.mktemp("explain-run"))
