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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mvface.data.image import load_image
from mvface.data.readers.synthetic import SyntheticMultiviewSet, projection_matrices
from mvface.data.record import landmark_box
from mvface.eval.consistency import multiview_consistency_error
from mvface.eval.metrics import bbox_normalizer, point_errors
from mvface.eval.protocols import YAW_BINS, yaw_bin_index
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
    """

    consistency: float
    nme_bins: dict[str, float]
    nme_mean: float
    per_identity_consistency: np.ndarray
    views: int
    identities: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "consistency_x100": self.consistency,
            "nme_bins": self.nme_bins,
            "nme_mean": self.nme_mean,
            "views_per_identity": self.views,
            "identities": len(self.identities),
        }


def _view_yaw_deg(cameras: np.ndarray) -> np.ndarray:
    """``(V,)`` camera yaw in degrees from ``(V, 25)`` EG3D labels."""
    from mvface.synth.rig import camera_yaw_pitch

    cam2world = torch.as_tensor(cameras[:, :16].reshape(-1, 4, 4), dtype=torch.float64)
    return np.degrees(camera_yaw_pitch(cam2world)[:, 0].numpy())


def evaluate_synthetic(
    model: LandmarkModel,
    root: str | Path,
    limit: int | None = None,
    views: int = 16,
    progress: bool = True,
) -> SyntheticEvalResult:
    """Run ``model`` on ``views`` evenly spread views of each identity of a synthetic set.

    Args:
        model: any landmark model.
        root: a ``mvface synth`` dataset folder (identities the model was not trained on).
        limit: first N identities.
        views: views per identity (at least 2), spread evenly over the identity's views.
        progress: show a progress bar.

    Raises:
        BadInputError: an unreadable set or identity, one with fewer than ``views`` views, or a
            degenerate triangulation.
        ValueError: ``views < 2``.
    """
    if views < 2:
        raise ValueError(f"consistency needs at least 2 views per identity, got {views}")
    source = SyntheticMultiviewSet(root, limit=limit)
    projections, preds, gts, yaws = [], [], [], []
    size = 0
    columns = (TextColumn(f"eval {model.config.name} on {Path(root).name}"), BarColumn())
    with Progress(*columns, MofNCompleteColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task("synthetic", total=len(source.identities))
        for ident in source.identities:
            idx = ident.spread_views(views)
            images = [load_image(ident.image_files[i]) for i in idx]
            size = images[0].shape[1]
            gt = ident.landmarks[idx]
            preds.append(model.predict(images, landmark_box(gt)).points[..., :2])
            projections.append(projection_matrices(ident.cameras[idx], size))
            gts.append(gt)
            yaws.append(_view_yaw_deg(ident.cameras[idx]))
            bar.advance(task)
    pred, gt = np.stack(preds), np.stack(gts)  # (B, V, 68, 2)
    per_identity = 100.0 * multiview_consistency_error(np.stack(projections), pred, size)
    flat_gt = gt.reshape(-1, 68, 2)
    per_view = 100.0 * point_errors(pred.reshape(-1, 68, 2), flat_gt).mean(-1)
    per_view = per_view / bbox_normalizer(flat_gt)
    bins = yaw_bin_index(np.concatenate(yaws))
    nme_bins = {
        name: float(per_view[bins == i].mean()) if (bins == i).any() else float("nan")
        for i, (name, _, _) in enumerate(YAW_BINS)
    }
    return SyntheticEvalResult(
        consistency=float(per_identity.mean()),
        nme_bins=nme_bins,
        nme_mean=float(per_view.mean()),
        per_identity_consistency=per_identity,
        views=pred.shape[1],
        identities=[ident.name for ident in source.identities],
    )
