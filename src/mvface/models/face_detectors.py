"""Face detectors, chosen by name; each returns canonical face boxes.

A detector's raw boxes are mapped to the canonical box (tight box around the 68 iBUG points) by a
transform fitted on annotated data with :func:`calibrate_detector`, so every landmark model can
use every detector.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mvface.data.record import FaceSample, landmark_box
from mvface.models._dlib import dlib_model_file, import_dlib
from mvface.models.boxes import BoxTransform, box_iou


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


class DlibHogDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal face detector (CPU, ~0.1 s per VGA image)."""

    name = "dlib-hog"
    #: HOG box -> canonical box, fitted on 300-W AFW + HELEN test (636 matched faces).
    to_canonical = BoxTransform(scale_w=0.9486, scale_h=0.9224, shift_x=0.0160, shift_y=0.0981)

    def __init__(self, upsample: int = 1) -> None:
        self._detector = import_dlib().get_frontal_face_detector()
        self.upsample = upsample

    def detect_raw(self, image: np.ndarray) -> Detections:
        rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], float)
        return Detections(boxes=boxes.reshape(-1, 4), scores=np.asarray(scores, float))


class DlibCnnDetector(FaceDetector):
    """dlib's CNN (MMOD) face detector: more poses than HOG, but ~1-3 s per image on a CPU."""

    name = "dlib-cnn"
    #: MMOD box -> canonical box, fitted with :func:`calibrate_detector` on every second face of
    #: 300-W AFW + HELEN test (334 of 334 matched).
    to_canonical = BoxTransform(scale_w=1.0156, scale_h=0.9832, shift_x=0.0502, shift_y=0.1513)

    def __init__(self, upsample: int = 0) -> None:
        dlib = import_dlib()
        path = dlib_model_file("mmod_human_face_detector.dat")
        self._detector = dlib.cnn_face_detection_model_v1(str(path))
        self.upsample = upsample

    def detect_raw(self, image: np.ndarray) -> Detections:
        found = self._detector(image, self.upsample)
        boxes = [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in found]
        return Detections(
            boxes=np.array(boxes, float).reshape(-1, 4),
            scores=np.array([d.confidence for d in found], float),
        )


class CombinedDetector(FaceDetector):
    """Several detectors on one image, their canonical boxes merged.

    A box overlapping (IoU > ``iou``) a higher-scored box already kept is dropped. Used by
    ``"blazeface"``: the short-range model finds large faces (any pose), the full-range model
    small ones.
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


def _blazeface(variant: str) -> Callable[[], FaceDetector]:
    """Factory of a MediaPipe BlazeFace detector (imported lazily: it needs torch)."""

    def create() -> FaceDetector:
        from mvface.models.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(variant)

    return create


_DETECTORS: dict[str, Callable[[], FaceDetector]] = {
    "dlib-cnn": DlibCnnDetector,
    "dlib-hog": DlibHogDetector,
    "blazeface-short": _blazeface("short"),
    "blazeface-full": _blazeface("full"),
    "blazeface": lambda: CombinedDetector([_blazeface("short")(), _blazeface("full")()]),
}


def list_face_detectors() -> list[str]:
    """Names accepted by :func:`create_face_detector`."""
    return sorted(_DETECTORS)


def create_face_detector(name: str) -> FaceDetector:
    """The face detector registered as ``name``."""
    if name not in _DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; available: {list_face_detectors()}")
    return _DETECTORS[name]()


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
