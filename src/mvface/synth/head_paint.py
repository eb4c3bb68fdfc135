"""The painted colour model of a synthetic head's unseen parts (the ``"head"`` backend).

Where neither the photo nor its mirror side saw the head (the back of the skull, the neck, the
ears), :mod:`mvface.synth.whole_head` paints it: skin from the photo's face, the neck a little
darker, and hair above a hairline from the photo's hair region above the forehead when there is
one (its texture tiled), so the backdrop never shows through the head.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from mvface.synth.backdrop import push_pull_fill
from mvface.synth.mesh_texture import smoothstep

__all__ = ["hair_pixels", "hair_texture", "paint_head_chart", "skin_colour"]

#: Painted colour model: neck colour = skin x this; hair is taken when its median colour is
#: this far (RGB Euclidean, 0–255) from the skin's and covers this share of the crop.
NECK_SHADE = 0.82
HAIR_MIN_CONTRAST = 40.0
HAIR_MIN_SHARE = 0.01


def skin_colour(image: np.ndarray, face_mask: np.ndarray) -> np.ndarray:
    """``(3,)`` float median RGB of the face's mid-luminance pixels (no eyes, brows, mouth)."""
    pixels = image[face_mask].astype(np.float64)
    if len(pixels) < 16:
        pixels = image.reshape(-1, 3).astype(np.float64)
    lum = pixels @ [0.299, 0.587, 0.114]
    lo, hi = np.percentile(lum, [30, 90])
    keep = (lum >= lo) & (lum <= hi)
    return np.asarray(np.median(pixels[keep] if keep.any() else pixels, axis=0))


def hair_texture(image: np.ndarray, hair_mask: np.ndarray, size: int) -> np.ndarray | None:
    """``(size, size, 3)`` float32 texture tiled from the photo's hair pixels (the bounding box
    of ``hair_mask``, its other pixels filled from them, mirrored repeats), or ``None``."""
    rows, cols = np.nonzero(hair_mask)
    if len(rows) == 0:
        return None
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    patch = image[r0:r1, c0:c1].astype(np.float32)
    patch = push_pull_fill(patch, hair_mask[r0:r1, c0:c1].astype(np.float32))
    reps = (size // max(patch.shape[0], 1) + 2, size // max(patch.shape[1], 1) + 2)
    tile = np.concatenate([patch, patch[::-1]], 0)
    tile = np.concatenate([tile, tile[:, ::-1]], 1)
    big = np.tile(tile, (reps[0] // 2 + 1, reps[1] // 2 + 1, 1))
    return np.ascontiguousarray(big[:size, :size])


def hair_pixels(
    image: np.ndarray, covered: np.ndarray, brow_row: float, skin: np.ndarray
) -> np.ndarray:
    """``(S, S)`` bool: the photo's hair, or all ``False`` when it shows none (bald, cropped).

    Candidates are the source view's head pixels above the brows; of those,
    hair is what differs from the backdrop behind the head (the photo around the head, spread
    into it by a push-pull fill) and from the skin by :data:`HAIR_MIN_CONTRAST`. It counts when
    it makes a quarter of the candidates and :data:`HAIR_MIN_SHARE` of the crop.
    """
    size = image.shape[0]
    rows = np.arange(size)[:, None] < brow_row - 0.02 * size
    candidates = covered & rows  # the forehead's skin drops out by its colour below
    if candidates.mean() < HAIR_MIN_SHARE:
        return np.zeros_like(candidates)
    work = 64
    small = cv2.resize(image, (work, work), interpolation=cv2.INTER_AREA).astype(np.float32)
    head = cv2.resize(covered.astype(np.float32), (work, work), interpolation=cv2.INTER_AREA)
    backdrop = push_pull_fill(small, (head < 0.01).astype(np.float32))
    backdrop = cv2.resize(backdrop, (size, size), interpolation=cv2.INTER_LINEAR)
    pixels = image.astype(np.float32)
    off_backdrop = np.linalg.norm(pixels - backdrop, axis=-1) >= HAIR_MIN_CONTRAST
    off_skin = np.linalg.norm(pixels - np.asarray(skin, np.float32), axis=-1) >= HAIR_MIN_CONTRAST
    hair = candidates & off_backdrop & off_skin
    if hair.sum() < 0.25 * candidates.sum() or hair.mean() < HAIR_MIN_SHARE:
        return np.zeros_like(candidates)
    return np.asarray(hair)


def paint_head_chart(
    skin: np.ndarray,
    hair: np.ndarray | None,
    hairline: tuple[float, float],
    neck_line: tuple[float, float],
    size: int = 256,
) -> np.ndarray:
    """The colour model of the unseen head, on the shell's chart.

    Texel ``(row, col)`` is chart ``(u, v) = (col + 0.5, row + 0.5) / size`` scaled to
    ``(|longitude| / π, 0.92 · polar angle / π)``; rows below ``v = 0.94`` are plain skin (the
    ears). Hair above the hairline (polar angle ``hairline[0]`` at the front, ``hairline[1]``
    at the back, radians, interpolated by ``(1 − cos longitude) / 2``), the neck
    (:data:`NECK_SHADE` x skin) below the neck line (same form), skin between; 4° soft edges.

    Args:
        skin: ``(3,)`` RGB 0–255.
        hair: ``(size, size, 3)`` hair texture, or ``None`` (no hair: skin up to the crown).
        hairline: polar angles of the hairline at the front and the back (radians).
        neck_line: polar angles where the neck starts at the front and the back (radians).
        size: panel side in texels.

    Returns:
        ``(size, size, 3)`` uint8.
    """
    u = (np.arange(size) + 0.5) / size
    v = (np.arange(size) + 0.5) / size
    U, V = np.meshgrid(u, v)
    longitude = U * math.pi
    polar = V / 0.92 * math.pi
    mix = 0.5 * (1.0 - np.cos(longitude))
    hair_at = hairline[0] + (hairline[1] - hairline[0]) * mix
    neck_at = neck_line[0] + (neck_line[1] - neck_line[0]) * mix
    edge = math.radians(4.0)
    skin = np.asarray(skin, np.float32)
    neck_w = smoothstep(-edge, edge, polar - neck_at)[..., None]
    colour = skin * (1.0 - neck_w) + NECK_SHADE * skin * neck_w
    if hair is not None:
        hair_w = smoothstep(edge, -edge, polar - hair_at)[..., None]
        colour = hair.astype(np.float32) * hair_w + colour * (1.0 - hair_w)
    # soft light from above and in front: the crown and face side lighter, under the jaw and
    # the back of the neck darker
    light = 0.5 * (1.0 + np.cos(polar)) * 0.7 + 0.3 * 0.5 * (1.0 + np.cos(longitude))
    colour = colour * (0.8 + 0.3 * light)[..., None]
    colour[V > 0.94] = skin
    return np.clip(colour + 0.5, 0, 255).astype(np.uint8)
