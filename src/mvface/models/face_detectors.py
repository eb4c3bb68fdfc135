"""Deprecated alias: face detectors moved to :mod:`mvface.detection`.

Old imports keep working (with a :class:`DeprecationWarning`), resolved lazily so this module
adds no import cycle.
"""

from __future__ import annotations

from mvface._registry import moved_attributes

_MOVED: dict[str, str] = {
    "Detections": "mvface.detection.core",
    "FaceDetector": "mvface.detection.core",
    "CombinedDetector": "mvface.detection.core",
    "calibrate_detector": "mvface.detection.core",
    "create_face_detector": "mvface.detection.core",
    "list_face_detectors": "mvface.detection.core",
    "match_detection": "mvface.detection.core",
    "DlibHogDetector": "mvface.detection.dlib",
    "DlibCnnDetector": "mvface.detection.dlib",
}


__getattr__ = moved_attributes(__name__, _MOVED)
