"""Draw landmarks and boxes on images (RGB uint8 in, RGB uint8 out; inputs are not modified)."""

from __future__ import annotations

import cv2
import numpy as np

from mvface.data.scheme import GROUPS

Color = tuple[int, int, int]

#: Contours drawn as polylines (closed for eyes and lips).
_CONTOURS: tuple[tuple[str, bool], ...] = (
    ("jaw", False),
    ("right_brow", False),
    ("left_brow", False),
    ("nose_bridge", False),
    ("nose_base", False),
    ("right_eye", True),
    ("left_eye", True),
    ("outer_lips", True),
    ("inner_lips", True),
)


def _thickness(image: np.ndarray) -> int:
    return max(1, round(max(image.shape[:2]) / 400))


def draw_landmarks(
    image: np.ndarray,
    points: np.ndarray,
    color: Color = (0, 255, 0),
    visibility: np.ndarray | None = None,
    hidden_color: Color = (255, 160, 0),
    lines: bool = True,
) -> np.ndarray:
    """Draw one face's 68 points (and its contours) on a copy of ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        points: ``(68, 2+)`` 0-based pixels.
        color: RGB colour of visible points.
        visibility: ``(68,)`` bool; hidden points are drawn hollow in ``hidden_color``.
        lines: also connect the points of each facial contour.
    """
    out = np.ascontiguousarray(image.copy())
    pts = np.asarray(points, np.float64)[:, :2]
    face_size = float(np.sqrt(np.prod(np.ptp(pts, axis=0)) + 1e-9))
    t = max(1, min(_thickness(out), round(face_size / 80)))
    shift = 4  # sub-pixel drawing: coordinates are scaled by 2**shift
    scaled = np.round(pts * (1 << shift)).astype(np.int32)
    if lines:
        for group, closed in _CONTOURS:
            idx = list(GROUPS[group])
            cv2.polylines(out, [scaled[idx]], closed, color, max(1, t // 2), cv2.LINE_AA, shift)
    vis = np.ones(len(pts), bool) if visibility is None else np.asarray(visibility, bool)
    radius = (t + 1) << shift
    for p, v in zip(scaled, vis, strict=True):
        if v:
            cv2.circle(out, (int(p[0]), int(p[1])), radius, color, -1, cv2.LINE_AA, shift)
        else:
            cv2.circle(out, (int(p[0]), int(p[1])), radius, hidden_color, t, cv2.LINE_AA, shift)
    return out


def draw_box(
    image: np.ndarray, box: np.ndarray, color: Color = (255, 255, 255), label: str = ""
) -> np.ndarray:
    """Draw a ``[x0, y0, x1, y1]`` box (and an optional label) on a copy of ``image``."""
    out = np.ascontiguousarray(image.copy())
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    t = _thickness(out)
    cv2.rectangle(out, (x0, y0), (x1, y1), color, t, cv2.LINE_AA)
    if label:
        scale = 0.4 * t
        cv2.putText(out, label, (x0, max(0, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, scale, color, t)
    return out
