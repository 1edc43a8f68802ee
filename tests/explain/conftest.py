"""Fixtures of the explanation tests: the tiny trained run of tests/tiny_run.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def tiny_run(tmp_path_factory, tiny_helper):
    """The trained-run object over a tiny run trained with text features."""
    return tiny_helper.train_tiny(tmp_path_factory.mktemp("explain-run"))
