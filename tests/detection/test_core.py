"""Tests of the detector interface, registry and canonical boxes (``mvface.detection.core``)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from mvface.detection import (
    CombinedDetector,
    Detections,
    FaceDetector,
    create_face_detector,
    list_face_detectors,
    match_detection,
    register_face_detector,
)
from mvface.models.boxes import IDENTITY, BoxTransform


class Fixed(FaceDetector):
    """A detector returning fixed raw boxes."""

    def __init__(
        self,
        boxes: list[list[float]],
        scores: list[float],
        to_canonical: BoxTransform = IDENTITY,
    ) -> None:
        self.name = "fixed"
        self.to_canonical = to_canonical
        self.out = Detections(np.array(boxes, float).reshape(-1, 4), np.array(scores, float))

    def detect_raw(self, image: np.ndarray) -> Detections:
        return self.out


def test_detect_sorts_and_maps_to_canonical() -> None:
    detector = Fixed([[0, 0, 10, 10], [20, 20, 40, 40]], [0.5, 0.9], BoxTransform(2.0, 1.0))
    found = detector.detect(np.zeros((4, 4, 3), np.uint8))
    np.testing.assert_allclose(found.scores, [0.9, 0.5])
    np.testing.assert_allclose(found.boxes, [[10, 20, 50, 40], [-5, 0, 15, 10]])


def test_combined_detector_merges_overlaps() -> None:
    a = Fixed([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.6])
    b = Fixed([[1, 1, 11, 11], [100, 100, 120, 120]], [0.8, 0.7])
    found = CombinedDetector([a, b]).detect(np.zeros((4, 4, 3), np.uint8))
    np.testing.assert_allclose(found.scores, [0.9, 0.7, 0.6])  # the 0.8 duplicate is dropped
    np.testing.assert_allclose(found.boxes[1], [100, 100, 120, 120])


class TestRegistry:
    def test_builtin_names(self) -> None:
        names = set(list_face_detectors())
        assert {"blazeface", "blazeface-short", "blazeface-full", "dlib-hog", "dlib-cnn"} <= names

    def test_unknown_name(self) -> None:
        with pytest.raises(ValueError, match="unknown face detector"):
            create_face_detector("no-such-detector")

    def test_duplicate_registration(self) -> None:
        with pytest.raises(ValueError, match="already registered"):
            register_face_detector("dlib-hog", lambda: Fixed([], []))


def test_match_detection() -> None:
    found = Detections(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.ones(2))
    assert match_detection(found, np.array([21, 21, 31, 31])) == 1
    assert match_detection(found, np.array([50, 50, 60, 60])) == -1
    assert match_detection(Detections(np.zeros((0, 4)), np.zeros(0)), np.zeros(4)) == -1


def test_old_module_paths_warn_and_resolve() -> None:
    from mvface.detection.blazeface import BlazeFaceDetector

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from mvface.models import blazeface, face_detectors

        assert face_detectors.create_face_detector is create_face_detector
        assert blazeface.BlazeFaceDetector is BlazeFaceDetector
    assert sum(issubclass(w.category, DeprecationWarning) for w in caught) == 2


@pytest.mark.parametrize(
    "module",
    ["mvface.detection", "mvface.detection.blazeface", "mvface.detection.dlib", "mvface.api"],
)
def test_imports_alone_without_cycle(module: str) -> None:
    # A fresh interpreter: an import cycle shows as ImportError on a partially initialised module.
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=120)
