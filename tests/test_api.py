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


def test_detect_takes_paths_pil_images_grey_rgba_and_float(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    image = data.astronaut()
    path = tmp_path / "astronaut.png"
    Image.fromarray(image).save(path)
    landmarker = mvface.load("fast")
    reference = landmarker.detect(image)
    rgba = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=2)
    for other in (str(path), path, Image.open(path), image / 255.0, rgba):
        faces = landmarker.detect(other)
        np.testing.assert_allclose(faces.points, reference.points, atol=1e-3)
    grey = landmarker.detect(image.mean(axis=2).astype(np.uint8))
    assert len(grey) == 1 and grey.points.shape == (1, 68, 3)
