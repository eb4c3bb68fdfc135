"""Steps 2–3 of the synthesis job: one source face to one identity of rendered, labelled views.

:func:`align_crop` makes the FFHQ/EG3D-style aligned crop; :func:`synthesize_identity` builds the
head on it, renders the rig's views and transfers the landmarks to every view
(:func:`source_landmarks3d`, :func:`observed_landmarks`). Pixels are 0-based, integer-centred.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from mvface._version import __version__
from mvface.data.image import load_image
from mvface.data.record import FaceSample
from mvface.data.scheme import GROUPS
from mvface.errors import BadInputError
from mvface.synth.backends import Head, HeadBackend, create_backend, iter_renders
from mvface.synth.config import SynthConfig, rig_cameras
from mvface.synth.landmarks import (
    deepen_jaw,
    depth_at_landmarks,
    lift_landmarks,
    transfer_landmarks,
)
from mvface.synth.sources import detect_landmarks, identity_name, source_name
from mvface.synth.writer import IdentityRecord

__all__ = [
    "align_crop",
    "make_backend",
    "observed_landmarks",
    "source_landmarks3d",
    "synthesize_identity",
]


#: A view's landmark counts as observed when the rendered filled weight at its pixel is below
#: this (its colour comes mostly from the photo there).
OBSERVED_MAX_FILLED = 0.5

#: Smallest side (in source pixels) of the aligned crop's square; smaller faces are skipped.
MIN_FACE_SIZE = 48.0
#: How far (in source pixels) a landmark may lie outside the image before the face is skipped.
OUTSIDE_TOLERANCE = 2.0
#: Landmarks up to this fraction of the crop outside it are clipped into it; further: skipped.
CROP_MARGIN = 0.01


# -- step 2: crop ----------------------------------------------------------------------------


def align_crop(
    image: np.ndarray, landmarks: np.ndarray, size: int = 512, source: str = "image"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An FFHQ/EG3D-style aligned square crop of a face from its 68 landmarks.

    As FFHQ's alignment script: the eye-to-eye and eye-to-mouth vectors define an oriented
    square centred a little below the eyes, ``max(2·|eye-to-eye|, 1.8·|eye-to-mouth|)`` wide
    and turned so the eyes are level; the image is resampled into it (area-averaged first when
    shrinking by more than 2x), with reflected borders. Landmarks at most
    :data:`CROP_MARGIN` x ``size`` outside the crop (jaw lines of turned faces) are clipped
    into it.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2+)`` 0-based pixels of ``image``.
        size: side of the crop in pixels.
        source: name used in error messages.

    Returns:
        ``(crop, crop_landmarks, affine)``: the ``(size, size, 3)`` uint8 crop, the ``(68, 2)``
        landmarks in its 0-based pixels, and the ``(2, 3)`` affine taking 0-based image pixels
        to 0-based crop pixels.

    Raises:
        BadInputError: landmarks outside the image, not finite, or a face too small.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(source, f"expected an (H, W, 3) uint8 image, got {image.shape}")
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 2 or lm.shape[0] != 68 or lm.shape[1] < 2:
        raise BadInputError(source, f"expected (68, 2) landmarks, got {lm.shape}")
    lm = lm[:, :2]
    if not np.all(np.isfinite(lm)):
        raise BadInputError(source, "landmarks contain NaN or infinite values")
    h, w = image.shape[:2]
    t = OUTSIDE_TOLERANCE
    outside = (lm[:, 0] < -0.5 - t) | (lm[:, 0] > w - 0.5 + t)
    outside |= (lm[:, 1] < -0.5 - t) | (lm[:, 1] > h - 0.5 + t)
    if outside.any():
        raise BadInputError(source, f"{int(outside.sum())} landmarks lie outside the {w}x{h} image")
    p = lm + 0.5  # continuous pixels (0 at the image's edge), as FFHQ's script uses
    eye_l, eye_r = p[36:42].mean(0), p[42:48].mean(0)
    eye_avg = (eye_l + eye_r) / 2
    e2e = eye_r - eye_l
    e2m = (p[48] + p[54]) / 2 - eye_avg
    x = e2e - np.flipud(e2m) * [-1.0, 1.0]
    norm_x = float(np.hypot(*x))
    half = max(float(np.hypot(*e2e)) * 2.0, float(np.hypot(*e2m)) * 1.8)
    if norm_x < 1e-6 or 2 * half < MIN_FACE_SIZE:
        raise BadInputError(
            source, f"face too small ({2 * half:.0f} px crop, need >= {MIN_FACE_SIZE:.0f})"
        )
    x *= half / norm_x
    y = np.flipud(x) * [-1.0, 1.0]
    c = eye_avg + e2m * 0.1
    quad = np.array([c - x - y, c - x + y, c + x + y])
    dst = np.array([[0.0, 0.0], [0.0, size], [size, size]])
    A = np.linalg.solve(np.c_[quad, np.ones(3)], dst).T  # continuous -> continuous, (2, 3)

    # shrink first when the crop is much smaller than the face (as FFHQ's script does)
    shrink = math.floor(2 * half / size * 0.5)
    src = image
    S = np.eye(3)
    if shrink > 1:
        sw, sh = max(1, round(w / shrink)), max(1, round(h / shrink))
        src = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        S = np.diag([sw / w, sh / h, 1.0])  # continuous image -> continuous shrunk image
    A_src = A @ np.linalg.inv(S)[:, :]  # continuous shrunk -> continuous crop, (2, 3)
    M = A_src.copy()
    M[:, 2] += A_src[:, :2] @ [0.5, 0.5] - 0.5  # 0-based pixels for OpenCV
    crop = cv2.warpAffine(
        src, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    affine = A.copy()
    affine[:, 2] += A[:, :2] @ [0.5, 0.5] - 0.5  # 0-based image -> 0-based crop
    crop_lm = lm @ affine[:, :2].T + affine[:, 2]
    # annotated jaw lines of turned faces can reach just past the crop: pull those in, skip more
    margin = CROP_MARGIN * size
    if ((crop_lm < -0.5 - margin) | (crop_lm > size - 0.5 + margin)).any():
        raise BadInputError(source, "landmarks fall outside the aligned crop (face cut off)")
    crop_lm = np.clip(crop_lm, -0.5, size - 0.5)
    return np.ascontiguousarray(crop), crop_lm, affine


# -- step 3: one identity --------------------------------------------------------------------


def clamp_behind(
    points: torch.Tensor, surface: np.ndarray, camera: torch.Tensor, limit: float
) -> torch.Tensor:
    """Points lifted more than ``limit`` (world units, camera depth) behind their surface
    landmark are moved along their ray to the surface landmark's depth (same pixel).

    A landmark annotated a few pixels off the face mesh (the chin's underside, the jaw beside
    the ear) lifts onto whatever lies behind it there; for a head with a neck and a skull that is
    the neck or the side of the head, far behind the jaw the landmark marks.

    Args:
        points: ``(N, 3)`` lifted world points.
        surface: ``(N, 3)`` the head's surface landmarks (world).
        camera: ``(25,)`` EG3D label of the view they were lifted in.
        limit: how far behind the surface point a lifted point may lie.

    Returns:
        ``(N, 3)`` float64 world points.
    """
    c2w = np.asarray(camera, np.float64).reshape(-1)[:16].reshape(4, 4)
    center, axis = c2w[:3, 3], c2w[:3, 2]
    X = points.double().numpy()
    z = (X - center) @ axis
    z_surface = (np.asarray(surface, np.float64) - center) @ axis
    far = z > z_surface + limit
    scale = np.where(far, (z_surface + limit) / np.maximum(z, 1e-9), 1.0)
    return torch.from_numpy(center + (X - center) * scale[:, None])


def source_landmarks3d(
    head: Head,
    landmarks: np.ndarray,
    depth: np.ndarray,
    camera: torch.Tensor,
    jaw_from: str = "depth",
    jaw_depth: float = 0.0,
) -> tuple[torch.Tensor, list[int]]:
    """Step 6a: the source crop's 68 landmarks as world points.

    Args:
        head: the identity's head.
        landmarks: ``(68, 2)`` crop landmarks, 0-based pixels.
        depth: ``(S, S)`` depth of the head rendered in the source camera.
        camera: ``(25,)`` source camera label.
        jaw_from: ``depth`` or ``surface`` (see :class:`~mvface.synth.config.SynthConfig`).
        jaw_depth: see :class:`~mvface.synth.config.SynthConfig`.

    Returns:
        ``(68, 3)`` world points and the indices taken from the head's surface landmarks.

    Raises:
        BadInputError: a point off the head and no surface landmarks to fall back on, or
            ``jaw_from="surface"`` with a backend that has none.
    """
    surface = head.surface_landmarks()
    if jaw_from == "surface" and surface is None:
        raise BadInputError(head.backend, "backend has no surface landmarks (use jaw_from=depth)")
    missing = ~np.isfinite(depth_at_landmarks(landmarks, depth))
    lm3d = lift_landmarks(landmarks, depth, camera, fallback=surface)
    limit = getattr(head, "max_lift_behind", None)
    if limit is not None and surface is not None:
        lm3d = clamp_behind(lm3d, surface, camera, float(limit))
    from_surface = set(np.flatnonzero(missing).tolist())
    if jaw_from == "surface" and surface is not None:
        jaw = list(GROUPS["jaw"])
        lm3d[jaw] = torch.from_numpy(surface[jaw]).to(lm3d.dtype)
        from_surface |= set(jaw)
    if jaw_depth:
        lm3d = deepen_jaw(lm3d, jaw_depth)
    return lm3d, sorted(from_surface)


def observed_landmarks(
    filled: np.ndarray, mask: np.ndarray, points: np.ndarray, visible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which landmarks show texture observed in the source photo, and how much of each view's
    head is filled in.

    Args:
        filled: ``(V, S, S)`` float32 filled weight of each pixel (:class:`RenderOutput`).
        mask: ``(V, S, S)`` bool head pixels.
        points: ``(V, 68, 2)`` landmark pixels (0-based).
        visible: ``(V, 68)`` bool depth-tested visibility.

    Returns:
        ``observed`` ``(V, 68)`` bool: visible and the filled weight at the landmark's nearest
        pixel below :data:`OBSERVED_MAX_FILLED` (a hidden landmark shows no texture of its own:
        False), and ``filled_fraction`` ``(V,)``: the fraction of head pixels whose filled
        weight is at least that (0 for a view without head pixels).
    """
    V, S = filled.shape[0], filled.shape[1]
    xi = np.clip(np.rint(points[..., 0]).astype(int), 0, S - 1)
    yi = np.clip(np.rint(points[..., 1]).astype(int), 0, S - 1)
    at_point = filled[np.arange(V)[:, None], yi, xi]
    observed = np.asarray(visible, bool) & (at_point < OBSERVED_MAX_FILLED)
    head = mask.reshape(V, -1).sum(1)
    heavy = ((filled >= OBSERVED_MAX_FILLED) & mask).reshape(V, -1).sum(1)
    return observed, heavy / np.maximum(head, 1)


