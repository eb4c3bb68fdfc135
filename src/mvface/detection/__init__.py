"""Face detectors chosen by name, each returning canonical face boxes.

``create_face_detector("blazeface")`` (multi-scale and tiled, the default of
:func:`mvface.load`), ``"blazeface-single-scale"`` (one whole-image pass of each model, the
default before), ``"blazeface-short"``, ``"blazeface-full"``, ``"dlib-hog"``, ``"dlib-cnn"``;
see :mod:`mvface.detection.core` for the interface and the canonical box.
"""

from __future__ import annotations

from mvface.detection import blazeface as _blazeface  # noqa: F401  (registers "blazeface*")
from mvface.detection import dlib as _dlib  # noqa: F401  (registers "dlib-hog", "dlib-cnn")
from mvface.detection import multiscale as _multiscale  # noqa: F401  (registers "blazeface")
from mvface.detection.core import (
    CombinedDetector,
    Detections,
    FaceDetector,
    calibrate_detector,
    create_face_detector,
    list_face_detectors,
    match_detection,
    register_face_detector,
)

__all__ = [
    "CombinedDetector",
    "Detections",
    "FaceDetector",
    "calibrate_detector",
    "create_face_detector",
    "list_face_detectors",
    "match_detection",
    "register_face_detector",
]
