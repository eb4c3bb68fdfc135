"""``EnsembleModel`` and the registered ``teacher``: several models fused point by point."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from _shared import SHARED
from mvface.errors import NotAvailableError
from mvface.models import create_model
from mvface.models.base import LandmarkModel, Landmarks, ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.ensemble import EnsembleModel, fuse_points

TDDFA = SHARED / "models" / "3ddfa_v2"


class BoxPoints(LandmarkModel):
    """Puts every point at a fixed place of its *crop* box: closed-form answers that also show
    each member gets the canonical box through its own crop policy."""

    def __init__(self, crop: BoxTransform, where: tuple[float, float], z: float | None) -> None:
        output = "68x3" if z is not None else "68x2"
        self.config = ModelConfig(name="box-points", crop=crop, output=output)
        self.where, self.z = where, z

    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        b = np.asarray(crop_boxes, np.float64)
        x = b[:, 0] + self.where[0] * (b[:, 2] - b[:, 0])
        y = b[:, 1] + self.where[1] * (b[:, 3] - b[:, 1])
        cols = [x, y] if self.z is None else [x, y, np.full_like(x, self.z)]
        points = np.repeat(np.stack(cols, -1)[:, None], 68, axis=1)
        if self.z is not None:
            points[:, :, 2] += np.arange(68)  # a depth profile, origin self.z
        return Landmarks(points=points)


IMAGE = np.zeros((100, 120, 3), np.uint8)
BOX = np.array([[20.0, 10.0, 60.0, 50.0]])


class TestFusePoints:
    def test_weighted_mean_per_point(self) -> None:
        a, b = np.zeros((2, 68, 2)), np.ones((2, 68, 2))
        shares = np.stack([np.linspace(0, 1, 68), 1 - np.linspace(0, 1, 68)])
        fused = fuse_points([a, b], shares)
        np.testing.assert_allclose(fused[0, :, 0], 1 - np.linspace(0, 1, 68))

    def test_depth_origins_are_removed(self) -> None:
        a = np.zeros((1, 68, 3))
        b = np.zeros((1, 68, 3))
        a[..., 2], b[..., 2] = 100 + np.arange(68), -50 + 3 * np.arange(68)
        fused = fuse_points([a, b], np.full((2, 68), 0.5))
        expected = (np.arange(68) - 33.5) * 2  # mean of (k - 33.5) and 3 (k - 33.5)
        np.testing.assert_allclose(fused[0, :, 2], expected)

    def test_two_d_when_any_member_is_two_d(self) -> None:
        fused = fuse_points([np.zeros((1, 68, 3)), np.zeros((1, 68, 2))], np.full((2, 68), 0.5))
        assert fused.shape == (1, 68, 2)


class TestEnsembleModel:
    def test_members_crop_their_own_way_and_fuse(self) -> None:
        tight = BoxPoints(BoxTransform(), (0.5, 0.5), None)  # box centre: (40, 30)
        wide = BoxPoints(BoxTransform(2.0, 2.0), (0.0, 0.0), None)  # wide box corner: (0, -10)
        ens = EnsembleModel([(tight, 3.0), (wide, 1.0)])
        points = ens.predict(IMAGE, BOX).points
        np.testing.assert_allclose(points[0, 0], [0.75 * 40 + 0.25 * 0, 0.75 * 30 - 0.25 * 10])
        assert ens.config.output == "68x2"

    def test_per_point_shares(self) -> None:
        a = BoxPoints(BoxTransform(), (0.0, 0.0), 1.0)
        b = BoxPoints(BoxTransform(), (1.0, 1.0), 5.0)
        jaw_from_b = np.ones(68)
        jaw_from_b[:17] = 0.0
        ens = EnsembleModel([(a, jaw_from_b), (b, 1.0 - jaw_from_b)])
        points = ens.predict(IMAGE, BOX).points
        np.testing.assert_allclose(points[0, :17, :2], np.tile([60.0, 50.0], (17, 1)))
        np.testing.assert_allclose(points[0, 17:, :2], np.tile([20.0, 10.0], (51, 1)))
        assert ens.config.output == "68x3"

    def test_bad_shares_are_refused(self) -> None:
        a = BoxPoints(BoxTransform(), (0.0, 0.0), None)
        with pytest.raises(ValueError, match="positive sum"):
            EnsembleModel([(a, 0.0)])
        with pytest.raises(ValueError, match="at least one"):
            EnsembleModel([])


class TestTeacher:
    def test_needs_the_3ddfa_files(self) -> None:
        with pytest.raises(NotAvailableError, match="3DDFA_V2"):
            create_model("teacher")

    @pytest.mark.shared_data
    def test_is_between_its_members(self) -> None:
        if not TDDFA.is_dir():
            pytest.skip(f"{TDDFA} not present")
        teacher = create_model("teacher", weights=str(TDDFA))
        rng = np.random.default_rng(0)
        image = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
        box = np.array([[50.0, 50.0, 150.0, 150.0]])
        fused = teacher.predict(image, box).points[..., :2]
        parts = [m.predict(image, box).points[..., :2] for m in teacher.members]  # type: ignore[attr-defined]
        np.testing.assert_allclose(fused, 0.7 * parts[0] + 0.3 * parts[1], atol=1e-6)
