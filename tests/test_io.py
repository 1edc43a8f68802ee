import pytest

from kgrec.io import atomic_folder, write_json


def test_atomic_folder_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(ValueError):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("half")
            raise ValueError("crash")
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_write_json(tmp_path):
    write_json(tmp_path / "x.json", {"a": 1})
    assert (tmp_path / "x.json").read_text().strip().startswith("{")


def test_written_files_are_not_private(tmp_path):
    write_json(tmp_path / "x.json", {"a": 1})
    with atomic_folder(tmp_path / "d") as tmp:
        (tmp / "f").write_text("x")
    assert (tmp_path / "x.json").stat().st_mode & 0o044
    assert (tmp_path / "d").stat().st_mode & 0o055
