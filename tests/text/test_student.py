"""The distilled text student: static token embeddings that reproduce the transformer's vectors."""

from __future__ import annotations

import json

import numpy as np
import torch
import pytest

from kgrec.errors import KgrecError
from kgrec.text.encoder import TextEncoder
from kgrec.text.student import crops, distill_student, encode_all, fit_student, held_out_split, is_student

TOPICS = ["horror film with a haunted house", "romantic comedy in paris", "space opera with starships",
          "war drama in the trenches", "animated film for children", "detective story in london"]  # fmt: skip


def corpus() -> list[str]:
    rng = np.random.default_rng(0)
    extras = ["a classic", "from the seventies", "with a great soundtrack", "based on a novel", "a remake", "an indie hit"]
    return [f"{t} {extras[i]} {int(rng.integers(1900, 2000))}" for t in TOPICS for i in range(len(extras))]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return TextEncoder("default", batch_size=16, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def student_dir(teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("s") / "student"
    distill_student(corpus(), teacher, out, epochs=15, log=lambda *_: None)
    return out


def test_student_learns_the_teacher(student_dir):
    meta = json.loads((student_dir / "kgrec_student.json").read_text())
    assert is_student(student_dir)
    assert meta["held_out_cosine"] > meta["held_out_cosine_before"] + 0.1
    assert meta["dim"] == 384 and meta["texts"] > len(corpus())  # the crops were added


def test_text_encoder_loads_a_student_folder(student_dir, teacher):
    student = TextEncoder(str(student_dir))
    assert student.dim == teacher.dim == 384
    texts = ["a haunted house horror film", "starships in a space opera", "a comedy of love in paris"]
    s, t = student.encode(texts, progress=False), teacher.encode(texts, progress=False)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-5)
    # in the teacher's space: each text closest to its own teacher vector
    assert ((s @ t.T).argmax(axis=1) == np.arange(3)).all()
    with pytest.raises(KgrecError, match="is a text student"):
        student.token_embeddings()


def test_an_existing_folder_is_never_overwritten_unasked(student_dir, teacher, tmp_path):
    before = (student_dir / "student.safetensors").read_bytes()
    with pytest.raises(KgrecError, match="already there; add --force"):
        distill_student(corpus(), teacher, student_dir, epochs=1, log=lambda *_: None)
    assert (student_dir / "student.safetensors").read_bytes() == before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "a.txt").write_text("mine")
    with pytest.raises(KgrecError, match="not a kgrec text student"):
        distill_student(corpus(), teacher, other, epochs=1, force=True, log=lambda *_: None)
    assert (other / "a.txt").read_text() == "mine"
    with pytest.raises(KgrecError, match="at least 10 distinct texts"):
        distill_student(["one", "two"], teacher, tmp_path / "new", log=lambda *_: None)


def test_crops_are_spans_of_the_text():
    text = "one two three four five six seven eight"
    for span in crops([text, "too short"], 5, seed=1):
        assert span in text and len(span.split()) >= 4


def test_held_out_texts_are_whole_texts_none_of_whose_spans_is_trained_on():
    texts = corpus()
    train, valid = held_out_split(texts + texts[:3], augment=3, seed=5)  # duplicates count once
    assert len(valid) == len(set(texts)) // 10 and set(valid) <= set(texts)
    trained_sources = set(train) & set(texts)
    assert not trained_sources & set(valid)
    crops_only = [t for t in train if t not in set(texts)]
    assert crops_only, "the training texts are augmented"
    for span in crops_only:  # every crop comes from a training text
        assert any(span in source for source in trained_sources)
    assert held_out_split(texts, 3, 5) == held_out_split(list(reversed(texts)), 3, 5), "seeded, order-free"


