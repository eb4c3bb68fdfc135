"""300W-LP reader on fixtures written with scipy.io.savemat (the shared data has only JSON)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from mvface.data.readers import read_dataset
from mvface.data.readers.lp300w import read_300w_lp
from mvface.errors import BadInputError


def _pts(seed: int, dims: int = 2) -> np.ndarray:
    """(68, dims) 1-based positions inside a 450x450 image."""
    return np.random.default_rng(seed).uniform(100, 350, (68, dims))


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (450, 450), (10, 20, 30)).save(path)


def _mat(path: Path, **fields: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), fields)


POSE = np.array([[0.1, -0.5, 0.05, 220.0, 230.0, -90.0, 0.0015]])


@pytest.fixture
def fake_lp(tmp_path: Path) -> Path:
    root = tmp_path / "300W_LP"
    # image + .mat + landmarks file
    _image(root / "AFW" / "AFW_1_0.jpg")
    _mat(root / "AFW" / "AFW_1_0.mat", pt2d=_pts(1).T, Pose_Para=POSE, roi=[[1, 2, 3, 4]])
    _mat(root / "landmarks" / "AFW" / "AFW_1_0_pts.mat", pts_2d=_pts(2), pts_3d=_pts(3))
    # flipped copy: image + .mat only
    _image(root / "AFW_Flip" / "AFW_1_0.jpg")
    _mat(root / "AFW_Flip" / "AFW_1_0.mat", pt2d=_pts(4).T, Pose_Para=POSE)
    # image + landmarks file only
    _image(root / "HELEN" / "HELEN_7_1.jpg")
    _mat(root / "landmarks" / "HELEN" / "HELEN_7_1_pts.mat", pts_2d=_pts(5), pts_3d=_pts(6))
    # bad items
    _image(root / "IBUG" / "nothing.jpg")
    _image(root / "IBUG" / "no_keys.jpg")
    _mat(root / "IBUG" / "no_keys.mat", Shape_Para=np.zeros((199, 1)))
    _image(root / "IBUG" / "nan.jpg")
    bad = _pts(7).T
    bad[0, 3] = np.nan
    _mat(root / "IBUG" / "nan.mat", pt2d=bad)
    _image(root / "IBUG" / "wrong_type.jpg")
    _mat(root / "IBUG" / "wrong_type.mat", pt2d="not numbers")
    _image(root / "LFPW" / "LFPW_9_0.jpg")
    (root / "LFPW" / "LFPW_9_0.mat").write_bytes(b"\x00garbage" * 40)
    _mat(root / "landmarks" / "LFPW" / "orphan_pts.mat", pts_2d=_pts(8))
    return root


class TestReader:
    def test_auto_source_and_conversion(self, fake_lp: Path) -> None:
        ds = read_dataset("300w-lp", fake_lp)
        assert ds.name == "300w-lp"
        assert [s.name for s in ds.samples] == [
            "AFW/AFW_1_0",
            "AFW_Flip/AFW_1_0",
            "HELEN/HELEN_7_1",
        ]
        afw, flip, helen = ds.samples
        np.testing.assert_allclose(afw.landmarks, _pts(1) - 1)
        assert afw.meta["landmark_source"] == "pt2d" and not afw.meta["flipped"]
        np.testing.assert_allclose(afw.meta["pts_2d"], _pts(2) - 1)
        np.testing.assert_allclose(afw.meta["pts_3d"], _pts(3) - 1)
        np.testing.assert_allclose(afw.pose, POSE[0, :3])
        assert afw.box is None and afw.meta["roi"].tolist() == [1, 2, 3, 4]
        assert flip.meta["flipped"] and flip.meta["subset"] == "AFW_Flip"
        assert "pts_2d" not in flip.meta  # no landmarks/ file for flipped images
        assert helen.meta["landmark_source"] == "pts_2d" and helen.pose is None
        np.testing.assert_allclose(helen.landmarks, _pts(5) - 1)

    def test_skipped_reasons(self, fake_lp: Path) -> None:
        joined = "\n".join(read_300w_lp(fake_lp).skipped)
        assert "nothing.jpg: no .mat next to it and no landmarks" in joined
        assert "no_keys.mat: has no pt2d or pts_2d landmarks" in joined
        assert "nan.mat: pt2d contains NaN" in joined
        assert "wrong_type.mat: pt2d" in joined
        assert "LFPW_9_0.mat: not a readable .mat" in joined
        assert "orphan_pts.mat: no image for this landmarks file" in joined
        assert all("\n" not in line for line in read_300w_lp(fake_lp).skipped)

    def test_pts_3d_source(self, fake_lp: Path) -> None:
        ds = read_300w_lp(fake_lp, landmark_source="pts_3d")
        assert [s.name for s in ds.samples] == ["AFW/AFW_1_0", "HELEN/HELEN_7_1"]
        np.testing.assert_allclose(ds.samples[0].landmarks, _pts(3) - 1)
        assert "AFW_Flip/AFW_1_0.mat: has no pts_3d landmarks" in "\n".join(ds.skipped)

    def test_3d_landmarks_keep_z(self, tmp_path: Path) -> None:
        _image(tmp_path / "AFW" / "a.jpg")
        _mat(tmp_path / "landmarks" / "AFW" / "a_pts.mat", pts_3d=_pts(9, dims=3))
        (s,) = read_300w_lp(tmp_path, landmark_source="pts_3d").samples
        expected = _pts(9, dims=3)
        expected[:, :2] -= 1
        np.testing.assert_allclose(s.landmarks, expected)

    def test_subset_folder_as_root_and_limit(self, fake_lp: Path) -> None:
        ds = read_300w_lp(fake_lp / "HELEN")
        assert [s.name for s in ds.samples] == ["HELEN_7_1"]
        assert len(read_300w_lp(fake_lp, limit=1)) == 1

    def test_bad_arguments(self, fake_lp: Path) -> None:
        with pytest.raises(BadInputError, match="landmark_source"):
            read_300w_lp(fake_lp, landmark_source="xyz")  # type: ignore[arg-type]
        with pytest.raises(BadInputError, match="not a folder"):
            read_300w_lp(fake_lp / "AFW" / "AFW_1_0.jpg")
