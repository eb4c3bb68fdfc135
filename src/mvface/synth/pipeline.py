"""The synthetic-data job: select faces, crop them, build heads, render the rig, write identities.

Each step of the paper's data pipeline is a function of its own; :func:`run_synth` wires them
(``mvface synth`` only calls it):

1. :func:`select_sources` — the faces of any registered reader (``--format``), with their
   ground-truth landmarks.
2. :func:`align_crop` — an FFHQ/EG3D-style aligned square crop from the eyes and mouth, the
   landmarks moved into it.
3. :func:`synthesize_identity` — the head built on the crop (its camera estimated by the
   backend), the rig's views rendered, the landmarks lifted and transferred to every view.
4. :func:`run_synth` — one job on one output folder: the lock, resuming finished identities,
   atomic writes, bad sources skipped with a one-line reason, optional worker processes, the
   manifest rebuilt at the end.

Example:
    >>> cfg = SynthConfig(source="samples", format="pts", out="out", views=8)  # doctest: +SKIP
    >>> summary = run_synth(cfg)  # doctest: +SKIP
    >>> summary.done, summary.skipped, summary.failed  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch

from mvface._version import __version__
from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.readers.synthetic import MANIFEST_FILE, META_FILE, list_identities
from mvface.data.record import FaceSample
from mvface.data.scheme import GROUPS
from mvface.errors import BadInputError
from mvface.synth.backends import Head, HeadBackend, create_backend, iter_renders, list_backends
from mvface.synth.landmarks import (
    deepen_jaw,
    depth_at_landmarks,
    lift_landmarks,
    transfer_landmarks,
)
from mvface.synth.rig import grid_span_angles, paper_rig, random_rig, rig_labels, spherical_rig
from mvface.synth.writer import (
    IdentityRecord,
    SyntheticWriter,
    hashed_identity_name,
    output_lock,
    safe_identity_name,
)

RigName = Literal["paper", "grid", "random"]
RIGS: tuple[str, ...] = ("paper", "grid", "random")
FILLS: tuple[str, ...] = ("mirror", "none")
#: A view's landmark counts as observed when the rendered filled weight at its pixel is below
#: this (its colour comes mostly from the photo there).
OBSERVED_MAX_FILLED = 0.5

#: Smallest side (in source pixels) of the aligned crop's square; smaller faces are skipped.
MIN_FACE_SIZE = 48.0
#: How far (in source pixels) a landmark may lie outside the image before the face is skipped.
OUTSIDE_TOLERANCE = 2.0
#: Landmarks up to this fraction of the crop outside it are clipped into it; further: skipped.
CROP_MARGIN = 0.01


@dataclass
class SynthConfig:
    """Settings of one synthesis job.

    Attributes:
        source: dataset root (or file) read by the reader ``format``.
        out: output dataset folder.
        format: registered reader name (``pts``, ``300w-lp``, ``aflw2000-3d``, ...).
        views: views rendered per identity.
        size: side of the rendered views in pixels.
        crop_size: side of the aligned source crop the head is built from.
        rig: ``paper`` (the paper's camera path), ``grid`` (yaw x pitch grid) or ``random``.
        max_yaw_deg: the ``grid`` and ``random`` rigs span yaw in ``[-max_yaw_deg,
            max_yaw_deg]`` degrees (the paper rig is fixed at about ±45°; profile views need
            more).
        max_pitch_deg: likewise for pitch (``grid``: distinct cameras from ``-max_pitch_deg``
            to ``+max_pitch_deg``, see :func:`~mvface.synth.rig.grid_span_angles`).
        backend: registered head backend.
        image_format: ``jpg`` or ``png``.
        quality: JPEG quality.
        limit: at most this many source faces (``None``: all).
        seed: seed of the random rig (and recorded as provenance).
        workers: worker processes (1: in this process), or Ray actors.
        batch: views rendered per call (bounds memory).
        executor: ``local`` (this process or a process pool) or ``ray`` (Ray actors, see
            :mod:`mvface.synth.ray_executor`).
        ray_address: address of a running Ray cluster (``"auto"`` joins it); ``None`` with the
            ``ray`` executor starts a local Ray for the job.
        landmark_model: registered landmark model (with the automatic face detector) that marks
            sources without annotated landmarks, e.g. a plain image folder; ``None`` skips them.
        jaw_from: where the jaw points' 3D positions come from: ``depth`` lifts the annotated
            points with the source view's depth (the paper's way; 300-W's jaw is the face's
            2D outline); ``surface`` takes them from the head's own geometry
            (:meth:`~mvface.synth.backends.Head.surface_landmarks`: the jaw in 3D). Either
            way, a point with no depth nearby (just off the head) takes the surface point
            when the backend has one, instead of skipping the source.
        jaw_depth: moves the 3D jaw points back into the head by this many eye-to-mouth
            distances (tapering to 0 at the chin; :func:`~mvface.synth.landmarks.deepen_jaw`):
            0.2 puts the face mesh's jaw where AFLW2000-3D's 3DMM convention has it.
        fill: texture of the surface the photo saw obliquely or not at all (the mesh
            backend's ``fill``): ``mirror`` takes the face's other side where that was seen,
            else the head's low-frequency colour; ``none`` is the backend before the fill (a
            blurred, rim-reflected copy of the photo), kept measurable. Sets written before the
            option existed count as ``none``.
    """

    source: str | Path
    out: str | Path
    format: str = "pts"
    views: int = 512
    size: int = 256
    crop_size: int = 512
    rig: RigName = "paper"
    max_yaw_deg: float = 45.0
    max_pitch_deg: float = 30.0
    backend: str = "mesh"
    image_format: str = "jpg"
    quality: int = 95
    limit: int | None = None
    seed: int = 0
    workers: int = 1
    batch: int = 64
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    landmark_model: str | None = "mediapipe-68"
    jaw_from: Literal["depth", "surface"] = "depth"
    jaw_depth: float = 0.0
    fill: Literal["mirror", "none"] = "mirror"

    def __post_init__(self) -> None:
        self.source = Path(self.source)
        self.out = Path(self.out)
        checks = [
            (self.views >= 1, f"views must be >= 1, got {self.views}"),
            (self.size >= 16, f"size must be >= 16, got {self.size}"),
            (self.crop_size >= 64, f"crop_size must be >= 64, got {self.crop_size}"),
            (self.rig in RIGS, f"rig must be one of {RIGS}, got {self.rig!r}"),
            (0 <= self.max_yaw_deg <= 90, f"max_yaw_deg must be in 0..90, got {self.max_yaw_deg}"),
            (
                0 <= self.max_pitch_deg <= 60,
                f"max_pitch_deg must be in 0..60, got {self.max_pitch_deg}",
            ),
            (
                self.image_format in ("jpg", "png"),
                f"image_format must be jpg or png, got {self.image_format!r}",
            ),
            (1 <= self.quality <= 100, f"quality must be in 1..100, got {self.quality}"),
            (self.limit is None or self.limit >= 1, f"limit must be >= 1, got {self.limit}"),
            (self.workers >= 1, f"workers must be >= 1, got {self.workers}"),
            (self.batch >= 1, f"batch must be >= 1, got {self.batch}"),
            (
                self.executor in ("local", "ray"),
                f"executor must be local or ray, not {self.executor!r}",
            ),
            (
                self.jaw_from in ("depth", "surface"),
                f"jaw_from must be depth or surface, not {self.jaw_from!r}",
            ),
            (0 <= self.jaw_depth <= 1, f"jaw_depth must be in 0..1, got {self.jaw_depth}"),
            (self.fill in FILLS, f"fill must be mirror or none, not {self.fill!r}"),
            (
                self.rig != "paper" or self.views >= 3,
                f"the paper rig needs views >= 3, got {self.views}",
            ),
            (
                self.rig != "grid" or self.views == 1 or self.max_yaw_deg or self.max_pitch_deg,
                "the grid rig needs max_yaw_deg or max_pitch_deg above 0 for more than 1 view",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def provenance(self) -> dict[str, Any]:
        """The job settings as JSON-able values (for the manifest)."""
        info = asdict(self)
        info["source"], info["out"] = str(self.source), str(self.out)
        return info


#: The job settings that change what an identity is, with their ``mvface synth`` option: one
#: output set never mixes identities made with two values of any of them.
PRODUCT_SETTINGS: dict[str, str] = {
    "views": "--views",
    "size": "--size",
    "crop_size": "--crop-size",
    "rig": "--rig",
    "max_yaw_deg": "--max-yaw",
    "max_pitch_deg": "--max-pitch",
    "seed": "--seed",
    "backend": "--backend",
    "image_format": "--image-format",
    "quality": "--quality",
    "landmark_model": "--landmark-model",
    "jaw_from": "--jaw-from",
    "jaw_depth": "--jaw-depth",
    "fill": "--fill",
}
#: Product settings added after sets were first written, with the value older sets were made
#: with (instead of today's default).
LEGACY_SETTINGS: dict[str, Any] = {"fill": "none"}


def product_settings(job: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`PRODUCT_SETTINGS` of a job's settings (a manifest's ``job``), those without
    effect left out: the paper rig ignores the angles, only the random rig uses the seed, PNG
    ignores the quality. A key missing (a manifest of an older mvface) takes its default."""
    defaults = {f.name: f.default for f in fields(SynthConfig) if f.default is not MISSING}
    defaults.update(LEGACY_SETTINGS)
    settings = {key: job.get(key, defaults.get(key)) for key in PRODUCT_SETTINGS}
    if settings["rig"] == "paper":
        del settings["max_yaw_deg"], settings["max_pitch_deg"]
    if settings["rig"] != "random":
        del settings["seed"]
    if settings["image_format"] == "png":
        del settings["quality"]
    return settings


