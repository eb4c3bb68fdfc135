"""Face boxes and how they become a model's input crop.

mvface has one *canonical face box*: the tight box ``[x0, y0, x1, y1]`` (0-based pixels) around the
68 iBUG points. Every face detector declares a :class:`BoxTransform` from its raw boxes to the
canonical box, and every landmark model declares one from the canonical box to the box its
network was trained on. So any detector works with any model, and ground-truth boxes (from
annotated landmarks) are canonical boxes by definition (the idea of face-alignment's detectors
declaring their scale and shift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class BoxTransform:
    """Map boxes by scaling their width/height and shifting their centre.

    For a box with centre ``(cx, cy)`` and size ``(w, h)`` the result has centre
    ``(cx + shift_x * w, cy + shift_y * h)`` and size ``(scale_w * w, scale_h * h)``;
    ``square`` then makes it square with side ``sqrt(w' * h')`` (``"mean"``) or
    ``max(w', h')`` (``"max"``); ``""`` keeps the aspect ratio.
    """

    scale_w: float = 1.0
    scale_h: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    square: Literal["", "mean", "max"] = ""

    def __call__(self, boxes: np.ndarray) -> np.ndarray:
        """Apply to ``(..., 4)`` boxes in pixels; returns ``(..., 4)`` float64."""
        b = np.asarray(boxes, dtype=np.float64)
        w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
        cx = (b[..., 0] + b[..., 2]) / 2 + self.shift_x * w
        cy = (b[..., 1] + b[..., 3]) / 2 + self.shift_y * h
        nw, nh = self.scale_w * w, self.scale_h * h
        if self.square == "mean":
            nw = nh = np.sqrt(nw * nh)
        elif self.square == "max":
            nw = nh = np.maximum(nw, nh)
        return np.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], axis=-1)

    def inverse(self) -> BoxTransform:
        """The transform undoing this one (exact when not ``square``)."""
        sw, sh = 1.0 / self.scale_w, 1.0 / self.scale_h
        return BoxTransform(sw, sh, -self.shift_x * sw, -self.shift_y * sh, self.square)

    def then(self, other: BoxTransform) -> BoxTransform:
        """Compose: apply ``self`` first, then ``other`` (exact when neither is square)."""
        return BoxTransform(
            self.scale_w * other.scale_w,
            self.scale_h * other.scale_h,
            self.shift_x + other.shift_x * self.scale_w,
            self.shift_y + other.shift_y * self.scale_h,
            other.square or self.square,
        )

    @staticmethod
    def fit(src: np.ndarray, dst: np.ndarray) -> BoxTransform:
        """Least-squares transform taking ``src`` boxes ``(N, 4)`` to ``dst`` boxes ``(N, 4)``.

        Scales are medians of the size ratios (robust to a few bad matches), shifts are
        medians of the centre offsets in units of the source size.
        """
        s, d = np.asarray(src, np.float64), np.asarray(dst, np.float64)
        sw, sh = s[:, 2] - s[:, 0], s[:, 3] - s[:, 1]
        dw, dh = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
        scx, scy = (s[:, 0] + s[:, 2]) / 2, (s[:, 1] + s[:, 3]) / 2
        dcx, dcy = (d[:, 0] + d[:, 2]) / 2, (d[:, 1] + d[:, 3]) / 2
        return BoxTransform(
            float(np.median(dw / sw)),
            float(np.median(dh / sh)),
            float(np.median((dcx - scx) / sw)),
            float(np.median((dcy - scy) / sh)),
        )


IDENTITY = BoxTransform()


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of ``(N, 4)`` and ``(M, 4)`` boxes; returns ``(N, M)``."""
    a = np.asarray(a, np.float64)[:, None, :]
    b = np.asarray(b, np.float64)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return np.asarray(inter / np.maximum(area_a + area_b - inter, 1e-12))
