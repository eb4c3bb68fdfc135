"""MediaPipe BlazeFace as mvface face detectors (``blazeface-short``, ``blazeface-full``,
``blazeface-single-scale``; the multi-scale default ``blazeface`` is in
:mod:`mvface.detection.multiscale`).

Outputs (:class:`BlazeFaceDetections`) are in image pixels, 0-based with pixel centres at
integers (mvface's convention); keypoints in :data:`~mvface.detection.blazeface_decode.
KEYPOINT_NAMES` order, "right" meaning the subject's right.

Example:
    >>> detector = BlazeFaceDetector("short")  # doctest: +SKIP
    >>> faces = detector.detect_raw(image)  # (H, W, 3) uint8 RGB  # doctest: +SKIP
    >>> faces.boxes.shape, faces.keypoints.shape  # doctest: +SKIP
    ((2, 4), (2, 6, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mvface.detection.blazeface_decode import blazeface_config, letterbox, non_max_suppression
from mvface.detection.blazeface_net import load_blazeface
from mvface.detection.core import (
    CombinedDetector,
    Detections,
    FaceDetector,
    register_face_detector,
)
from mvface.models.boxes import BoxTransform

__all__ = ["CANONICAL_TRANSFORMS", "BlazeFaceDetections", "BlazeFaceDetector"]


@dataclass
class BlazeFaceDetections(Detections):
    """Faces found in one image (image pixels, 0-based, pixel centres at integers).

    Attributes:
        boxes: ``(K, 4)`` ``[x0, y0, x1, y1]`` (MediaPipe's box from ``detect_raw``, the
            canonical box from ``detect``).
        scores: ``(K,)`` in [0, 1], decreasing.
        keypoints: ``(K, 6, 2)`` (x, y) in ``KEYPOINT_NAMES`` order.
    """

    keypoints: np.ndarray


#: MediaPipe box -> canonical box (tight box around the 68 iBUG points), per variant.
#: Fitted with :func:`~mvface.detection.core.calibrate_detector` on 300-W AFW + HELEN test
#: (667 faces) by ``python tools/calibrate_detectors.py --data-root ../shared/data``:
#: short range on 667 matched faces (IoU >= 0.3), full range on 656.
CANONICAL_TRANSFORMS: dict[str, BoxTransform] = {
    "short": BoxTransform(scale_w=0.9552, scale_h=0.9284, shift_x=0.0009, shift_y=0.0543),
    "full": BoxTransform(scale_w=0.8855, scale_h=0.8658, shift_x=0.0031, shift_y=0.0909),
}


class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace as an mvface face detector (``blazeface-short`` / ``blazeface-full``).

    Args:
        variant: ``"short"`` (faces within ~2 m, 128 px input) or ``"full"`` (up to ~5 m, 192 px).
        weights: a converted ``.safetensors`` (default: the one shipped with mvface).
        min_score: score threshold (default MediaPipe's: 0.5 short, 0.6 full).
        weighted_nms: MediaPipe's weighted NMS (True) or plain NMS.

    Raises:
        NotAvailableError: the weights are absent.
    """

    def __init__(
        self,
        variant: str = "short",
        weights: str | Path | None = None,
        min_score: float | None = None,
        weighted_nms: bool = True,
    ) -> None:
        self.config = blazeface_config(variant)
        self.name = f"blazeface-{variant}"
        self.to_canonical = CANONICAL_TRANSFORMS[variant]
        self.net = load_blazeface(variant, weights)
        self.min_score = self.config.min_score_thresh if min_score is None else min_score
        self.weighted_nms = weighted_nms

    def detect_raw(self, image: np.ndarray) -> BlazeFaceDetections:
        """MediaPipe's face boxes, scores and keypoints on an ``(H, W, 3)`` uint8 RGB image.

        Raises:
            BadInputError: ``image`` is not an ``(H, W, 3)`` uint8 array.
        """
        return self.detect_raw_batch([image])[0]

    def detect_raw_batch(self, images: Sequence[np.ndarray]) -> list[BlazeFaceDetections]:
        """:meth:`detect_raw` of several images (any sizes) in one network call.

        Raises:
            BadInputError: an image is not an ``(H, W, 3)`` uint8 array.
        """
        if not images:
            return []
        config = self.config
        boxed = [letterbox(image, config.input_size) for image in images]
        pixels = torch.from_numpy(np.stack([p for p, _ in boxed]))
        mean = torch.tensor(config.mean).view(1, 3, 1, 1)
        std = torch.tensor(config.std).view(1, 3, 1, 1)
        x = (pixels.permute(0, 3, 1, 2).float() - mean) / std
        with torch.inference_mode():
            decoded = [t.numpy() for t in self.net.decode(*self.net(x))]
        found = []
        for (_, box), boxes, keypoints, scores in zip(boxed, *decoded, strict=True):
            keep = (
                (scores >= self.min_score)
                & (boxes[:, 2] >= boxes[:, 0])
                & (boxes[:, 3] >= boxes[:, 1])
            )
            kept_boxes, kept_scores, kept_points = non_max_suppression(
                boxes[keep],
                scores[keep],
                keypoints[keep],
                config.min_suppression_threshold,
                self.weighted_nms,
            )
            found.append(
                BlazeFaceDetections(
                    boxes=box.boxes_to_image(kept_boxes),
                    scores=kept_scores,
                    keypoints=box.to_image(kept_points),
                )
            )
        return found

    def detect(self, image: np.ndarray) -> BlazeFaceDetections:
        """Canonical face boxes (see :data:`CANONICAL_TRANSFORMS`), scores and keypoints."""
        raw = self.detect_raw(image)
        order = np.argsort(-raw.scores, kind="stable")
        boxes = self.to_canonical(raw.boxes[order]) if len(order) else raw.boxes
        return BlazeFaceDetections(boxes, raw.scores[order], raw.keypoints[order])


register_face_detector("blazeface-short", lambda: BlazeFaceDetector("short"))
register_face_detector("blazeface-full", lambda: BlazeFaceDetector("full"))
#: The default before multi-scale search: one whole-image pass of each model.
register_face_detector(
    "blazeface-single-scale",
    lambda: CombinedDetector([BlazeFaceDetector("short"), BlazeFaceDetector("full")]),
)
