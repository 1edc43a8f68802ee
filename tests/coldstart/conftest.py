"""Fixtures of the cold-start tests: a tiny trained run with text features and a fake encoder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def load_helper():
    """The shared tiny-run builder (tests/coldstart/tiny_run.py)."""
    path = Path(__file__).resolve().parent / "tiny_run.py"
    spec = importlib.util.spec_from_file_location("kgrec_tests_tiny_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny = load_helper()


@pytest.fixture(scope="package")
def tiny_trained(tmp_path_factory):
    return tiny.train_tiny(tmp_path_factory.mktemp("tiny-run"))


@pytest.fixture
def encoder():
    return tiny.HashingEncoder()


@pytest.fixture(scope="package")
def tiny_helper():
    """The tiny_run module itself (its tables and builder)."""
    return tiny
