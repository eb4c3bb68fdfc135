"""One non-maximum suppression over the detections of several passes (scales, tiles, flips).

Two boxes are one face when they overlap (IoU above a threshold) *or* one lies mostly inside
the other (intersection over the smaller box's area above a threshold, sizes comparable): a
tile that cuts a face, or a second pass answering with the face plus hair, gives a box inside
the box, whose IoU can be small (0.28 for the duplicate of ``2008_007676.jpg``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_intersection_over_smaller", "group_duplicates"]


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_intersection_over_smaller(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Overlap measures of ``(N, 4)`` and ``(M, 4)`` boxes ``[x0, y0, x1, y1]`` (pixels).

    Returns:
        ``(N, M)`` intersection over the smaller box's area, and ``(N, M)`` IoU.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a, area_b = _areas(a)[:, None], _areas(b)[None, :]
    smaller = np.maximum(np.minimum(area_a, area_b), 1e-12)
    union = np.maximum(area_a + area_b - inter, 1e-12)
    return inter / smaller, inter / union


def group_duplicates(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    containment_threshold: float = 0.6,
    min_area_ratio: float = 0.15,
) -> list[np.ndarray]:
    """Greedy non-maximum suppression that returns the groups, one per face.

    Repeatedly takes the best-scored remaining box and every remaining box that overlaps it with
    IoU > ``iou_threshold``, or lies inside it (or contains it) with intersection over the
    smaller area > ``containment_threshold`` while the smaller box has at least
    ``min_area_ratio`` of the larger one's area (so one large false box cannot swallow several
    small faces).

    Args:
        boxes: ``(N, 4)`` ``[x0, y0, x1, y1]`` pixels.
        scores: ``(N,)``.
        iou_threshold: IoU above which two boxes are one face.
        containment_threshold: intersection over the smaller area above which they are one face.
        min_area_ratio: smallest area ratio (smaller / larger) for the containment rule.

    Returns:
        Index arrays, one per face, by decreasing best score; each starts with its best box.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    remaining = np.argsort(-scores, kind="stable")
    areas = _areas(boxes)
    groups = []
    while remaining.size:
        best = remaining[0]
        ios, iou = box_intersection_over_smaller(boxes[best][None], boxes[remaining])
        ratio = np.minimum(areas[best], areas[remaining]) / np.maximum(
            np.maximum(areas[best], areas[remaining]), 1e-12
        )
        same = (iou[0] > iou_threshold) | (
            (ios[0] > containment_threshold) & (ratio >= min_area_ratio)
        )
        same[0] = True
        groups.append(remaining[same])
        remaining = remaining[~same]
    return groups
