"""Relabel a synthetic set with a landmark model's points, fused in 3D across views.

A synthetic identity's labels come from lifting the source photo's 68 annotated points onto the
head (:mod:`mvface.synth.landmarks`): they follow the source annotation's convention (300-W's
jaw on the visible silhouette). A benchmark such as AFLW2000-3D labels 3DMM keypoints instead:
fixed points on the 3D face, the jaw included, wherever the head is turned. A model that
predicts in that convention (``3ddfa-v2``, the ``teacher``) gives, in each view it sees well,
the 2D image of those fixed points; triangulating its predictions over the views of one
identity gives one 3D point per landmark, the plug-in's pseudo ground truth in the model's
convention, and projecting it gives labels for every view, including the large-yaw views where
the model itself is least reliable.

The model sees the source photo (its aligned crop, weighted :attr:`RelabelConfig.source_weight`
views) and the rendered views within :attr:`RelabelConfig.max_yaw_deg` of frontal, where
renders look most like photographs. The triangulation is re-weighted: an observation whose
reprojection error is over :attr:`RelabelConfig.outlier_factor` times its point's median (and
over :attr:`RelabelConfig.min_outlier_px`) is dropped and the point solved again.

Images of the relabelled set are hard links to the input set's files (copies where the
file system cannot link): the images are not re-encoded and take no new disk space.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvface.data.image import load_image
from mvface.data.readers.synthetic import (
    META_FILE,
    OBSERVED_FILE,
    SyntheticIdentity,
    load_identity,
    projection_matrices,
    scan_identities,
)
from mvface.data.record import landmark_box
from mvface.errors import BadInputError
from mvface.geometry.cameras import camera_yaw_pitch
from mvface.geometry.triangulation import reproject, triangulate_dlt
from mvface.models.base import LandmarkModel
from mvface.synth.writer import SyntheticWriter, output_lock, staged_identity

#: Arrays of an identity folder copied unchanged into the relabelled set.
_KEPT_ARRAYS = ("cameras.npy", "visibility.npy", "source_camera.npy", OBSERVED_FILE)


@dataclass(frozen=True)
class RelabelConfig:
    """How the model's 2D points are gathered and fused.

    Attributes:
        max_yaw_deg: rendered views whose camera is within this yaw of frontal (degrees) are
            shown to the model; the others only receive the projected labels.
        max_views: at most this many of those views, spread evenly over them.
        source_weight: weight of the source photo's observation, in views.
        outlier_factor: an observation is dropped when its reprojection error is over this
            multiple of its point's median error ...
        min_outlier_px: ... and over this many pixels of the 256 px view (scaled with the
            view size).
        iterations: re-weighted triangulations after the first.
    """

    max_yaw_deg: float = 50.0
    max_views: int = 16
    source_weight: float = 4.0
    outlier_factor: float = 2.5
    min_outlier_px: float = 2.0
    iterations: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.max_yaw_deg <= 90.0:
            raise ValueError(f"max_yaw_deg must be in (0, 90], got {self.max_yaw_deg}")
        if self.max_views < 2:
            raise ValueError(f"max_views must be >= 2, got {self.max_views}")
        if self.source_weight < 0 or self.outlier_factor <= 1 or self.min_outlier_px < 0:
            raise ValueError("source_weight >= 0, outlier_factor > 1, min_outlier_px >= 0")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")


@dataclass(frozen=True)
class Observations:
    """What the model saw of one identity: ``K`` observations of the 68 points.

    ``projections`` ``(K, 3, 4)`` (world to landmark pixels), ``points`` ``(K, 68, 2)`` pixels,
    ``weights`` ``(K,)`` (the source photo first when it was used).
    """

    projections: np.ndarray
    points: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class Fused:
    """One identity's fused labels.

    ``landmarks3d`` ``(68, 3)`` world points; ``landmarks`` ``(V, 68, 2)`` their projections in
    every view (pixels); ``residual_px`` the weighted mean reprojection error of the kept
    observations (pixels of the views); ``kept`` the fraction of observations kept.
    """

    landmarks3d: np.ndarray
    landmarks: np.ndarray
    residual_px: float
    kept: float


@dataclass
class RelabelSummary:
    """What a relabelling job did (identity names, and a reason for each one skipped)."""

    done: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    residual_px: list[float] = field(default_factory=list)


def _view_size(identity: SyntheticIdentity) -> int:
    size = identity.meta.get("image_size", [256, 256])
    return int(size[0])


def gather_observations(
    identity: SyntheticIdentity, model: LandmarkModel, cfg: RelabelConfig
) -> Observations:
    """Run ``model`` on the source photo and the near-frontal views of ``identity``.

    Each view is cropped from the box of its current labels (the ground-truth-box protocol of
    the benchmarks); the source photo from the box of its current labels projected by its
    camera.
    """
    size = _view_size(identity)
    cam2world = torch.as_tensor(identity.cameras[:, :16].reshape(-1, 4, 4))
    yaw = np.degrees(np.abs(camera_yaw_pitch(cam2world)[:, 0].numpy()))
    near = np.flatnonzero(yaw <= cfg.max_yaw_deg)
    if len(near) > cfg.max_views:
        near = near[np.unique(np.linspace(0, len(near) - 1, cfg.max_views).round().astype(int))]
    projections = [projection_matrices(identity.cameras[near], size)]
    images = [load_image(identity.image_files[i]) for i in near]
    boxes = [landmark_box(identity.landmarks[i]) for i in near]
    weights = [np.ones(len(near))]
    source = _source_view(identity)
    if source is not None and cfg.source_weight > 0:
        image, P = source
        h = np.c_[identity.landmarks3d, np.ones(68)] @ P.T
        images.insert(0, image)
        boxes.insert(0, landmark_box(h[:, :2] / h[:, 2:]))
        projections.insert(0, P[None])
        weights.insert(0, np.array([cfg.source_weight]))
    if len(images) < 2:
        raise BadInputError(identity.folder, f"fewer than 2 views within {cfg.max_yaw_deg} deg")
    points = np.asarray(model.predict(images, np.stack(boxes)).points)[..., :2]
    return Observations(
        np.concatenate(projections), points.astype(np.float64), np.concatenate(weights)
    )


def _source_view(identity: SyntheticIdentity) -> tuple[np.ndarray, np.ndarray] | None:
    """The source photo's aligned crop and its ``(3, 4)`` projection, when the set has them."""
    camera = identity.folder / "source_camera.npy"
    ext = identity.meta.get("image_format", "jpg")
    photo = identity.folder / f"source.{ext}"
    if not (camera.is_file() and photo.is_file()):
        return None
    image = load_image(photo)
    label = np.load(camera, allow_pickle=False).astype(np.float64).reshape(1, 25)
    return image, projection_matrices(label, image.shape[0])[0]


