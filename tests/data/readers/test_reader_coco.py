"""COCO-WholeBody faces and mmpose's 68-point face JSONs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from _shared import SHARED, requires_shared
from mvface.data.readers import read_dataset
from mvface.data.readers.coco_keypoints import read_coco_face68, read_coco_wholebody
from mvface.data.readers.pts import read_pts
from mvface.errors import BadInputError

MMPOSE = SHARED / "data" / "samples" / "mmpose_testdata"


def _kpts(x0: float = 50.0, visible: float = 1.0) -> list[float]:
    out: list[float] = []
    for i in range(68):
        out += [x0 + i, 40.0 + i / 2, visible]
    return out


def _coco(tmp_path: Path, annotations: list[Any], name: str = "faces.json") -> Path:
    Image.new("RGB", (160, 120)).save(tmp_path / "img1.jpg")
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.new("RGB", (160, 120)).save(tmp_path / "images" / "img2.jpg")
    data = {
        "images": [
            {"id": 1, "file_name": "img1.jpg", "width": 160, "height": 120},
            {"id": 2, "file_name": "img2.jpg", "width": 160, "height": 120},
            {"id": 3, "file_name": "missing.jpg", "width": 160, "height": 120},
            {"id": 4, "file_name": "img1.jpg", "width": 99, "height": 120},
        ],
        "annotations": annotations,
    }
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


class TestWholeBodyFixture:
    def test_valid_faces_unshifted(self, tmp_path: Path) -> None:
        kpts = _kpts()
        kpts[2] = 0.0  # first point not labelled
        valid = {"face_valid": True}
        anns = [
            {"id": 10, "image_id": 1, **valid, "face_kpts": kpts, "face_box": [50, 40, 67, 34]},
            {"id": 11, "image_id": 1, "face_valid": False, "face_kpts": [0.0] * 204},
            {"id": 12, "image_id": 2, **valid, "face_kpts": _kpts(60), "face_box": [0, 0, 0, 0]},
        ]
        anns[0]["bbox"] = [0, 0, 100, 100]
        ds = read_dataset("coco-wholebody", _coco(tmp_path, anns))
        assert ds.skipped == [] and [s.name for s in ds.samples] == ["img1#10", "img2#12"]
        a, b = ds.samples
        np.testing.assert_allclose(a.landmarks[:, 0], 50 + np.arange(68))
        np.testing.assert_allclose(a.box, [50, 40, 117, 74])
        np.testing.assert_allclose(a.meta["person_box"], [0, 0, 100, 100])
        assert not a.visibility[0] and a.visibility[1:].all()
        assert b.box is None  # an empty face_box is no box

    def test_bad_annotations_are_skipped(self, tmp_path: Path) -> None:
        anns = [
            {"id": 1, "image_id": 1, "face_valid": True, "face_kpts": ["a"] * 204},
            {"id": 2, "image_id": 1, "face_valid": True, "face_kpts": _kpts()[:201]},
            {"id": 3, "image_id": 99, "face_valid": True, "face_kpts": _kpts()},
            {"id": 4, "image_id": 3, "face_valid": True, "face_kpts": _kpts()},
            {"id": 5, "image_id": 4, "face_valid": True, "face_kpts": _kpts()},
            {"id": 6, "image_id": 1, "face_valid": True},
            {"id": 7, "image_id": 1, "face_valid": True, "face_kpts": _kpts(visible=0.0)},
            {"id": 8, "image_id": 1, "face_valid": True, "face_kpts": [float("nan")] * 204},
            "garbage",
        ]
        ds = read_coco_wholebody(_coco(tmp_path, anns))
        joined = "\n".join(ds.skipped)
        assert len(ds) == 0 and len(ds.skipped) == 9, joined
        for needle in (
            "id 1: face_kpts are not numbers",
            "id 2: face_kpts has 201 values",
            "id 3: image_id 99 is not in 'images'",
            "id 4: image not found: missing.jpg",
            "id 5: image is 160x120 but the JSON says 99x120",
            "id 6: has no 'face_kpts'",
            "id 7: no labelled point",
            "id 8: face_kpts contains NaN",
            "annotation 8: expected an object, got str",
        ):
            assert needle in joined

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("[]", "must be an object"),
            ('{"images": {}, "annotations": []}', "must both be lists"),
            ("{not json", "not valid JSON"),
        ],
    )
    def test_bad_json(self, tmp_path: Path, text: str, needle: str) -> None:
        (tmp_path / "x.json").write_text(text)
        with pytest.raises(BadInputError, match=needle):
            read_coco_wholebody(tmp_path / "x.json")

    def test_roots(self, tmp_path: Path) -> None:
        with pytest.raises(BadInputError, match=r"holds no \.json"):
            read_coco_wholebody(tmp_path)
        _coco(tmp_path, [], "a.json")
        assert len(read_coco_wholebody(tmp_path)) == 0
        _coco(tmp_path, [], "b.json")
        with pytest.raises(BadInputError, match=r"several \.json"):
            read_coco_wholebody(tmp_path)

    def test_image_root(self, tmp_path: Path) -> None:
        other = tmp_path / "elsewhere"
        other.mkdir()
        anns = [{"id": 1, "image_id": 1, "face_valid": True, "face_kpts": _kpts()}]
        json_file = _coco(other, anns)
        moved = tmp_path / "pics"
        moved.mkdir()
        (other / "img1.jpg").rename(moved / "img1.jpg")
        assert len(read_coco_wholebody(json_file)) == 0
        assert len(read_coco_wholebody(json_file, image_root=moved)) == 1


class TestFace68Fixture:
    def test_one_based_by_default(self, tmp_path: Path) -> None:
        anns = [
            {
                "id": 3,
                "image_id": 1,
                "keypoints": _kpts(),
                "bbox": [50, 40, 67, 34],
                "center": [1, 2],
            }
        ]
        path = _coco(tmp_path, anns)
        (s,) = read_dataset("coco-face68", path).samples
        np.testing.assert_allclose(s.landmarks[:, 0], 49 + np.arange(68))
        np.testing.assert_allclose(s.box, [49, 39, 116, 73])
        assert s.meta["center"] == [1, 2]
        (t,) = read_coco_face68(path, one_based=False).samples
        np.testing.assert_allclose(t.landmarks[:, 0], 50 + np.arange(68))


@requires_shared("data/samples/mmpose_testdata")
class TestRealMmpose:
    def test_wholebody_faces(self) -> None:
        ds = read_coco_wholebody(MMPOSE / "coco")
        assert len(ds) == 4 and ds.skipped == []
        for s in ds.samples:
            x0, y0, x1, y1 = s.box
            pad = 0.25 * max(x1 - x0, y1 - y0)
            assert np.all(s.landmarks[:, 0] > x0 - pad) and np.all(s.landmarks[:, 0] < x1 + pad)
            assert np.all(s.landmarks[:, 1] > y0 - pad) and np.all(s.landmarks[:, 1] < y1 + pad)
            assert s.visibility.all()

    def test_300vw_json_equals_its_pts_files(self) -> None:
        ds = read_coco_face68(MMPOSE / "300vw" / "anno_300vw.json")
        assert len(ds) == 3 and ds.skipped == []
        for s in ds.samples:
            pts_file = Path(str(s.image_path).replace("imgs", "annot")).with_suffix(".pts")
            np.testing.assert_allclose(s.landmarks, read_pts(pts_file), atol=1e-9)

    @pytest.mark.parametrize("sub", ["300w", "300wlp"])
    def test_other_face_jsons(self, sub: str) -> None:
        ds = read_dataset("coco-face68", MMPOSE / sub)
        assert len(ds) == 2 and ds.skipped == []
        for s in ds.samples:
            assert s.landmarks[:, 0].max() < s.meta["width"] and s.landmarks.min() > -1
