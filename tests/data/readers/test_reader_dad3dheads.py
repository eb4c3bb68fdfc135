"""DAD-3DHeads: projection convention, tolerant metadata, landmark sources, the real example."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _shared import SHARED, requires_shared
from mvface.data.readers import read_dataset
from mvface.data.readers.dad3dheads import (
    load_dad3d_annotation,
    load_landmarks_npy,
    project_dad3d_vertices,
    read_dad3dheads,
)
from mvface.errors import BadInputError

EXAMPLE = SHARED / "seed" / "reference_data" / "dataset_synthetic" / "example"
W, H, F = 320, 240, 900.0
N_VERTICES = 150


def _camera(yaw: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A model-view (rotation about y, then 5 units in front of an OpenGL camera) and a
    DAD-3DHeads-style pixel projection (principal point at the image centre)."""
    c, s = np.cos(yaw), np.sin(yaw)
    mv = np.eye(4)
    mv[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    mv[:3, 3] = [0.1, -0.05, -5.0]
    proj = np.array(
        [[F, 0, -W / 2, 0], [0, F, -H / 2, 0], [0, 0, -1.0002, -0.2], [0, 0, -1, 0]], float
    )
    return mv, proj


def _vertices(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (N_VERTICES, 3))


def _pinhole(vertices: np.ndarray, mv: np.ndarray) -> np.ndarray:
    """Independent reference: OpenGL camera looks along -z, image y down."""
    cam = vertices @ mv[:3, :3].T + mv[:3, 3]
    x = F * cam[:, 0] / -cam[:, 2] + W / 2
    y_up = F * cam[:, 1] / -cam[:, 2] + H / 2
    return np.stack([x, H - y_up], axis=1)


def _face(offset: float) -> np.ndarray:
    """68 distinct points (a face with a size: all-equal points are refused as degenerate)."""
    return offset + np.stack([np.arange(68.0), np.arange(68.0) % 5], axis=1)


def _write_annotation(path: Path, seed: int = 0, **extra: object) -> None:
    mv, proj = _camera()
    data: dict[str, object] = {
        "vertices": _vertices(seed).tolist(),
        "model_view_matrix": mv.tolist(),
        "projection_matrix": proj.tolist(),
    }
    data.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (W, H), (50, 60, 70)).save(path)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned_by_pickle",))


@pytest.fixture
def fake_dad(tmp_path: Path) -> Path:
    root = tmp_path / "DAD-3DHeadsDataset"
    train = root / "train"
    for name in ("a", "b", "c", "d", "e"):
        _write_image(train / "images" / f"{name}.png")
    _write_annotation(train / "annotations" / "a.json", 0)
    _write_annotation(train / "annotations" / "b.json", 1)
    _write_annotation(train / "annotations" / "c.json", 2, landmarks_68=_face(1.0).tolist())
    _write_annotation(train / "annotations" / "d.json", vertices="oops")
    items = [
        {
            "item_id": "a",
            "img_path": "images/a.png",
            "annotation_path": "annotations/a.json",
            "bbox": [10, 20, 100, 120],
            "attributes": {"quality": "hq", "pose": "front"},
        },
        {
            "item_id": "b",
            "img_path": "DAD-3DHeadsDataset/train/images/b.png",
            "annotation_path": "DAD-3DHeadsDataset/train/annotations/b.json",
            "bbox": {"0": 5, "1": 6, "2": 50, "3": 60},
        },
        {
            "id": "c",
            "image_path": str(train / "images" / "c.png"),
            "annotation": "annotations/c.json",
        },
        {"item_id": "d", "img_path": "images/d.png", "annotation_path": "annotations/d.json"},
        {"item_id": "e", "img_path": "images/e.png", "annotation_path": "annotations/gone.json"},
        {"item_id": "f", "img_path": "images/missing.png"},
        {"item_id": "g", "img_path": 42},
        "not an object",
    ]
    (train / "train.json").write_text(json.dumps(items))
    val = root / "val"
    for name in ("v1", "v2", "v3"):
        _write_image(val / "images" / f"{name}.png")
        _write_annotation(val / "annotations" / f"{name}.json", 3)
    np.save(val / "annotations" / "v1_68_lm2d_points.npy", _face(7.0))
    (val / "images_lm2d").mkdir()
    np.save(
        val / "images_lm2d" / "v2_68_lm2d_points.npy",
        np.array({"point": _face(9.0).astype(np.int64)}, dtype=object),
        allow_pickle=True,
    )
    np.save(val / "annotations" / "v3_68_lm2d_points.npy", np.array([_Evil()]), allow_pickle=True)
    (val / "val.json").write_text(
        json.dumps(
            [
                {
                    "item_id": n,
                    "img_path": f"images/{n}.png",
                    "annotation_path": f"annotations/{n}.json",
                }
                for n in ("v1", "v2", "v3")
            ]
        )
    )
    test = root / "test"
    _write_image(test / "images" / "t1.png")
    (test / "test.json").write_text(json.dumps([{"item_id": "t1", "img_path": "images/t1.png"}]))
    return root


