"""dlib's face detectors (``dlib-hog``, ``dlib-cnn``), mapped to canonical boxes.

dlib is imported when a detector is created, so this module loads without it.
"""

from __future__ import annotations

import numpy as np

from mvface.detection.core import Detections, FaceDetector, register_face_detector
from mvface.models._dlib import dlib_model_file, import_dlib
from mvface.models.boxes import BoxTransform

__all__ = ["DlibCnnDetector", "DlibHogDetector"]


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


register_face_detector("dlib-cnn", DlibCnnDetector)
register_face_detector("dlib-hog", DlibHogDetector)
