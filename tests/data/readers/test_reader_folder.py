"""The "folder" reader: plain images, no landmarks."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from _shared import SHARED, requires_shared
from mvface.data.readers import read_dataset
from mvface.data.readers.folder import read_image_folder
from mvface.errors import BadInputError


def test_recursive_sorted_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "z" / "deeper").mkdir(parents=True)
    Image.new("RGB", (30, 20)).save(tmp_path / "b.png")
    Image.new("RGB", (8, 9)).save(tmp_path / "A.JPG", format="JPEG")
    Image.new("L", (5, 5)).save(tmp_path / "z" / "deeper" / "c.ppm")
    (tmp_path / "notes.txt").write_text("not an image, ignored silently")
    (tmp_path / "a.pts").write_text("version: 1")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (tmp_path / "empty.png").write_bytes(b"")
    ds = read_dataset("folder", tmp_path)
    assert ds.name == "folder"
    assert [s.name for s in ds.samples] == ["A", "b", "z/deeper/c"]
    assert ds.samples[1].meta["width"] == 30 and ds.samples[1].meta["height"] == 20
    assert all(s.landmarks is None and s.box is None for s in ds.samples)
    assert len(ds.skipped) == 2
    assert "broken.jpg: not a recognised image" in ds.skipped[0]
    assert "empty.png: file is empty" in ds.skipped[1]


def test_limit_and_bad_root(tmp_path: Path) -> None:
    for i in range(3):
        Image.new("RGB", (4, 4)).save(tmp_path / f"{i}.png")
    assert [s.name for s in read_image_folder(tmp_path, limit=2).samples] == ["0", "1"]
    with pytest.raises(BadInputError, match="not a folder"):
        read_image_folder(tmp_path / "0.png")


@requires_shared("seed/reference_data/images")
def test_real_images() -> None:
    ds = read_image_folder(SHARED / "seed" / "reference_data" / "images")
    assert len(ds) == 4 and ds.skipped == []
    assert all(s.meta["width"] == 512 and s.meta["height"] == 512 for s in ds.samples)
