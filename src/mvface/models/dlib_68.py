"""dlib's 68-point shape predictor (Kazemi & Sullivan 2014), a peer for comparison.

The predictor was trained on iBUG 300-W with boxes from dlib's HOG face detector, so its crop
policy maps the canonical box (tight 68-point box) to a HOG-like box; the transform was fitted on
the 300-W AFW + HELEN-test images (636 matched faces) with
``mvface.detection.calibrate_detector`` (see the README, "Models and where their numbers are").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mvface.models._dlib import dlib_model_file, import_dlib, load_dlib_model
from mvface.models._registry import register_model
from mvface.models.base import LandmarkModel, Landmarks, ModelConfig
from mvface.models.boxes import BoxTransform

#: canonical box -> dlib HOG detector box, fitted on 300-W (AFW + HELEN test, 636 faces).
CANONICAL_TO_HOG = BoxTransform(scale_w=1.0541, scale_h=1.0842, shift_x=-0.0162, shift_y=-0.1058)


class Dlib68(LandmarkModel):
    """dlib ``shape_predictor_68_face_landmarks.dat`` behind the common interface."""

    def __init__(self, weights: str | None = None) -> None:
        dlib = import_dlib()
        path = weights or str(dlib_model_file("shape_predictor_68_face_landmarks.dat"))
        self._dlib = dlib
        self._predictor = load_dlib_model(dlib.shape_predictor, path, "dlib shape predictor")
        self.config = ModelConfig(
            name="dlib",
            crop=CANONICAL_TO_HOG,
            output="68x2",
            licence="model: dlib (Boost); trained on iBUG 300-W (research use only)",
        )

    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        out = np.empty((len(crop_boxes), 68, 2))
        for i, (img, box) in enumerate(zip(images, crop_boxes, strict=True)):
            x0, y0, x1, y1 = (round(float(v)) for v in box)
            shape = self._predictor(img, self._dlib.rectangle(x0, y0, x1, y1))
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return Landmarks(points=out)


@register_model("dlib")
def dlib_68(weights: str | None = None, **cfg: Any) -> LandmarkModel:
    """dlib's 68-point predictor (needs ``pip install 'mvface[dlib]'``)."""
    if cfg:
        raise ValueError(f"dlib takes no options, got {sorted(cfg)}")
    return Dlib68(weights)