def fuse_observations(
    obs: Observations, cameras: np.ndarray, size: int, cfg: RelabelConfig
) -> Fused:
    """Triangulate the observations (re-weighted, :class:`RelabelConfig`) and project the
    result into every view of ``cameras`` ``(V, 25)`` of side ``size`` pixels."""
    P = torch.as_tensor(obs.projections)
    x = torch.as_tensor(obs.points)
    w = torch.as_tensor(obs.weights)[:, None].expand(-1, 68).clone()
    floor = cfg.min_outlier_px * size / 256.0
    for _ in range(cfg.iterations):
        X = triangulate_dlt(P, x, w)
        err = torch.linalg.vector_norm(reproject(X, P) - x, dim=-1)  # (K, 68)
        median = err.where(w > 0, torch.nan).nanmedian(dim=0).values
        keep = err <= torch.clamp(cfg.outlier_factor * median, min=floor)
        new_w = torch.as_tensor(obs.weights)[:, None] * keep
        if bool((new_w > 0).sum(dim=0).min() < 2):  # never leave a point under two views
            break
        w = new_w
    X = triangulate_dlt(P, x, w)
    err = torch.linalg.vector_norm(reproject(X, P) - x, dim=-1)
    residual = float((err * w).sum() / w.sum())
    landmarks = reproject(X, torch.as_tensor(projection_matrices(cameras, size)))
    return Fused(
        landmarks3d=X.numpy(),
        landmarks=landmarks.numpy(),
        residual_px=residual,
        kept=float((w > 0).float().mean()),
    )


