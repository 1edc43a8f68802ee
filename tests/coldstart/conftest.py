"""Fixtures of the cold-start tests: a tiny trained run with text features and a fake encoder."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def tiny_trained(tmp_path_factory, tiny_helper):
    return tiny_helper.train_tiny(tmp_path_factory.mktemp("tiny-run"))


@pytest.fixture
def encoder(tiny_helper):
    return tiny_helper.HashingEncoder()