def make_backend(cfg: SynthConfig) -> HeadBackend:
    """The job's head backend (the mesh and whole-head backends get ``cfg.fill``)."""
    if cfg.backend in ("mesh", "head"):
        return create_backend(cfg.backend, fill=cfg.fill)
    return create_backend(cfg.backend)


def synthesize_identity(
    sample: FaceSample,
    cfg: SynthConfig,
    backend: HeadBackend,
    cameras: np.ndarray | None = None,
    name: str | None = None,
) -> IdentityRecord:
    """Crop one source face, build its head, render the rig and transfer its landmarks.

    Args:
        sample: a source face with ``(68, 2|3)`` landmarks.
        cfg: the job settings.
        backend: the head backend.
        cameras: ``(V, 25)`` labels (default: :func:`~mvface.synth.config.rig_cameras` of
            ``cfg``).
        name: the identity's folder name (default:
            :func:`~mvface.synth.sources.identity_name` of ``sample``).

    Returns:
        The identity, ready for :meth:`SyntheticWriter.write`.

    Raises:
        BadInputError: an unusable source (unreadable image, landmarks outside, no face).
    """
    source = source_name(sample)
    image = sample.image if isinstance(sample.image, np.ndarray) else load_image(sample.image)
    if sample.landmarks is not None:
        landmarks, marked_by = sample.landmarks, "annotation"
    elif cfg.landmark_model is not None:
        landmarks = detect_landmarks(image, cfg.landmark_model, source)
        marked_by = f"detector: {cfg.landmark_model}"
    else:
        raise BadInputError(source, "no landmarks")
    crop, crop_lm, affine = align_crop(image, landmarks, cfg.crop_size, source)
    labels = rig_cameras(cfg) if cameras is None else np.asarray(cameras, np.float64)
    head = backend.build(crop, crop_lm)
    try:
        src_cam = head.source_camera.detach().cpu().to(torch.float64)
        src_view = head.render(src_cam[None], cfg.crop_size)
        lm3d, from_surface = source_landmarks3d(
            head, crop_lm, src_view.depth[0], src_cam, cfg.jaw_from, cfg.jaw_depth
        )
        v = len(labels)
        images = np.empty((v, cfg.size, cfg.size, 3), np.uint8)
        points = np.empty((v, 68, 2), np.float64)
        visible = np.empty((v, 68), bool)
        hidden = np.empty(v, bool)
        observed: np.ndarray | None = np.empty((v, 68), bool)
        filled_fraction = np.zeros(v)
        for views, out in iter_renders(head, labels, cfg.size, cfg.batch):
            marks = transfer_landmarks(lm3d, labels[views], cfg.size, out.depth)
            images[views] = out.rgb
            points[views], visible[views], hidden[views] = marks.points, marks.visible, marks.hidden
            if out.filled is None or observed is None:
                observed = None  # the backend does not say what it filled in
                continue
            observed[views], filled_fraction[views] = observed_landmarks(
                out.filled, out.mask, marks.points, marks.visible
            )
        landmarks3d = marks.landmarks3d
        backend_name = head.backend
    finally:
        head.release()
    provenance = {
        "source_file": source,
        "source_name": sample.name,
        "source_landmarks": np.asarray(landmarks, np.float64)[:, :2].tolist(),
        "source_landmarks_from": marked_by,
        "crop_affine": affine.tolist(),
        "crop_size": cfg.crop_size,
        "backend": backend_name,
        "rig": cfg.rig,
        "seed": cfg.seed,
        "package_version": __version__,
        "hidden_views": np.flatnonzero(hidden).tolist(),
        "jaw_from": cfg.jaw_from,
        "jaw_depth": cfg.jaw_depth,
        "landmarks_from_surface": from_surface,
        "fill": cfg.fill,
    }
    if observed is not None:
        provenance["filled_fraction"] = np.round(filled_fraction, 4).tolist()
    return IdentityRecord(
        name=identity_name(sample) if name is None else name,
        images=images,
        cameras=labels.astype(np.float32),
        landmarks=points,
        landmarks3d=landmarks3d,
        visibility=visible,
        observed=observed,
        source_image=crop,
        source_camera=src_cam.numpy(),
        provenance=provenance,
    )
