"""The iBUG 300-W 68-point landmark scheme, as data.

Indices are 0-based. "Left" and "right" are the *subject's* left and right, as in iBUG's own
naming: point 36 is the outer corner of the subject's right eye, which appears on the left of a
frontal image.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

NUM_LANDMARKS = 68

#: Contiguous groups of the scheme (name -> indices).
GROUPS: MappingProxyType[str, tuple[int, ...]] = MappingProxyType(
    {
        "jaw": tuple(range(0, 17)),
        "right_brow": tuple(range(17, 22)),
        "left_brow": tuple(range(22, 27)),
        "nose_bridge": tuple(range(27, 31)),
        "nose_base": tuple(range(31, 36)),
        "right_eye": tuple(range(36, 42)),
        "left_eye": tuple(range(42, 48)),
        "outer_lips": tuple(range(48, 60)),
        "inner_lips": tuple(range(60, 68)),
    }
)

#: Coarser groups used in reports (jaw, brows, nose, eyes, mouth).
COARSE_GROUPS: MappingProxyType[str, tuple[int, ...]] = MappingProxyType(
    {
        "jaw": GROUPS["jaw"],
        "brows": GROUPS["right_brow"] + GROUPS["left_brow"],
        "nose": GROUPS["nose_bridge"] + GROUPS["nose_base"],
        "eyes": GROUPS["right_eye"] + GROUPS["left_eye"],
        "mouth": GROUPS["outer_lips"] + GROUPS["inner_lips"],
    }
)

#: Outer eye corners (subject's right, subject's left): the 300-W inter-ocular normalizer.
OUTER_EYE_CORNERS: tuple[int, int] = (36, 45)


def _names() -> tuple[str, ...]:
    names: list[str] = [f"jaw_{i:02d}" for i in range(17)]
    names += [f"right_brow_{i}" for i in range(5)] + [f"left_brow_{i}" for i in range(5)]
    names += [f"nose_bridge_{i}" for i in range(4)] + [f"nose_base_{i}" for i in range(5)]
    names += [
        "right_eye_outer", "right_eye_upper_outer", "right_eye_upper_inner",
        "right_eye_inner", "right_eye_lower_inner", "right_eye_lower_outer",
        "left_eye_inner", "left_eye_upper_inner", "left_eye_upper_outer",
        "left_eye_outer", "left_eye_lower_outer", "left_eye_lower_inner",
    ]  # fmt: skip
    names += [f"outer_lip_{i:02d}" for i in range(12)] + [f"inner_lip_{i}" for i in range(8)]
    return tuple(names)


#: One name per point, e.g. ``LANDMARK_NAMES[36] == "right_eye_outer"``.
LANDMARK_NAMES: tuple[str, ...] = _names()


def _flip_permutation() -> tuple[int, ...]:
    """Index map for a horizontal image flip: ``flipped[i] = original[perm[i]]``."""
    pairs: list[tuple[int, int]] = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56)]  # outer lips
    pairs += [(60, 64), (61, 63), (67, 65)]  # inner lips
    perm = list(range(NUM_LANDMARKS))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


#: Left/right permutation for horizontally flipped images (an involution).
FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()


def mirror_points(points: np.ndarray, width: float | np.ndarray) -> np.ndarray:
    """68-point annotations of faces mirrored left-right, relabelled.

    Args:
        points: ``(..., 68, D)`` 0-based pixels, ``x`` first (other coordinates unchanged).
        width: image width ``W`` in pixels, a number or one per face (``(...)``).

    Returns:
        ``(..., 68, D)`` float64: ``x → W - 1 - x``, and point ``k`` of the result is point
        ``FLIP_PERMUTATION[k]`` of the input (the mirrored face's right eye is the original's
        left one). Its own inverse.
    """
    out = np.array(points, np.float64)[..., list(FLIP_PERMUTATION), :]
    out[..., 0] = np.asarray(width, np.float64)[..., None] - 1 - out[..., 0]
    return out
