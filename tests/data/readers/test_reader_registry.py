"""Every registered reader: registered names, and robustness on empty or hostile roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mvface.data.readers import get_reader, list_readers, read_dataset
from mvface.data.record import Dataset
from mvface.errors import BadInputError

EXPECTED = [
    "300w-lp",
    "aflw2000-3d",
    "coco-face68",
    "coco-wholebody",
    "dad3dheads",
    "dlib-xml",
    "folder",
    "list",
    "mvface-synthetic",
    "pts",
]


def test_public_reader_names() -> None:
    assert list_readers() == EXPECTED


def test_unknown_reader() -> None:
    with pytest.raises(ValueError, match="unknown dataset format 'nope'; known: 300w-lp"):
        get_reader("nope")


@pytest.mark.parametrize("name", EXPECTED)
def test_missing_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        read_dataset(name, tmp_path / "missing")
    with pytest.raises(BadInputError):
        get_reader(name)(tmp_path / "missing")


@pytest.mark.parametrize("name", EXPECTED)
def test_empty_folder_is_empty_or_bad_input(tmp_path: Path, name: str) -> None:
    try:
        ds = read_dataset(name, tmp_path)
    except BadInputError as exc:
        assert str(tmp_path) in str(exc)
        return
    assert isinstance(ds, Dataset) and len(ds) == 0 and ds.skipped == []


@pytest.mark.parametrize("name", EXPECTED)
@pytest.mark.parametrize("file_name", ["garbage.json", "garbage.xml", "garbage.jpg"])
def test_garbage_never_raises_anything_else(tmp_path: Path, name: str, file_name: str) -> None:
    (tmp_path / file_name).write_bytes(os.urandom(512))
    for root in (tmp_path, tmp_path / file_name):
        try:
            ds = read_dataset(name, root)
        except BadInputError:
            continue
        assert len(ds) == 0


@pytest.mark.parametrize("name", EXPECTED)
def test_permission_errors_become_bad_input(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated, so that it also runs as root (who can read anything)."""
    (tmp_path / "a.jpg").write_bytes(b"x")
    root = tmp_path
    if name == "list":  # the one reader whose root is a file, not a folder
        root = tmp_path / "list.txt"
        root.write_text("a.jpg\n")

    def deny(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "a.jpg"))

    with monkeypatch.context() as m:
        m.setattr(Path, "is_file", deny)
        m.setattr(Path, "iterdir", deny)
        m.setattr(os, "walk", deny)
        try:
            ds = read_dataset(name, root)
        except BadInputError as exc:
            assert "permission denied" in str(exc).lower()
            return
    assert len(ds) == 0
