"""``Landmarks.pose`` of every model comes from its points (mvface.geometry.head_pose)."""

from __future__ import annotations

import numpy as np
import pytest

from mvface.geometry.head_pose import MEAN_FACE_68, head_pose, rotation_from_euler
from mvface.models import LandmarkModel, Landmarks, ModelConfig

ANGLES = np.array([[0.2, -0.7, 0.1], [-0.1, 0.4, -0.3]])  # [pitch, yaw, roll] radians


def _posed_face(angles: np.ndarray, z_scale: float) -> np.ndarray:
    """``(N, 68, 3)`` image pixels of the mean face posed by ``angles`` (z scaled by z_scale)."""
    y_up = 50.0 * np.einsum("nij,kj->nki", rotation_from_euler(angles), MEAN_FACE_68)
    return y_up * np.array([1.0, -1.0, z_scale]) + np.array([120.0, 100.0, 0.0])


class _PosedFace(LandmarkModel):
    """Returns the mean face at :data:`ANGLES`, with a wrong pose and (3D) a wrong depth of its
    own: the pose a model reports must come from its x, y."""

    def __init__(self, output: str) -> None:
        self.config = ModelConfig(name="posed-face", output=output)  # type: ignore[arg-type]

    def _predict(self, images, crop_boxes):  # type: ignore[no-untyped-def]
        points = _posed_face(ANGLES[: len(crop_boxes)], z_scale=-2.5)
        if self.config.output == "68x2":
            points = points[..., :2]
        return Landmarks(points=points, pose=np.zeros((len(crop_boxes), 3)))


@pytest.mark.parametrize("output", ["68x2", "68x3"])
def test_pose_comes_from_the_points(output: str) -> None:
    image = np.zeros((200, 240, 3), np.uint8)
    out = _PosedFace(output).predict(image, np.array([[60.0, 40.0, 180.0, 160.0]] * 2))
    assert out.pose is not None
    np.testing.assert_allclose(out.pose, ANGLES, atol=1e-7)
    np.testing.assert_allclose(out.pose, head_pose(out.points), atol=1e-12)


def test_no_faces_no_angles() -> None:
    out = _PosedFace("68x2").predict(np.zeros((20, 20, 3), np.uint8), np.zeros((0, 4)))
    assert out.pose is not None and out.pose.shape == (0, 3)
