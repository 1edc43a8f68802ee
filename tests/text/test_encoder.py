"""TextEncoder against the real packaged all-MiniLM-L6-v2 (local, loaded once per module)."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.errors import KgrecError
from kgrec.text.encoder import TextEncoder

TEXTS = [
    "A cat sits on the mat.",
    "A kitten is resting on a rug.",
    "The central bank raised interest rates again.",
]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("text-cache")


@pytest.fixture(scope="module")
def encoder(cache_root):
    return TextEncoder("default", batch_size=2, cache_dir=cache_root)


def test_shape_dtype_and_unit_norm(encoder):
    out = encoder.encode(TEXTS, progress=False)
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_similar_texts_are_closer_than_unrelated(encoder):
    cat, kitten, bank = encoder.encode(TEXTS, progress=False)
    assert cat @ kitten > cat @ bank + 0.3


def test_batched_sorted_encoding_keeps_input_order(encoder):
    texts = ["short", "a somewhat longer sentence about films", "short", "mid length text"]
    together = encoder.encode(texts, progress=False)
    one_by_one = np.stack([encoder.encode([t], progress=False)[0] for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_array_equal(together[0], together[2])


def test_empty_input(encoder):
    assert encoder.encode([], progress=False).shape == (0, 384)


def test_second_encode_is_served_from_cache(encoder):
    texts = ["cache me once", "and me too", "cache me once"]
    before = encoder.forward_calls
    first = encoder.encode(texts, progress=False)
    assert encoder.forward_calls == before + 1  # two distinct texts, batch_size 2: one pass
    second = encoder.encode(texts, progress=False)
    assert encoder.forward_calls == before + 1
    np.testing.assert_array_equal(first, second)


def test_cache_survives_a_new_instance_and_never_runs_the_model(encoder, cache_root, monkeypatch):
    texts = ["persisted across instances", "another persisted sentence"]
    expected = encoder.encode(texts, progress=False)
    shards = list((cache_root / encoder.model_key).glob("*.safetensors"))
    assert shards and not list((cache_root / encoder.model_key).glob("*.tmp"))

    fresh = TextEncoder("default", batch_size=2, cache_dir=cache_root)
    assert fresh.model_key == encoder.model_key

    def must_not_run(batch):
        raise AssertionError(f"model ran on {batch}")

    monkeypatch.setattr(fresh, "_forward", must_not_run)
    np.testing.assert_array_equal(fresh.encode(texts, progress=False), expected)


def test_model_key_depends_on_max_length(encoder, cache_root):
    other = TextEncoder("default", max_length=32, cache_dir=cache_root)
    assert other.model_key != encoder.model_key
    assert other.model_key.startswith("all-MiniLM-L6-v2-")


def test_without_cache_dir_nothing_is_written(tmp_path):
    plain = TextEncoder("default", cache_dir=None)
    assert plain.encode(["no cache here"], progress=False).shape == (1, 384)
    assert plain.cache_dir is None


@pytest.mark.parametrize("name", ["no-such-org/no-such-model-kgrec", "/definitely/not/a/model/folder"])
def test_unloadable_model_is_a_kgrec_error(name):
    with pytest.raises(KgrecError, match="no download") as info:
        TextEncoder(name)
    assert name in str(info.value)
