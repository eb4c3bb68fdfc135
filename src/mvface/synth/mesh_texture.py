"""Texture of the mesh head: what the photo saw, and the mirror fill of what it did not.

Step 6 of :mod:`mvface.synth.mesh_head`.
Per-vertex weights of the photo's own texture (seen well: facing the source camera, not hidden
in its depth, inside the face's outline), of the face's mirror side (:func:`face_mirror_partners`,
:func:`fill_weights`) and of the head's low-frequency colour; and, for ``fill="none"``, the
rim-reflected blurred photo (:func:`rim_texture_directions`). Pixels follow
:mod:`mvface.synth.head`; directions and points are EG3D world units.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
from scipy.spatial import cKDTree

from mvface.synth.backdrop import push_pull_fill
from mvface.synth.landmarks import landmark_visibility

__all__ = [
    "FILL_MODES",
    "FillMode",
    "face_mirror_partners",
    "face_outline_mask",
    "fill_weights",
    "head_colour_texture",
    "project_vertices",
    "rim_texture_directions",
    "smoothstep",
    "source_unoccluded",
    "texture_atlas",
    "vertex_facing",
]


#: Vertices whose normal makes a cosine with the direction to the source camera below
#: ``GRAZING_START_COSINE`` (the photo sees them at a grazing angle, its texture is stretched
#: there) cross-fade to the proxy's blurred, rim-reflected texture, fully at
#: ``GRAZING_FULL_COSINE``.
GRAZING_START_COSINE = 0.25
GRAZING_FULL_COSINE = 0.0
#: ``fill="mirror"``: a vertex's own photo texture counts as observed fully where the cosine
#: between its normal and the direction to the source camera is at least
#: ``OBSERVED_FULL_COSINE`` (75°: the photo stretches it at most 4x) and not at all at
#: ``OBSERVED_NONE_COSINE`` (90°), smoothly in between, and only where the source view sees it
#: (not behind the nose, the near cheek or the head in the source depth). Measured with
#: ``benchmarks/bench_synth.py`` (16 AFLW2000-3D heads): filling more (full at 0.4 or 0.7)
#: makes the detector's error on turned views worse, not better.
OBSERVED_FULL_COSINE = 0.25
OBSERVED_NONE_COSINE = 0.0
#: A vertex is occluded in the source view when it lies this far (world units, about 4 mm)
#: behind every rendered surface within a pixel of its projection.
SOURCE_OCCLUSION_TOLERANCE = 0.01
#: ``fill="mirror"``: where neither side was seen, the colour is the photo's head pixels (those
#: of the source view's head mask, eroded by this fraction of the crop) spread by a push-pull
#: fill and blurred by ``UNSEEN_BLUR`` x the crop side: the low-frequency skin/hair colour of the
#: nearest seen texels, never the backdrop's.
UNSEEN_ERODE = 0.02
UNSEEN_BLUR = 0.02
FillMode = Literal["mirror", "none"]
FILL_MODES: tuple[str, ...] = ("mirror", "none")


def rim_texture_directions(
    q: np.ndarray, towards: np.ndarray, rim_deg: float = 88.0, min_deg: float = 60.0
) -> np.ndarray:
    """Where the unseen back of the head takes its colours from, on the unit sphere.

    A direction at angle ``β`` from ``towards`` (the source camera seen from the head centre)
    beyond ``rim_deg`` is turned towards it, to angle ``max(2·rim − β, min)``: a reflection
    inwards at the rim, continuous there, so the back of the head repeats the ring of the photo
    between ``min_deg`` and ``rim_deg`` (hair, ears, neck).

    Args:
        q: ``(N, 3)`` unit directions.
        towards: ``(3,)`` unit direction of the source camera.
        rim_deg: where the reflection starts (degrees from ``towards``).
        min_deg: the innermost ring used (degrees).

    Returns:
        ``(N, 3)`` unit directions (unchanged where ``β ≤ rim_deg``).
    """
    cos_beta = np.clip(q @ towards, -1.0, 1.0)
    beta = np.arccos(cos_beta)
    rim, low = math.radians(rim_deg), math.radians(min_deg)
    target = np.where(beta > rim, np.maximum(2 * rim - beta, low), beta)
    side = q - cos_beta[:, None] * towards
    norm = np.linalg.norm(side, axis=1, keepdims=True)
    fallback = np.cross(towards, [0.0, 1.0, 0.0])
    if np.linalg.norm(fallback) < 1e-6:
        fallback = np.cross(towards, [1.0, 0.0, 0.0])
    fallback = fallback / np.linalg.norm(fallback)
    side = np.where(norm > 1e-9, side / np.maximum(norm, 1e-12), fallback)
    return np.cos(target)[:, None] * towards + np.sin(target)[:, None] * side


def project_vertices(points: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(N, 3)`` world -> ``(N, 3)``: continuous pixels and depth."""
    cam = points @ R.T + t
    z = cam[:, 2:3]
    pix = cam @ K.T
    return np.hstack([pix[:, :2] / np.maximum(z, 1e-9), z])