class TestProjection:
    def test_matches_an_independent_pinhole(self) -> None:
        mv, proj = _camera()
        v = _vertices()
        np.testing.assert_allclose(project_dad3d_vertices(v, mv, proj, W, H), _pinhole(v, mv))

    def test_batch(self) -> None:
        mv, proj = _camera()
        v = np.stack([_vertices(0), _vertices(1)])
        out = project_dad3d_vertices(v, np.stack([mv, mv]), proj, W, H)
        assert out.shape == (2, N_VERTICES, 2)
        np.testing.assert_allclose(out[1], _pinhole(_vertices(1), mv))

    def test_behind_camera_is_nan(self) -> None:
        mv, proj = _camera()
        mv[2, 3] = 5.0  # the mesh is behind the camera
        assert np.all(np.isnan(project_dad3d_vertices(_vertices(), mv, proj, W, H)))

    def test_bad_shapes(self) -> None:
        mv, proj = _camera()
        with pytest.raises(BadInputError):
            project_dad3d_vertices(np.zeros((5, 2)), mv, proj, W, H)
        with pytest.raises(BadInputError):
            project_dad3d_vertices(_vertices(), mv[:3], proj, W, H)
        with pytest.raises(BadInputError):
            project_dad3d_vertices(_vertices(), mv, proj, 0, H)