def _identity_settings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The product settings an identity's ``meta.json`` records (a subset)."""
    found: dict[str, Any] = {}
    for key in ("views", "crop_size", "rig", "backend", "image_format", "jaw_from", "jaw_depth"):
        if key in meta:
            found[key] = meta[key]
    found["fill"] = meta.get("fill", LEGACY_SETTINGS["fill"])
    if isinstance(meta.get("image_size"), list) and meta["image_size"]:
        found["size"] = meta["image_size"][0]
    if meta.get("rig") == "random" and "seed" in meta:
        found["seed"] = meta["seed"]
    return found


def check_same_settings(cfg: SynthConfig) -> None:
    """Refuse a job whose output set holds identities made with other product settings.

    The set's settings are its manifest's ``job`` (written when a job starts); a set without one
    (a killed job of an older mvface) is judged by what its identities' ``meta.json`` record.
    With the same settings, the set's first identity must also have been rendered from this
    job's cameras (a rig that changed between mvface versions would mix two camera sets). A set
    without finished identities takes any settings.

    Raises:
        BadInputError: one line naming each differing option, its value in the set and in
            this job (or saying the cameras differ).
    """
    out = Path(cfg.out)
    identities = list_identities(out) if out.is_dir() else []
    if not identities:
        return
    ours = product_settings(cfg.provenance())
    theirs: dict[str, Any] = {}
    try:
        job = json.loads((out / MANIFEST_FILE).read_text()).get("job")
    except (OSError, ValueError, AttributeError):
        job = None
    if isinstance(job, dict):
        theirs = product_settings(job)
    else:
        for folder in identities:
            with contextlib.suppress(OSError, ValueError):
                theirs = _identity_settings(json.loads((folder / META_FILE).read_text()))
                break
    differing = [k for k in PRODUCT_SETTINGS if k in ours and k in theirs and ours[k] != theirs[k]]
    if differing:

        def shown(value: Any) -> str:
            return "none" if value is None else str(value)

        made = ", ".join(f"{PRODUCT_SETTINGS[k]} {shown(theirs[k])}" for k in differing)
        asked = ", ".join(f"{PRODUCT_SETTINGS[k]} {shown(ours[k])}" for k in differing)
        raise BadInputError(
            out,
            f"holds identities made with {made}; this job asks {asked}: use the same settings "
            "or another --out (one set never mixes two)",
        )
    try:
        theirs_cameras = np.load(identities[0] / "cameras.npy", allow_pickle=False)
    except (OSError, ValueError):
        return  # a damaged identity: the reader reports it
    ours_cameras = rig_cameras(cfg).astype(np.float32)
    if theirs_cameras.shape != ours_cameras.shape or not np.allclose(
        theirs_cameras, ours_cameras, atol=1e-5
    ):
        raise BadInputError(
            out,
            f"holds identities rendered from other cameras than this job's {cfg.rig} rig "
            "(another mvface version's rig?): use another --out (one set never mixes two)",
        )