def vertex_facing(points: np.ndarray, faces: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """Cosine between each vertex normal (area-weighted, out of the face for
    :func:`~mvface.synth.face_mesh.triangulate_face`'s winding) and the direction to ``eye``; 0
    for unused vertices."""
    p = points[faces]
    face_normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normal = np.zeros_like(points)
    for k in range(3):
        np.add.at(normal, faces[:, k], face_normal)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    view = eye - points
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    return np.einsum("ij,ij->i", normal, view)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 at ``edge0``, 1 at ``edge1``, smooth (cubic) in between; either order of edges."""
    s = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return s * s * (3 - 2 * s)


def face_mirror_partners(local: np.ndarray) -> np.ndarray:
    """Left/right partner of every face mesh vertex (MediaPipe's mesh is symmetric).

    The partner of vertex ``i`` is the vertex nearest to ``i`` mirrored across the face's
    sagittal plane (``x = 0`` of the face frame, through the mesh centroid); vertices on the
    mid-line are their own partners.

    Args:
        local: ``(N, 3)`` vertices in the face's own frame (x along the eye line, origin the
            mesh centroid).

    Returns:
        ``(N,)`` int64 partner indices.
    """
    mirrored = local * np.array([-1.0, 1.0, 1.0])
    return np.asarray(cKDTree(local).query(mirrored)[1], np.int64)


def source_unoccluded(
    points: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray, depth: np.ndarray
) -> np.ndarray:
    """``(N,)`` bool: the source view's depth ``(S, S)`` does not hide the world ``points``."""
    p = project_vertices(points, K, R, t)
    visible = landmark_visibility(
        p[None, :, :2] - 0.5, p[None, :, 2], depth[None], SOURCE_OCCLUSION_TOLERANCE
    )[0]
    # points just outside the image (clipped texture) count as unseen
    return np.asarray(visible)


def face_outline_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """``(S, S)`` bool: the face in the photo by its 68 landmarks, shrunk by 1.5% of the side.

    The polygon of the jaw line (points 0–16) closed over the brows raised by half the
    brow-to-chin distance (the forehead); not convex, so the backdrop beside the nose and mouth
    of a turned face stays outside; shrunk, so that the annotation's slack along the outline
    does too. MediaPipe's mesh often reaches past a turned face's outline, where the photo
    shows the backdrop: those vertices are not observed.
    """
    p = np.asarray(landmarks, np.float64) + 0.5
    brows = p[17:27]
    forehead = brows + 0.5 * (brows.mean(0) - p[8])
    polygon = np.vstack([p[:17], forehead[::-1]]).astype(np.int32)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [polygon], 1)
    shrink = max(3, round(0.015 * size)) | 1
    return cv2.erode(mask, np.ones((shrink, shrink), np.uint8)).astype(bool)


def fill_weights(
    facing: np.ndarray, unoccluded: np.ndarray, partner: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vertex texture weights of the own photo, the mirror side's and the colour model.

    ``observed = smoothstep(OBSERVED_NONE_COSINE, OBSERVED_FULL_COSINE, facing) · unoccluded``;
    the own texture takes ``observed``, the partner's (mirror) texture ``(1 − observed) ·
    observed[partner]`` and the colour model the rest. Weights are per vertex and interpolated
    across triangles, so the seam between observed and filled texture is a smooth blend.

    Args:
        facing: ``(N,)`` cosine between each vertex normal and the direction to the source
            camera.
        unoccluded: ``(N,)`` bool, the source view sees the vertex.
        partner: ``(N,)`` index of each vertex's mirror partner.

    Returns:
        ``(own, mirror, model)``, each ``(N,)`` float64, summing to 1.
    """
    observed = smoothstep(OBSERVED_NONE_COSINE, OBSERVED_FULL_COSINE, facing)
    observed = observed * np.asarray(unoccluded, np.float64)
    mirror = (1.0 - observed) * observed[partner]
    return observed, mirror, 1.0 - observed - mirror


def head_colour_texture(image: np.ndarray, head_mask: np.ndarray) -> np.ndarray:
    """The photo's head pixels spread over the whole image and blurred (the colour model).

    Push-pull fill (:func:`~mvface.synth.backdrop.push_pull_fill`) from the pixels inside the
    eroded head mask, then a Gaussian blur of :data:`UNSEEN_BLUR` x the side: every texel is a
    low-frequency mix of the nearest head colours (hair above, skin on the face, neck below), no
    backdrop.
    """
    size = image.shape[0]
    grow = max(3, round(UNSEEN_ERODE * size)) | 1
    known = cv2.erode(head_mask.astype(np.uint8), np.ones((grow, grow), np.uint8))
    if not known.any():
        known = head_mask.astype(np.uint8)
    work = 128
    small = cv2.resize(image, (work, work), interpolation=cv2.INTER_AREA).astype(np.float32)
    weight = cv2.resize(known.astype(np.float32), (work, work), interpolation=cv2.INTER_AREA)
    filled = push_pull_fill(small, (weight > 0.99).astype(np.float32))
    filled = cv2.GaussianBlur(filled, (0, 0), UNSEEN_BLUR * work)
    filled = cv2.resize(filled, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(filled + 0.5, 0, 255).astype(np.uint8)


def texture_atlas(image: np.ndarray, blur: float) -> np.ndarray:
    """``(S, 2S, 3)``: the photo, then a blurred copy (``blur`` x S sigma) for the unseen back."""
    sigma = max(blur * image.shape[0], 0.1)
    return np.ascontiguousarray(np.hstack([image, cv2.GaussianBlur(image, (0, 0), sigma)]))
