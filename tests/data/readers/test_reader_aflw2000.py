"""AFLW2000-3D reader and the 3DDFA protocol arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from _shared import SHARED, requires_shared
from mvface.data.readers import read_dataset
from mvface.data.readers.aflw2000_3d import load_aflw2000_protocol, read_aflw2000_3d
from mvface.errors import BadInputError

DEV = SHARED / "data" / "aflw2000_3d_dev"


def _pt3d(seed: int) -> np.ndarray:
    """(3, 68) 1-based x, y in a 450x450 image, z around 0."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(120, 330, (2, 68))
    return np.concatenate([xy, rng.uniform(-80, 80, (1, 68))])


def _write_item(images: Path, name: str, seed: int, **overrides: object) -> dict[str, object]:
    Image.new("RGB", (450, 450), (90, 90, 90)).save(images / f"{name}.jpg")
    fields: dict[str, object] = {
        "pt3d_68": _pt3d(seed),
        "Pose_Para": np.array([[0.1 * seed, -0.2, 0.3, 200.0, 220.0, -90.0, 0.0015]]),
        "roi": np.array([[13.0, -26.0, 437.0, 398.0]]),  # AFLW-photo frame: not this image's
        "pt2d": np.zeros((2, 21)),
    }
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    scipy.io.savemat(str(images / f"{name}.mat"), fields)
    return fields


