"""Small stand-ins with closed-form answers, shared by tests of several packages."""

from __future__ import annotations

import numpy as np

from mvface.detection import Detections, FaceDetector
from mvface.models.boxes import IDENTITY


class BrightBoxDetector(FaceDetector):
    """Finds one face: the bounding box of the bright pixels (red channel > 128)."""

    name = "bright"
    to_canonical = IDENTITY

    def detect_raw(self, image: np.ndarray) -> Detections:
        ys, xs = np.nonzero(image[..., 0] > 128)
        if len(xs) == 0:
            return Detections(np.zeros((0, 4)), np.zeros(0))
        return Detections(np.array([[xs.min(), ys.min(), xs.max(), ys.max()]], float), np.ones(1))
