"""Small stand-ins with closed-form answers, shared by tests of several packages."""

from __future__ import annotations

import numpy as np

from mvface.detection import Detections, FaceDetector
from mvface.models.boxes import IDENTITY
from mvface.models.mediapipe_68 import MESH_OUTER_EYE_CORNERS


class BrightBoxDetector(FaceDetector):
    """Finds one face: the bounding box of the bright pixels (red channel > 128)."""

    name = "bright"
    to_canonical = IDENTITY

    def detect_raw(self, image: np.ndarray) -> Detections:
        ys, xs = np.nonzero(image[..., 0] > 128)
        if len(xs) == 0:
            return Detections(np.zeros((0, 4)), np.zeros(0))
        return Detections(np.array([[xs.min(), ys.min(), xs.max(), ys.max()]], float), np.ones(1))


def synthetic_mesh(n: int, seed: int = 0) -> np.ndarray:
    """(n, 468, 3) random face-mesh 'meshes' (pixels) with the outer eye corners placed left and
    right."""
    rng = np.random.default_rng(seed)
    mesh = rng.uniform(-40, 40, (n, 468, 3))
    mesh[:, MESH_OUTER_EYE_CORNERS[0], :2] = [-30, -10]
    mesh[:, MESH_OUTER_EYE_CORNERS[1], :2] = [30, -10]
    return mesh
