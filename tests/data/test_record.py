"""FaceSample validation, landmark_box and Dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mvface.data.record import Dataset, FaceSample, landmark_box, validate_landmarks
from mvface.errors import BadInputError


def _points(n: int = 68, dims: int = 2) -> np.ndarray:
    return np.arange(n * dims, dtype=np.float64).reshape(n, dims)


class TestValidateLandmarks:
    def test_accepts_68x2_and_68x3(self) -> None:
        assert validate_landmarks(_points(), "x").shape == (68, 2)
        assert validate_landmarks(_points(dims=3).tolist(), "x").dtype == np.float64

    @pytest.mark.parametrize(
        ("value", "needle"),
        [
            (np.zeros((67, 2)), "expected 68"),
            (np.zeros((68, 4)), "shape"),
            (np.zeros(136), "shape"),
            ([["a", "b"]] * 68, "not numbers"),
        ],
    )
    def test_rejects_bad_shapes(self, value: object, needle: str) -> None:
        with pytest.raises(BadInputError, match=needle) as info:
            validate_landmarks(value, "file.pts")
        assert str(info.value).startswith("file.pts: ")

    def test_rejects_nan(self) -> None:
        pts = _points()
        pts[3, 1] = np.nan
        with pytest.raises(BadInputError, match="NaN"):
            validate_landmarks(pts, "x")


class TestFaceSample:
    def test_smoke(self, tmp_path: Path) -> None:
        s = FaceSample(
            image=tmp_path / "a.jpg",
            landmarks=_points().tolist(),
            box=[0, 0, 10, 10],
            pose=[0.1, 0.2, 0.3],
            visibility=[1] * 68,
            name="a",
        )
        assert s.landmarks is not None and s.landmarks.dtype == np.float64
        assert s.box is not None and s.box.shape == (4,)
        assert s.visibility is not None and s.visibility.dtype == bool
        assert s.image_path == tmp_path / "a.jpg"

    def test_array_image_has_no_path(self) -> None:
        s = FaceSample(image=np.zeros((4, 4, 3), np.uint8))
        assert s.image_path is None and s.landmarks is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"landmarks": np.zeros((5, 2))},
            {"box": [0, 0, 0, 10]},
            {"box": [0, 0, 1]},
            {"box": [0, 0, np.nan, 1]},
            {"pose": [0.0, 1.0]},
            {"pose": [0.0, np.inf, 0.0]},
            {"visibility": [True] * 5},
        ],
    )
    def test_rejects_bad_fields(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(BadInputError):
            FaceSample(image=Path("face.jpg"), **kwargs)  # type: ignore[arg-type]

    def test_error_names_the_image(self) -> None:
        with pytest.raises(BadInputError, match=r"^face\.jpg: "):
            FaceSample(image=Path("face.jpg"), landmarks=np.zeros((3, 2)))


def test_landmark_box_batch() -> None:
    pts = np.stack([_points(), _points() + 5])
    box = landmark_box(pts)
    assert box.shape == (2, 4)
    np.testing.assert_array_equal(box[0], [0, 1, 134, 135])
    np.testing.assert_array_equal(box[1], [5, 6, 139, 140])


def test_dataset_len() -> None:
    ds = Dataset(samples=[FaceSample(image=Path("a.jpg"))], skipped=["b.jpg: bad"], name="x")
    assert len(ds) == 1 and ds.skipped == ["b.jpg: bad"] and ds.root is None