@pytest.fixture
def fake_aflw(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for i, name in enumerate(["image00004", "image00002", "image00008"]):
        _write_item(images, name, i + 1)
    _write_item(images, "image00010", 9, pt3d_68=None)  # no landmarks
    _write_item(images, "image00012", 9, pt3d_68=np.zeros((3, 67)))  # wrong shape
    Image.new("RGB", (450, 450)).save(images / "image00014.jpg")
    (images / "image00014.mat").write_bytes(b"MATLAB garbage that is not a mat file" * 10)
    Image.new("RGB", (450, 450)).save(images / "image00016.jpg")  # no .mat at all
    names = ["image00008.jpg", "image00002.jpg", "image00004.jpg", "image00099.jpg"]
    names += ["image00010.jpg", "image00012.jpg", "image00014.jpg", "image00016.jpg"]
    (tmp_path / "list.txt").write_text("\n".join(names) + "\n")
    return tmp_path


class TestReader:
    def test_list_order_and_conversion(self, fake_aflw: Path) -> None:
        ds = read_dataset("aflw2000-3d", fake_aflw)
        assert ds.name == "aflw2000-3d"
        assert [s.name for s in ds.samples] == ["image00008", "image00002", "image00004"]
        assert [s.meta["protocol_index"] for s in ds.samples] == [0, 1, 2]
        mat = scipy.io.loadmat(str(fake_aflw / "images" / "image00008.mat"))
        s = ds.samples[0]
        assert s.landmarks is not None and s.landmarks.shape == (68, 3)
        np.testing.assert_allclose(s.landmarks[:, :2], mat["pt3d_68"][:2].T - 1)
        np.testing.assert_allclose(s.landmarks[:, 2], mat["pt3d_68"][2])  # z as stored
        np.testing.assert_allclose(s.pose, mat["Pose_Para"][0, :3])
        assert s.meta["pose_para"].shape == (7,)
        assert s.box is None  # the roi is in the original AFLW photo's frame
        np.testing.assert_allclose(s.meta["roi"], [13, -26, 437, 398])
        assert s.meta["width"] == 450

    def test_bad_items_are_skipped_with_reasons(self, fake_aflw: Path) -> None:
        skipped = read_aflw2000_3d(fake_aflw).skipped
        assert len(skipped) == 5
        joined = "\n".join(skipped)
        assert "image00099.jpg: listed in list.txt but missing" in joined
        assert "image00010.mat: has no 'pt3d_68'" in joined
        assert "image00012.mat: pt3d_68 has shape (3, 67)" in joined
        assert "image00014.mat: not a readable .mat" in joined
        assert "image00016.jpg: no .mat" in joined

    def test_without_list_sorted(self, fake_aflw: Path) -> None:
        (fake_aflw / "list.txt").unlink()
        ds = read_aflw2000_3d(fake_aflw, limit=2)
        assert [s.name for s in ds.samples] == ["image00002", "image00004"]
        assert ds.samples[0].meta["protocol_index"] is None

    def test_flat_layout(self, tmp_path: Path) -> None:
        _write_item(tmp_path, "image00020", 3)
        (s,) = read_aflw2000_3d(tmp_path).samples
        assert s.name == "image00020" and s.box is None

    def test_nan_pose_is_skipped(self, tmp_path: Path) -> None:
        _write_item(tmp_path, "image00030", 3, Pose_Para=np.full((1, 7), np.nan))
        ds = read_aflw2000_3d(tmp_path)
        assert len(ds) == 0 and "Pose_Para contains NaN" in ds.skipped[0]

    def test_root_errors(self, tmp_path: Path) -> None:
        with pytest.raises(BadInputError, match="does not exist"):
            read_aflw2000_3d(tmp_path / "nope")


class TestProtocol:
    def _write(self, root: Path, n: int = 3) -> None:
        (root / "list.txt").write_text("\n".join(f"image{i:05d}.jpg" for i in range(n)))
        folder = root / "3ddfa_protocol"
        folder.mkdir()
        rng = np.random.default_rng(0)
        np.save(folder / "AFLW2000-3D.pts68.npy", rng.uniform(1, 400, (n, 3, 68)).astype("f4"))
        np.save(folder / "AFLW2000-3D-Reannotated.pts68.npy", rng.uniform(1, 400, (n, 2, 68)))
        np.save(folder / "AFLW2000-3D.pose.npy", np.array([1.0, -45.0, 80.0][:n]))
        np.save(
            folder / "AFLW2000-3D_crop.roi_box.npy", np.tile([76.0, 113.0, 392.0, 429.0], (n, 1))
        )

    def test_shapes_and_shift(self, tmp_path: Path) -> None:
        self._write(tmp_path)
        p = load_aflw2000_protocol(tmp_path)
        raw = np.load(tmp_path / "3ddfa_protocol" / "AFLW2000-3D.pts68.npy")
        assert list(p["names"]) == ["image00000.jpg", "image00001.jpg", "image00002.jpg"]
        assert p["pts68"].shape == (3, 68, 3)
        np.testing.assert_allclose(p["pts68"][1, 5, :2], raw[1, :2, 5] - 1, rtol=1e-6)
        np.testing.assert_allclose(p["pts68"][1, 5, 2], raw[1, 2, 5], rtol=1e-6)
        assert p["pts68_reannotated"].shape == (3, 68, 2)
        np.testing.assert_allclose(p["yaw_deg"], [1, -45, 80])
        np.testing.assert_allclose(p["roi_box"][0], [76, 113, 392, 429])  # used as stored
        assert "pts21" not in p and "yaw_deg_new" not in p

    def test_errors(self, tmp_path: Path) -> None:
        with pytest.raises(BadInputError, match=r"list\.txt"):
            load_aflw2000_protocol(tmp_path)
        (tmp_path / "list.txt").write_text("a.jpg\nb.jpg\n")
        with pytest.raises(BadInputError, match="3ddfa_protocol"):
            load_aflw2000_protocol(tmp_path)
        self_dir = tmp_path / "3ddfa_protocol"
        self_dir.mkdir()
        np.save(self_dir / "AFLW2000-3D.pose.npy", np.zeros(3))
        with pytest.raises(BadInputError, match=r"expected \(2,\)"):
            load_aflw2000_protocol(tmp_path)
        np.save(self_dir / "AFLW2000-3D.pose.npy", np.array([{"a": 1}, None], dtype=object))
        with pytest.raises(BadInputError, match=r"not a readable \.npy"):
            load_aflw2000_protocol(tmp_path)


@requires_shared("data/aflw2000_3d_dev/list.txt")
class TestRealDev:
    def test_first_items_match_the_protocol(self) -> None:
        ds = read_dataset("aflw2000-3d", DEV, limit=20)
        protocol = load_aflw2000_protocol(DEV)
        names = (DEV / "list.txt").read_text().split()
        assert len(ds) == 20 and ds.skipped == []
        assert [f"{s.name}.jpg" for s in ds.samples] == names[:20]
        for i, s in enumerate(ds.samples):
            assert s.meta["protocol_index"] == i
            np.testing.assert_allclose(s.landmarks, protocol["pts68"][i], atol=1e-3)
            # the protocol's yaw file is Pose_Para's yaw in degrees
            assert abs(np.degrees(s.pose[1]) - protocol["yaw_deg"][i]) < 1e-3
            assert s.box is None

    def test_protocol_arrays_align_with_list(self) -> None:
        p = load_aflw2000_protocol(DEV)
        n = len((DEV / "list.txt").read_text().split())
        assert p["names"].shape == (n,)
        assert p["pts68"].shape == (n, 68, 3) and p["pts68_reannotated"].shape == (n, 68, 2)
        assert p["yaw_deg"].shape == (n,) and p["roi_box"].shape == (n, 4)
        assert p["pts21"].shape == (n, 21, 2)
        # re-annotation moves points by a few pixels, not by a frame convention
        assert np.abs(p["pts68_reannotated"] - p["pts68"][..., :2]).mean() < 10
        # the crop boxes are centred on the 68 points
        centre = (p["roi_box"][:, :2] + p["roi_box"][:, 2:]) / 2
        lm_centre = (p["pts68"][..., :2].min(1) + p["pts68"][..., :2].max(1)) / 2
        assert np.median(np.abs(centre - lm_centre)) < 2