def test_the_written_student_is_refit_on_every_text_for_the_chosen_epochs(student_dir, teacher):
    """The held-out tenth chooses the epochs; the student written then trained on all texts, so it
    reproduces the held-out texts at least as well as the chosen epoch of the selection run did."""
    meta = json.loads((student_dir / "kgrec_student.json").read_text())
    assert 1 <= meta["best_epoch"] <= meta["epochs"] and "refit" in meta["held_out"]
    _, valid = held_out_split(corpus(), 2, 2024)
    s = TextEncoder(str(student_dir)).encode(valid, progress=False)
    t = teacher.encode(valid, progress=False)
    assert float((s * t).sum(1).mean()) >= meta["held_out_cosine"] - 1e-3


def test_fit_student_reports_the_held_out_cosine_before_and_after_each_epoch(teacher):
    texts = corpus()
    vectors = encode_all(teacher, texts)
    gen = torch.Generator().manual_seed(0)
    student, curve = fit_student(teacher.token_embeddings(), texts[6:], vectors, teacher.tokenizer, 32, 3, 5e-3, 64, gen,
                                 held_out=texts[:6])
    assert len(curve) == 4 and curve[-1] > curve[0]
    assert not student.training


def test_token_outputs_are_each_token_alone_through_the_teacher(teacher):
    """Row t is what ``encode`` makes of a text that is token t alone, before normalisation."""
    words = ["horror", "paris", "drama"]
    ids = [teacher.tokenizer.convert_tokens_to_ids(w) for w in words]
    outputs = teacher.token_outputs(torch.tensor(ids), batch_size=2)  # two batches
    assert outputs.shape == (3, teacher.token_embeddings().size(1))
    rows = torch.nn.functional.normalize(outputs, dim=1).numpy()
    np.testing.assert_allclose(rows, teacher.encode(words, progress=False), atol=1e-4)


def test_the_student_records_its_start_and_refuses_an_unknown_one(student_dir, teacher, tmp_path):
    assert json.loads((student_dir / "kgrec_student.json").read_text())["start"] == "outputs"
    with pytest.raises(KgrecError, match="unknown student start 'middle'"):
        distill_student(corpus(), teacher, tmp_path / "s", start="middle", log=lambda *_: None)
    assert not (tmp_path / "s").exists()


def test_the_distill_command_passes_its_start(monkeypatch, click_graph, tmp_path):
    import kgrec.text.student as student_module
    from kgrec.cli.main import main

    graph = click_graph(tmp_path / "g", [(0, 0, 1), (1, 1, 2)], num_items=2, genres=1)
    seen = {}
    monkeypatch.setattr(student_module, "distill_student", lambda texts, teacher, out, **kw: seen.update(kw))
    assert main(["text", "distill", "--graph", str(graph), "--out", str(tmp_path / "s"), "--start", "inputs"]) == 0
    assert seen["start"] == "inputs"
    assert main(["text", "distill", "--graph", str(graph), "--out", str(tmp_path / "s")]) == 0
    assert seen["start"] == "outputs", "Model2Vec's start is the default"


def test_a_student_written_again_in_place_is_not_served_the_old_encodings(student_dir, teacher, tmp_path):
    """The encoding cache of a local model is keyed on its files too, not on its path alone."""
    import shutil

    folder, cache = tmp_path / "student", tmp_path / "cache"
    shutil.copytree(student_dir, folder)
    texts = ["a haunted house horror film", "starships in a space opera"]
    before = TextEncoder(str(folder), cache_dir=cache).encode(texts, progress=False)
    again = TextEncoder(str(folder), cache_dir=cache)
    np.testing.assert_array_equal(again.encode(texts, progress=False), before)
    assert again.forward_calls == 0, "the same folder, untouched, reads its cache"
    distill_student(corpus(), teacher, folder, epochs=1, start="inputs", force=True, log=lambda *_: None)
    fresh = TextEncoder(str(folder)).encode(texts, progress=False)  # no cache
    assert not np.allclose(fresh, before), "the new student encodes differently"
    np.testing.assert_allclose(TextEncoder(str(folder), cache_dir=cache).encode(texts, progress=False), fresh, atol=1e-6)

