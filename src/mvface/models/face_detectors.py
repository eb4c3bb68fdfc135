"""Deprecated alias: face detectors moved to :mod:`mvface.detection`.

Old imports keep working (with a :class:`DeprecationWarning`), resolved lazily so this module
adds no import cycle.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"mvface.models.face_detectors.{name} moved to {module}.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