def relabel_identity(
    identity: SyntheticIdentity, model: LandmarkModel, cfg: RelabelConfig
) -> Fused:
    """The fused labels of one identity (see the module docstring)."""
    obs = gather_observations(identity, model, cfg)
    fused = fuse_observations(obs, identity.cameras, _view_size(identity), cfg)
    if not np.all(np.isfinite(fused.landmarks)):
        raise BadInputError(identity.folder, "triangulated labels are not finite")
    return fused


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_relabelled(
    identity: SyntheticIdentity, fused: Fused, out: Path, provenance: dict[str, Any]
) -> Path:
    """Write ``identity`` with ``fused`` labels into set ``out``, atomically
    (:func:`~mvface.synth.writer.staged_identity`); images are linked, not re-encoded."""
    with staged_identity(out, identity.name) as tmp:
        (tmp / "images").mkdir()
        for path in identity.image_files:
            _link_or_copy(path, tmp / "images" / path.name)
        for path in identity.folder.glob("source.*"):
            _link_or_copy(path, tmp / path.name)
        for name in _KEPT_ARRAYS:
            if (identity.folder / name).is_file():
                shutil.copy2(identity.folder / name, tmp / name)
        np.save(tmp / "landmarks.npy", fused.landmarks.astype(np.float32))
        np.save(tmp / "landmarks3d.npy", fused.landmarks3d.astype(np.float32))
        meta = {**identity.meta, **provenance, "relabel_residual_px": round(fused.residual_px, 3)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
    return out / identity.name


def relabel_set(
    root: str | Path,
    out: str | Path,
    model: LandmarkModel,
    model_spec: str,
    cfg: RelabelConfig | None = None,
    *,
    limit: int | None = None,
    on_identity: Callable[[str], None] | None = None,
) -> RelabelSummary:
    """Relabel every identity of set ``root`` into set ``out`` (resumable: identities already
    finished in ``out`` are kept; one job per ``out`` at a time).

    Args:
        root: a set written by ``mvface synth``.
        out: the new set's folder (created; must not be ``root``).
        model: the landmark model whose points are fused.
        model_spec: how the model was named (``NAME[:WEIGHTS]``), recorded in ``meta.json``.
        cfg: fusion settings (defaults: :class:`RelabelConfig`).
        limit: at most this many identities (the first, sorted by name).
        on_identity: called with each identity's name when it is done or skipped.
    """
    cfg = cfg or RelabelConfig()
    root, out = Path(root), Path(out)
    if out.resolve() == root.resolve():
        raise BadInputError(out, "is the input set; relabel writes a new set")
    folders, skipped = scan_identities(root)
    folders = folders[:limit] if limit is not None else folders
    out.mkdir(parents=True, exist_ok=True)
    summary = RelabelSummary(skipped=[(str(root), line) for line in skipped])
    provenance = {"landmarks_from": f"triangulated {model_spec}", "relabel": asdict(cfg)}
    writer = SyntheticWriter(out)
    with output_lock(out):
        writer.remove_stale_temporaries()
        for folder in folders:
            if (out / folder.name / META_FILE).is_file():
                summary.resumed.append(folder.name)
            else:
                try:
                    identity = load_identity(folder)
                    fused = relabel_identity(identity, model, cfg)
                    write_relabelled(identity, fused, out, provenance)
                except BadInputError as exc:
                    summary.skipped.append((folder.name, str(exc)))
                else:
                    summary.done.append(folder.name)
                    summary.residual_px.append(fused.residual_px)
            if on_identity is not None:
                on_identity(folder.name)
        writer.write_manifest(
            skipped=[{"source": s, "reason": r} for s, r in summary.skipped],
            relabelled_from=str(root),
        )
    return summary