@dataclass
class SynthEvent:
    """What happened to one source face (passed to ``on_identity``)."""

    name: str
    status: Literal["done", "resumed", "skipped", "failed"]
    reason: str = ""
    source: str = ""


@dataclass
class SynthSummary:
    """The outcome of :func:`run_synth`.

    Attributes:
        done: identities written by this run.
        resumed: identities already finished before this run (left as they were).
        skipped: ``(source, reason)`` of bad sources (unreadable, no face, landmarks outside...).
        failed: ``(source, reason)`` of unexpected errors.
        seconds: wall time of the job.
    """

    done: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


# -- step 1: sources -------------------------------------------------------------------------


def select_sources(cfg: SynthConfig) -> tuple[list[FaceSample], list[str]]:
    """The source faces of ``cfg`` and one-line reasons for the items the reader skipped.

    Samples without landmarks are kept when ``cfg.landmark_model`` will mark them (step 2),
    skipped otherwise.
    """
    dataset = read_dataset(cfg.format, cfg.source, limit=cfg.limit)
    samples, skipped = [], list(dataset.skipped)
    for sample in dataset.samples:
        if sample.landmarks is None and cfg.landmark_model is None:
            skipped.append(f"{_source_name(sample)}: no 68-point landmarks")
        else:
            samples.append(sample)
    return samples, skipped