class TestReader:
    def test_all_splits(self, fake_dad: Path) -> None:
        ds = read_dataset("dad3dheads", fake_dad)
        assert [s.name for s in ds.samples] == ["a", "b", "c", "v1", "v2", "t1"]
        by_name = {s.name: s for s in ds.samples}
        a = by_name["a"]
        assert (
            a.landmarks is None and "landmark embedding" in a.meta["landmarks_unavailable_reason"]
        )
        assert a.meta["split"] == "train" and a.meta["attributes"]["quality"] == "hq"
        np.testing.assert_allclose(a.box, [10, 20, 110, 140])
        np.testing.assert_allclose(a.meta["model_view_matrix"], _camera()[0])
        assert a.meta["num_vertices"] == N_VERTICES and a.meta["width"] == W
        np.testing.assert_allclose(by_name["b"].box, [5, 6, 55, 66])
        assert by_name["c"].meta["landmark_source"] == "annotation"
        np.testing.assert_allclose(by_name["c"].landmarks, _face(1.0))
        np.testing.assert_allclose(by_name["v1"].landmarks, _face(7.0))
        np.testing.assert_allclose(by_name["v2"].landmarks, _face(9.0))
        assert by_name["v2"].meta["landmark_source"] == "npy"
        t1 = by_name["t1"]
        assert t1.meta["split"] == "test" and t1.landmarks is None
        assert "no annotation" in t1.meta["landmarks_unavailable_reason"]

    def test_skipped_reasons(
        self, fake_dad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        skipped = read_dad3dheads(fake_dad).skipped
        joined = "\n".join(skipped)
        assert len(skipped) == 6, joined
        assert "d.json: vertices are not a numeric" in joined
        assert "annotation not found: annotations/gone.json" in joined
        assert "image not found: images/missing.png" in joined
        assert "item 6: has no image path" in joined
        assert "item 7: expected an object, got str" in joined
        assert "refusing to load" in joined  # the malicious pickle ...
        assert not (tmp_path / "pwned_by_pickle").exists()  # ... did not run

    def test_landmark_indices(self, fake_dad: Path) -> None:
        indices = np.arange(68) * 2
        ds = read_dad3dheads(fake_dad, split="train", landmark_indices=indices)
        a = ds.samples[0]
        assert a.meta["landmark_source"] == "landmark_indices"
        expected = _pinhole(_vertices(0), _camera()[0])[indices]
        np.testing.assert_allclose(a.landmarks, expected)

    @pytest.mark.parametrize("indices", [np.arange(67), -np.arange(68), np.arange(68) * 0.5])
    def test_bad_landmark_indices(self, fake_dad: Path, indices: np.ndarray) -> None:
        with pytest.raises(BadInputError, match="landmark_indices"):
            read_dad3dheads(fake_dad, landmark_indices=indices)

    def test_indices_beyond_the_mesh_skip_items(self, fake_dad: Path) -> None:
        ds = read_dad3dheads(fake_dad, split="train", landmark_indices=np.arange(68) + 100)
        assert "the mesh has 150 vertices" in "\n".join(ds.skipped)

    def test_roots(self, fake_dad: Path) -> None:
        assert [s.name for s in read_dad3dheads(fake_dad / "val").samples] == ["v1", "v2"]
        assert [s.name for s in read_dad3dheads(fake_dad / "test" / "test.json").samples] == ["t1"]
        assert len(read_dad3dheads(fake_dad, split="train", limit=2)) == 2
        with pytest.raises(BadInputError, match="no DAD-3DHeads metadata"):
            read_dad3dheads(fake_dad / "train" / "images")
        with pytest.raises(BadInputError, match="does not exist"):
            read_dad3dheads(fake_dad / "nope")

    def test_metadata_of_the_wrong_type(self, tmp_path: Path) -> None:
        (tmp_path / "train.json").write_text('{"items": 3}')
        with pytest.raises(BadInputError, match="list of items"):
            read_dad3dheads(tmp_path)
        (tmp_path / "train.json").write_text("[1, 2")
        with pytest.raises(BadInputError, match="not valid JSON"):
            read_dad3dheads(tmp_path)

    def test_paired_layout_without_metadata(self, tmp_path: Path) -> None:
        _write_image(tmp_path / "images" / "x.png")
        _write_annotation(tmp_path / "annotations" / "x.json")
        _write_image(tmp_path / "images" / "y.png")  # no annotation
        ds = read_dad3dheads(tmp_path)
        assert [s.name for s in ds.samples] == ["x", "y"]
        assert "annotation_file" in ds.samples[0].meta
        assert "no annotation" in ds.samples[1].meta["landmarks_unavailable_reason"]


class TestLoaders:
    @pytest.mark.parametrize(
        ("extra", "needle"),
        [
            ({"vertices": [[0, 0]]}, "expected \\(N, 3\\)"),
            ({"model_view_matrix": np.eye(3).tolist()}, "model_view_matrix has shape"),
            ({"projection_matrix": [[float("nan")] * 4] * 4}, "NaN"),
            ({"landmarks_68": [[1, 2]] * 67}, "landmarks_68 has shape"),
        ],
    )
    def test_bad_annotations(self, tmp_path: Path, extra: dict[str, object], needle: str) -> None:
        _write_annotation(tmp_path / "a.json", **extra)
        with pytest.raises(BadInputError, match=needle):
            load_dad3d_annotation(tmp_path / "a.json")

    def test_annotation_missing_key_and_not_object(self, tmp_path: Path) -> None:
        (tmp_path / "a.json").write_text('{"vertices": []}')
        with pytest.raises(BadInputError, match="has no 'model_view_matrix'"):
            load_dad3d_annotation(tmp_path / "a.json")
        (tmp_path / "a.json").write_text("[]")
        with pytest.raises(BadInputError, match="expected a JSON object"):
            load_dad3d_annotation(tmp_path / "a.json")

    def test_npy_variants(self, tmp_path: Path) -> None:
        np.save(tmp_path / "a.npy", np.ones((1, 68, 2)))
        assert load_landmarks_npy(tmp_path / "a.npy").shape == (68, 2)
        np.save(tmp_path / "b.npy", np.ones((68, 3)))
        assert load_landmarks_npy(tmp_path / "b.npy").shape == (68, 2)
        np.save(tmp_path / "c.npy", np.array({"other": 1}, dtype=object), allow_pickle=True)
        with pytest.raises(BadInputError, match="dict without"):
            load_landmarks_npy(tmp_path / "c.npy")
        np.save(tmp_path / "d.npy", np.ones((67, 2)))
        with pytest.raises(BadInputError, match="shape"):
            load_landmarks_npy(tmp_path / "d.npy")
        (tmp_path / "e.npy").write_bytes(b"\x93NUMPY garbage")
        with pytest.raises(BadInputError, match="not a readable"):
            load_landmarks_npy(tmp_path / "e.npy")


@requires_shared("seed/reference_data/dataset_synthetic/example/annotations")
class TestRealExample:
    def _projected(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (ann_file,) = sorted((EXAMPLE / "annotations").glob("*.json"))
        ann = load_dad3d_annotation(ann_file)
        (lm_file,) = sorted((EXAMPLE / "images_lm2d").glob("*_68_lm2d_points.npy"))
        width, height = Image.open(EXAMPLE / "images" / f"{ann_file.stem}.png").size
        uv = project_dad3d_vertices(
            ann["vertices"], ann["model_view_matrix"], ann["projection_matrix"], width, height
        )
        return ann["vertices"], uv, load_landmarks_npy(lm_file)

    def test_reader_reads_the_example(self) -> None:
        ds = read_dataset("dad3dheads", EXAMPLE)
        (s,) = ds.samples
        assert ds.skipped == [] and s.meta["landmark_source"] == "npy"
        assert s.landmarks is not None and s.landmarks.shape == (68, 2)
        assert s.meta["num_vertices"] == 5023
        assert s.landmarks[:, 0].min() > 0 and s.landmarks[:, 0].max() < s.meta["width"]

    def test_projection_lands_on_the_face(self) -> None:
        vertices, uv, lm = self._projected()
        assert vertices.shape == (5023, 3)
        # every landmark lies near a projected vertex
        dist = np.linalg.norm(lm[:, None] - uv[None], axis=2).min(axis=1)
        assert np.median(dist) < 5 and dist.max() < 15
        # FLAME's eyeballs (the last 2 x 546 vertices) project onto the landmarks' eyes; the
        # un-flipped y (no "height - y") would put them about 90 px off.
        for eyeball, eye in (
            (slice(3931, 4477), range(42, 48)),
            (slice(4477, 5023), range(36, 42)),
        ):
            assert np.linalg.norm(uv[eyeball].mean(0) - lm[list(eye)].mean(0)) < 15

    def test_landmark_indices_on_the_real_mesh(self) -> None:
        _, uv, lm = self._projected()
        nearest = np.linalg.norm(lm[:, None] - uv[None], axis=2).argmin(axis=1)
        ds = read_dad3dheads(EXAMPLE, landmark_indices=nearest)
        (s,) = ds.samples
        assert s.meta["landmark_source"] == "landmark_indices"
        assert np.abs(s.landmarks - lm).max() < 15
