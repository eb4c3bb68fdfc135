"""The face detector interface, its registry, and canonical boxes.

Every detector returns *canonical* face boxes: the tight box ``[x0, y0, x1, y1]`` (0-based
pixels) around the 68 iBUG points. A detector's raw boxes are mapped to it by a
:class:`~mvface.models.boxes.BoxTransform` fitted on annotated data with
:func:`calibrate_detector`, so every landmark model can use every detector (face-alignment's
idea of detectors declaring their scale and shift).

Detectors are created by name (:func:`create_face_detector`); the modules of
:mod:`mvface.detection` register theirs when the package is imported.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mvface._registry import Registry
from mvface.data.record import FaceSample, landmark_box
from mvface.models.boxes import BoxTransform, box_iou

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


@dataclass
class Detections:
    """Faces found in one image: canonical boxes ``(K, 4)`` pixels and scores ``(K,)``."""

    boxes: np.ndarray
    scores: np.ndarray


class FaceDetector(abc.ABC):
    """Finds faces; ``to_canonical`` maps its raw boxes to canonical boxes."""

    name: str
    to_canonical: BoxTransform

    @abc.abstractmethod
    def detect_raw(self, image: np.ndarray) -> Detections:
        """Raw boxes of the detector on an ``(H, W, 3)`` uint8 RGB image."""

    def detect(self, image: np.ndarray) -> Detections:
        """Canonical face boxes, sorted by decreasing score."""
        raw = self.detect_raw(image)
        order = np.argsort(-raw.scores, kind="stable")
        boxes = self.to_canonical(raw.boxes[order]) if len(order) else raw.boxes
        return Detections(boxes=boxes, scores=raw.scores[order])


class CombinedDetector(FaceDetector):
    """Several detectors on one image, their canonical boxes merged.

    A box overlapping (IoU > ``iou``) a higher-scored box already kept is dropped. Used by
    ``"blazeface-single-scale"``: the short-range model finds large faces (any pose), the
    full-range model small ones.
    """

    to_canonical = BoxTransform()  # members map their own boxes

    def __init__(self, detectors: Sequence[FaceDetector], iou: float = 0.3) -> None:
        self.detectors = list(detectors)
        self.name = "+".join(d.name for d in self.detectors)
        self.iou = iou

    def detect_raw(self, image: np.ndarray) -> Detections:
        found = [d.detect(image) for d in self.detectors]
        boxes = np.concatenate([f.boxes.reshape(-1, 4) for f in found])
        scores = np.concatenate([f.scores for f in found])
        keep: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            if not keep or box_iou(boxes[i : i + 1], boxes[keep]).max() <= self.iou:
                keep.append(int(i))
        return Detections(boxes=boxes[keep].reshape(-1, 4), scores=scores[keep])


_DETECTORS: Registry[Callable[[], FaceDetector]] = Registry(
    "face detector",
    unknown_error=lambda name, names: ValueError(
        f"unknown face detector {name!r}; available: {list(names)}"
    ),
    duplicate_error=lambda name: ValueError(f"face detector {name!r} is already registered"),
)


def register_face_detector(name: str, factory: Callable[[], FaceDetector]) -> None:
    """Make ``create_face_detector(name)`` call ``factory`` (no arguments).

    Raises:
        ValueError: ``name`` is already registered.
    """
    _DETECTORS.register(name, factory)


def list_face_detectors() -> list[str]:
    """Names accepted by :func:`create_face_detector`."""
    return _DETECTORS.list()


def create_face_detector(name: str) -> FaceDetector:
    """The face detector registered as ``name``."""
    return _DETECTORS.create(name)


def match_detection(detections: Detections, reference_box: np.ndarray, min_iou: float = 0.3) -> int:
    """Index of the detection overlapping ``reference_box`` most, or -1 below ``min_iou``."""
    if len(detections.boxes) == 0:
        return -1
    iou = box_iou(np.asarray(reference_box)[None], detections.boxes)[0]
    best = int(np.argmax(iou))
    return best if iou[best] >= min_iou else -1


def calibrate_detector(
    detector: FaceDetector, samples: Sequence[FaceSample], load: Callable[[FaceSample], np.ndarray]
) -> tuple[BoxTransform, int]:
    """Fit the raw-box → canonical-box transform of ``detector`` on annotated samples.

    Returns:
        The fitted transform and the number of faces matched (IoU ≥ 0.3).
    """
    src, dst = [], []
    for sample in samples:
        if sample.landmarks is None:
            continue
        gt = landmark_box(sample.landmarks)
        raw = detector.detect_raw(load(sample))
        idx = match_detection(raw, gt)
        if idx >= 0:
            src.append(raw.boxes[idx])
            dst.append(gt)
    if not src:
        raise ValueError("no detection matched any annotated face")
    return BoxTransform.fit(np.array(src), np.array(dst)), len(src)