_LANDMARKERS: dict[str, Any] = {}


def detect_landmarks(image: np.ndarray, model: str, source: str = "image") -> np.ndarray:
    """Step 2 for unannotated sources: 68 landmarks of the largest face found.

    The landmarker (``mvface.load(model)`` with the automatic face detector) is created once per
    process.

    Raises:
        BadInputError: no face in the image.
    """
    from mvface.api import load

    if model not in _LANDMARKERS:
        _LANDMARKERS[model] = load(model)
    faces = _LANDMARKERS[model].detect(image)
    if len(faces) == 0:
        raise BadInputError(source, "no face found")
    areas = (faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])
    return np.asarray(faces.points[int(np.argmax(areas)), :, :2], np.float64)


def _source_name(sample: FaceSample) -> str:
    return str(sample.image) if isinstance(sample.image, Path) else (sample.name or "<array>")


def identity_name(sample: FaceSample) -> str:
    """The identity folder name of a source face (:func:`~mvface.synth.writer.safe_identity_name`
    of its sample name: exists for every name, distinct for distinct names)."""
    name = sample.name or (sample.image.stem if isinstance(sample.image, Path) else "")
    return safe_identity_name(name)


def assign_identity_names(
    samples: list[FaceSample],
) -> tuple[list[tuple[str, FaceSample]], list[tuple[str, str, str]]]:
    """One folder name per source face, distinct even where two names differ only by case.

    A face whose :func:`identity_name` another face already took, ignoring case (a
    case-insensitive file system would merge the two folders), gets a hashed name of its own
    file name (``face+1c0f...``) when it is another file (``a.jpg`` and ``a.png``, ``Face`` and
    ``face``); the very same file listed twice is skipped.

    Returns:
        ``[(name, sample)]`` in order, and ``[(name, source, reason)]`` of the skipped repeats.
    """
    named: list[tuple[str, FaceSample]] = []
    skipped: list[tuple[str, str, str]] = []
    taken: dict[str, str] = {}  # casefolded name -> source
    for sample in samples:
        name, source = identity_name(sample), _source_name(sample)
        if name.casefold() in taken:
            if taken[name.casefold()] == source:
                skipped.append((name, source, f"listed twice (identity {name!r})"))
                continue
            suffix = sample.image.suffix if isinstance(sample.image, Path) else ""
            key = f"{sample.name or name}{suffix}\0another file"
            name = hashed_identity_name(sample.name or name, key=key)
            if name.casefold() in taken:  # pragma: no cover - a sha1 collision
                skipped.append((name, source, f"duplicate identity name {name!r}"))
                continue
        taken[name.casefold()] = source
        named.append((name, sample))
    return named, skipped


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


