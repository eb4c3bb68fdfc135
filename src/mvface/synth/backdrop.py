"""The backdrop behind every view: the photo with the head's region filled from its surroundings.

Step 7 of :mod:`mvface.synth.mesh_head`. A push-pull pyramid fill (:func:`push_pull_fill`, also
the head's colour model in :mod:`mvface.synth.mesh_texture`) gives holes a smooth, defocused
continuation of their surroundings. Pixels follow :mod:`mvface.synth.head`.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["HAIR_MARGIN", "inpaint_background", "push_pull_fill"]

#: Around the head (above the chin) the backdrop is inpainted this far beyond the proxy's
#: outline, in proxy half-widths, so that hair standing out of the proxy does not stay behind
#: as a ghost when the head turns.
HAIR_MARGIN = 0.5


def push_pull_fill(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown pixels of ``image`` smoothly from the known ones (push-pull pyramid).

    Known pixels are averaged down a pyramid with their weights, and every level takes the
    coarser level where it has no data: holes get a smooth, defocused continuation of their
    surroundings, without the streaks of edge-propagating inpainting.

    Args:
        image: ``(H, W, C)`` float32.
        known: ``(H, W)`` float32 weights in [0, 1] (1: keep the pixel).

    Returns:
        ``(H, W, C)`` float32 with holes filled (known pixels kept).
    """
    weighted, weight = image * known[..., None], known.copy()
    levels = [(weighted, weight)]
    while min(weight.shape) > 2:
        h, w = (weight.shape[0] + 1) // 2, (weight.shape[1] + 1) // 2
        weighted = cv2.resize(weighted, (w, h), interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_AREA)
        levels.append((weighted.reshape(h, w, -1), weight))
    weighted, weight = levels[-1]
    mean = weighted.reshape(-1, weighted.shape[-1]).sum(0) / max(float(weight.sum()), 1e-6)
    result = np.where(
        weight[..., None] > 1e-6, weighted / np.maximum(weight, 1e-6)[..., None], mean
    )
    for weighted, weight in reversed(levels[:-1]):
        up = cv2.resize(result, (weight.shape[1], weight.shape[0]), interpolation=cv2.INTER_LINEAR)
        up = up.reshape(weighted.shape)
        color = weighted / np.maximum(weight, 1e-6)[..., None]
        alpha = np.clip(weight, 0.0, 1.0)[..., None]
        result = alpha * color + (1 - alpha) * up
    return result.astype(np.float32)


def inpaint_background(
    image: np.ndarray,
    covered: np.ndarray,
    hair_px: float = 0.0,
    below_row: float = np.inf,
    work_size: int = 128,
) -> np.ndarray:
    """The photo with the head's region filled from its surroundings (blurred).

    The region is ``covered`` (the head's pixels in the source view) grown by a few pixels, and
    by ``hair_px`` above image row ``below_row`` (hair often stands out of the head proxy; the
    neck and shoulders below the chin stay in the backdrop).
    """
    size = image.shape[0]
    grow = max(3, size // 40) | 1
    region = cv2.dilate(covered.astype(np.uint8), np.ones((grow, grow), np.uint8))
    if hair_px >= 1:
        k = 2 * round(hair_px) + 1
        hair = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        rows = np.arange(size)[:, None] < below_row
        region = np.maximum(region, hair * rows.astype(np.uint8))
    small = cv2.resize(image, (work_size, work_size), interpolation=cv2.INTER_AREA)
    small_region = cv2.resize(
        region.astype(np.float32), (work_size, work_size), interpolation=cv2.INTER_AREA
    )
    known = (small_region < 0.01).astype(np.float32)  # pixels with no head in them
    filled = push_pull_fill(small.astype(np.float32), known)
    filled = cv2.resize(filled, (size, size), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), grow / 2)[..., None]
    out = image.astype(np.float32) * (1 - soft) + filled.astype(np.float32) * soft
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
