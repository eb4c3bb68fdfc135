"""mvface.load: the shipped models find a face and give 68 points and a head pose, offline."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

import mvface
from mvface.models import DEFAULT_MODEL


@pytest.mark.parametrize("name", ["base", "base+", "fast"])
def test_shipped_models_detect_points_and_pose(name: str) -> None:
    image = data.astronaut()  # ships with scikit-image: a frontal face
    landmarker = mvface.load(name)
    faces = landmarker.detect(image)
    assert len(faces) == 1 and faces.points.shape == (1, 68, 3)
    assert faces.pose is not None and faces.pose.shape == (1, 3)
    _pitch, yaw, roll = np.degrees(faces.pose[0])
    assert abs(yaw) < 20 and abs(roll) < 20
    # the face box a detector gives and the points agree: the points fill the box
    x0, y0, x1, y1 = faces.boxes[0]
    centre = faces.points[0, :, :2].mean(0)
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1
    again = landmarker.predict(image, faces.boxes)
    np.testing.assert_allclose(again.points, faces.points)


def test_load_defaults_to_the_speed_first_model() -> None:
    assert DEFAULT_MODEL == "fast"
    assert mvface.load().model.config.name == "fast"