def rig_cameras(cfg: SynthConfig) -> np.ndarray:
    """``(V, 25)`` float64 EG3D labels of the job's rig."""
    if cfg.rig == "paper":
        return rig_labels(paper_rig(cfg.views).to(torch.float64)).numpy()
    max_yaw, max_pitch = math.radians(cfg.max_yaw_deg), math.radians(cfg.max_pitch_deg)
    if cfg.rig == "random":
        yaw_range, pitch_range = (-max_yaw, max_yaw), (-max_pitch, max_pitch)
        cam2world = random_rig(cfg.views, yaw_range, pitch_range, seed=cfg.seed)
    else:
        cam2world = spherical_rig(*grid_span_angles(cfg.views, max_yaw, max_pitch))
    return rig_labels(cam2world.to(torch.float64)).numpy()


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
        jaw_from: ``depth`` or ``surface`` (see :class:`SynthConfig`).
        jaw_depth: see :class:`SynthConfig`.

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
    """The job's head backend (the mesh backend gets ``cfg.fill``)."""
    if cfg.backend == "mesh":
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
        cameras: ``(V, 25)`` labels (default: :func:`rig_cameras` of ``cfg``).
        name: the identity's folder name (default: :func:`identity_name` of ``sample``).

    Returns:
        The identity, ready for :meth:`SyntheticWriter.write`.

    Raises:
        BadInputError: an unusable source (unreadable image, landmarks outside, no face).
    """
    source = _source_name(sample)
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


# -- step 4: the job -------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}
#: ``prctl`` option: the signal the kernel sends this process when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1
#: Seconds between a worker's checks that the job that started it is still alive.
PARENT_CHECK_SECONDS = 0.5


def _process(
    item: tuple[str, FaceSample],
    cfg: SynthConfig,
    backend: HeadBackend,
    cameras: np.ndarray,
    writer: SyntheticWriter,
) -> SynthEvent:
    name, sample = item
    source = _source_name(sample)
    try:
        writer.write(synthesize_identity(sample, cfg, backend, cameras, name))
    except BadInputError as exc:
        where = "" if exc.source == source else f"{exc.source}: "
        return SynthEvent(name, "skipped", where + exc.problem, source)
    except Exception as exc:  # one broken identity must not stop the job
        return SynthEvent(name, "failed", f"{type(exc).__name__}: {exc}", source)
    return SynthEvent(name, "done", "", source)


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end as soon as the job process ``parent_pid`` is gone.

    A worker must never write on after its job is killed (``kill -9``): the output lock died
    with the job, so a new job could already be writing beside it. On Linux the kernel sends
    ``SIGKILL`` the moment the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon
    thread checks every :data:`PARENT_CHECK_SECONDS` that the parent is still ``parent_pid`` and
    ends the process otherwise (this also covers a parent that died before the ``prctl``).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="mvface-parent-watch", daemon=True).start()


def _worker_init(cfg: SynthConfig, cameras: np.ndarray, parent_pid: int | None = None) -> None:
    if parent_pid is not None:  # a local worker process (Ray actors are not our children)
        die_with_parent(parent_pid)
    os.environ.setdefault("LP_NUM_THREADS", "1")  # Mesa's rasterizer: one thread per worker
    torch.set_num_threads(1)
    _WORKER.update(
        cfg=cfg,
        cameras=cameras,
        backend=make_backend(cfg),
        writer=SyntheticWriter(cfg.out, cfg.image_format, cfg.quality),
    )


def _worker_run(item: tuple[str, FaceSample]) -> SynthEvent:
    w = _WORKER
    return _process(item, w["cfg"], w["backend"], w["cameras"], w["writer"])


def _events(
    pending: list[tuple[str, FaceSample]],
    cfg: SynthConfig,
    cameras: np.ndarray,
    writer: SyntheticWriter,
) -> Iterator[SynthEvent]:
    if not pending:
        return
    if cfg.executor == "ray":
        from mvface.synth.ray_executor import ray_events

        yield from ray_events(
            pending, cfg, cameras, cfg.ray_address, worker_init=_worker_init, worker_run=_worker_run
        )
        return
    if cfg.workers == 1 or len(pending) == 1:
        backend = make_backend(cfg)
        for item in pending:
            yield _process(item, cfg, backend, cameras, writer)
        return
    ctx = multiprocessing.get_context("spawn")
    n = min(cfg.workers, len(pending))
    initargs = (cfg, cameras, os.getpid())
    with ctx.Pool(n, initializer=_worker_init, initargs=initargs) as pool:
        yield from pool.imap_unordered(_worker_run, pending)


def run_synth(
    cfg: SynthConfig, on_identity: Callable[[SynthEvent], None] | None = None
) -> SynthSummary:
    """Run one synthesis job (see the module docstring).

    Args:
        cfg: the job settings.
        on_identity: called once per source face as it is finished, resumed, skipped or failed.

    Returns:
        The :class:`SynthSummary`.

    Raises:
        OutputLockedError: another job is writing into ``cfg.out``.
        BadInputError: the source cannot be read at all.
    """
    start = time.perf_counter()
    out = Path(cfg.out)
    summary = SynthSummary()
    notify = on_identity or (lambda event: None)
    if cfg.backend not in list_backends():
        raise BadInputError("backend", f"unknown backend {cfg.backend!r} (have {list_backends()})")
    with output_lock(out):
        check_same_settings(cfg)
        writer = SyntheticWriter(out, cfg.image_format, cfg.quality)
        writer.remove_stale_temporaries()
        samples, reader_skipped = select_sources(cfg)
        for line in reader_skipped:
            src, reason = _split_reason(line)
            summary.skipped.append((src, reason))
            notify(SynthEvent("", "skipped", reason, src))
        named, repeated = assign_identity_names(samples)
        for name, src, reason in repeated:
            summary.skipped.append((src, reason))
            notify(SynthEvent(name, "skipped", reason, src))
        pending = []
        for name, sample in named:
            if writer.is_done(name):
                summary.resumed.append(name)
                notify(SynthEvent(name, "resumed"))
            elif writer.is_taken(name):
                reason = f"{out / name}: exists, not an identity mvface finished; left as it is"
                summary.skipped.append((_source_name(sample), reason))
                notify(SynthEvent(name, "skipped", reason, _source_name(sample)))
            else:
                pending.append((name, sample))
        cameras = rig_cameras(cfg)
        # the set's settings are on disk before its first new identity (a killed job keeps them)
        writer.write_manifest(job=cfg.provenance())
        for event in _events(pending, cfg, cameras, writer):
            if event.status == "done":
                summary.done.append(event.name)
            elif event.status == "skipped":
                summary.skipped.append((event.source, event.reason))
            else:
                summary.failed.append((event.source, event.reason))
            notify(event)
        writer.write_manifest(
            skipped=[{"source": s, "reason": r} for s, r in summary.skipped],
            failed=[{"source": s, "reason": r} for s, r in summary.failed],
            job=cfg.provenance(),
        )
    summary.seconds = time.perf_counter() - start
    return summary


def _split_reason(line: str) -> tuple[str, str]:
    """``"path: reason"`` → ``(path, reason)`` (the whole line as reason when no colon)."""
    source, sep, reason = line.partition(": ")
    return (source, reason) if sep else ("", line)
