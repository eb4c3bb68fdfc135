"""Evaluate a detector on held-out synthetic multiview identities (``mvface synth`` sets).

Two numbers say whether a detector is 3D-consistent, both from its full inference path
(``model.predict`` with the canonical box of the transferred landmarks, as ``--crop gt``):

* **NME against the transferred landmarks**, per |yaw| bin of the view (percent,
  normalizer ``sqrt(w·h)`` of the ground-truth box, as AFLW2000-3D). The mesh backend builds each
  head in the face's own frame, so the rig camera's yaw is the head yaw the view sees.
* **Multiview consistency error** (:func:`mvface.eval.consistency.multiview_consistency_error`):
  triangulate each identity's predictions from all its evaluated views, reproject, and measure
  the mean distance (x100, fraction of the view size). It needs no labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mvface.data.image import load_image
from mvface.data.readers.synthetic import (
    SyntheticIdentity,
    SyntheticMultiviewSet,
    projection_matrices,
)
from mvface.data.record import check_face_points, landmark_box
from mvface.errors import BadInputError
from mvface.eval.consistency import multiview_consistency_error
from mvface.eval.metrics import bbox_normalizer, point_errors
from mvface.eval.protocols import YAW_BINS, yaw_bin_index
from mvface.geometry.cameras import camera_yaw_pitch
from mvface.models.base import LandmarkModel

__all__ = ["SyntheticEvalResult", "evaluate_synthetic"]


@dataclass
class SyntheticEvalResult:
    """Scores of one model on a synthetic set.

    Attributes:
        consistency: mean multiview consistency error x100 over identities.
        nme_bins: NME (percent) per yaw bin name (``"[0,30]"``, ...), NaN for an empty bin.
        nme_mean: NME over all evaluated views (percent).
        per_identity_consistency: ``(B,)`` x100.
        views: views evaluated per identity; ``identities``: their names.
        skipped: one ``"<file or folder>: <problem>"`` line per identity (or folder) that was
            not evaluated.
    """

    consistency: float
    nme_bins: dict[str, float]
    nme_mean: float
    per_identity_consistency: np.ndarray
    views: int
    identities: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (non-finite numbers stay floats: write it with
        :func:`mvface.eval.report.json_text`, which turns them into ``null``)."""
        return {
            "consistency_x100": self.consistency,
            "nme_bins": self.nme_bins,
            "nme_mean": self.nme_mean,
            "views_per_identity": self.views,
            "identities": len(self.identities),
            "skipped": list(self.skipped),
        }


def _view_yaw_deg(cameras: np.ndarray) -> np.ndarray:
    """``(V,)`` camera yaw in degrees from ``(V, 25)`` EG3D labels."""
    cam2world = torch.as_tensor(cameras[:, :16].reshape(-1, 4, 4), dtype=torch.float64)
    return np.degrees(camera_yaw_pitch(cam2world)[:, 0].numpy())


@dataclass
class _Scored:
    """One identity's evaluated views."""

    projection: np.ndarray  # (V, 3, 4)
    pred: np.ndarray  # (V, 68, 2)
    gt: np.ndarray  # (V, 68, 2)
    yaw: np.ndarray  # (V,) degrees
    nme: np.ndarray  # (V,) percent
    consistency: float  # x100


def _score_identity(model: LandmarkModel, ident: SyntheticIdentity, views: int) -> _Scored:
    """Predict and score ``views`` spread views of one identity.

    Raises:
        BadInputError: naming the identity's file: too few views, an unreadable image,
            degenerate landmarks, a non-finite prediction or a degenerate triangulation.
    """
    idx = ident.spread_views(views)
    lm_file = ident.folder / "landmarks.npy"
    gt = ident.landmarks[idx]
    for v, points in zip(idx, gt, strict=True):
        check_face_points(points, f"{lm_file} view {v}")  # absurd or without size
    images = [load_image(ident.image_files[i]) for i in idx]
    size = images[0].shape[1]
    pred = np.asarray(model.predict(images, landmark_box(gt)).points[..., :2], np.float64)
    if not np.all(np.isfinite(pred)):
        raise BadInputError(ident.folder, f"{model.config.name} predicted NaN or infinite points")
    projection = projection_matrices(ident.cameras[idx], size)
    try:
        consistency = 100.0 * multiview_consistency_error(projection[None], pred[None], size)[0]
    except BadInputError as exc:
        raise BadInputError(ident.folder / "cameras.npy", exc.problem) from None
    yaw = _view_yaw_deg(ident.cameras[idx])
    if not np.all(np.isfinite(yaw)):
        raise BadInputError(ident.folder / "cameras.npy", "a camera has no finite yaw")
    nme = 100.0 * point_errors(pred, gt).mean(-1) / bbox_normalizer(gt)
    return _Scored(projection, pred, gt, yaw, nme, float(consistency))


def evaluate_synthetic(
    model: LandmarkModel,
    root: str | Path,
    limit: int | None = None,
    views: int = 16,
    progress: bool = True,
) -> SyntheticEvalResult:
    """Run ``model`` on ``views`` evenly spread views of each identity of a synthetic set.

    An identity that cannot be evaluated (unreadable or malformed files, fewer than ``views``
    views, degenerate landmarks or cameras) is skipped and listed in ``skipped`` with its
    reason; the others are scored.

    Args:
        model: any landmark model.
        root: a ``mvface synth`` dataset folder (identities the model was not trained on).
        limit: first N identities.
        views: views per identity (at least 2), spread evenly over the identity's views.
        progress: show a progress bar.

    Raises:
        BadInputError: an unreadable set, or no identity could be evaluated.
        ValueError: ``views < 2``.
    """
    if views < 2:
        raise ValueError(f"consistency needs at least 2 views per identity, got {views}")
    source = SyntheticMultiviewSet(root, limit=limit)
    skipped = list(source.skipped)
    scored: list[_Scored] = []
    names: list[str] = []
    columns = (TextColumn(f"eval {model.config.name} on {Path(root).name}"), BarColumn())
    stderr = Console(stderr=True)  # progress is a diagnostic: stdout carries the summary only
    with Progress(
        *columns, MofNCompleteColumn(), console=stderr, disable=not progress, transient=True
    ) as bar:
        task = bar.add_task("synthetic", total=len(source.identities))
        for ident in source.identities:
            try:
                scored.append(_score_identity(model, ident, views))
                names.append(ident.name)
            except BadInputError as exc:
                skipped.append(str(exc))
            bar.advance(task)
    if not scored:
        why = "; ".join(skipped[:3])
        raise BadInputError(root, f"no identity could be evaluated ({len(skipped)} skipped): {why}")
    per_identity = np.array([s.consistency for s in scored])
    per_view = np.concatenate([s.nme for s in scored])
    bins = yaw_bin_index(np.concatenate([s.yaw for s in scored]))
    nme_bins = {
        name: float(per_view[bins == i].mean()) if (bins == i).any() else float("nan")
        for i, (name, _, _) in enumerate(YAW_BINS)
    }
    return SyntheticEvalResult(
        consistency=float(per_identity.mean()),
        nme_bins=nme_bins,
        nme_mean=float(per_view.mean()),
        per_identity_consistency=per_identity,
        views=scored[0].pred.shape[0],
        identities=names,
        skipped=skipped,
    )
