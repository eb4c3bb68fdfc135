"""The ``list`` reader: a text file of image paths, landmarks from sibling ``.pts`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mvface.data.readers import read_dataset
from mvface.data.readers.pts import write_pts
from mvface.errors import BadInputError


def _image(path: Path, size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(path)
    return path


def test_reads_listed_images_in_order_with_landmarks_where_present(tmp_path: Path) -> None:
    a = _image(tmp_path / "faces" / "a.png")
    _image(tmp_path / "faces" / "b.jpg")
    outside = _image(tmp_path / "elsewhere" / "c.png")
    points = np.random.default_rng(0).uniform(2, 30, (68, 2))
    write_pts(a.with_suffix(".pts"), points)
    listing = tmp_path / "faces" / "list.txt"
    listing.write_text(f"# chosen faces\nb.jpg\n\na.png\n{outside}\n")
    ds = read_dataset("list", listing)
    assert [s.name for s in ds.samples] == ["b", "a", "c"]
    assert ds.samples[0].landmarks is None
    np.testing.assert_allclose(ds.samples[1].landmarks, points, atol=1e-3)
    assert ds.samples[1].meta["line"] == 4 and ds.skipped == []
    assert [s.name for s in read_dataset("list", listing, limit=1).samples] == ["b"]


def test_bad_entries_are_skipped_with_the_line(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "bad.png").write_bytes((tmp_path / "a.png").read_bytes())
    (tmp_path / "bad.pts").write_text("version: 1\nn_points: 3\n{\n1 2\n}\n")
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\nmissing.png\na.png\nbroken.png\nbad.png\n")
    ds = read_dataset("list", listing)
    assert [s.name for s in ds.samples] == ["a"]
    assert len(ds.skipped) == 4
    assert f"{listing}:2" in ds.skipped[0] and "not a file" in ds.skipped[0]
    assert "listed twice" in ds.skipped[1]
    assert all("\n" not in line for line in ds.skipped)


def test_unreadable_list_is_one_line(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(BadInputError, match="not UTF-8"):
        read_dataset("list", listing)
    with pytest.raises(BadInputError):
        read_dataset("list", tmp_path / "absent.txt")
