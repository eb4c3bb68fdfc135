"""Deprecated alias: BlazeFace moved to :mod:`mvface.detection` (``blazeface_net``,
``blazeface_decode``, ``blazeface``); its TFLite conversion to ``tools/convert_blazeface.py``.

Old imports of run-time names keep working (with a :class:`DeprecationWarning`), resolved
lazily so this module adds no import cycle.
"""

from __future__ import annotations

from mvface._registry import moved_attributes

_NET = "mvface.detection.blazeface_net"
_DECODE = "mvface.detection.blazeface_decode"
_DETECTOR = "mvface.detection.blazeface"

_MOVED: dict[str, str] = {
    **dict.fromkeys(("DEFAULT_WEIGHTS_PATHS", "LICENSE", "BlazeFaceNet", "load_blazeface"), _NET),
    **dict.fromkeys(
        (
            "BLAZEFACE_CONFIGS",
            "FULL_RANGE_CONFIG",
            "KEYPOINT_NAMES",
            "SHORT_RANGE_CONFIG",
            "BlazeFaceConfig",
            "Letterbox",
            "decode_regressors",
            "encode_regressors",
            "letterbox",
            "non_max_suppression",
            "scores_from_logits",
            "ssd_anchors",
        ),
        _DECODE,
    ),
    **dict.fromkeys(
        ("CANONICAL_TRANSFORMS", "BlazeFaceDetections", "BlazeFaceDetector"), _DETECTOR
    ),
}


__getattr__ = moved_attributes(__name__, _MOVED)
