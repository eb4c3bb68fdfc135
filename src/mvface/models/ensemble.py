"""Several landmark models fused point by point: a teacher better than any one of them.

Two model families make different errors: ``3ddfa-v2`` fits a 3D morphable model (its points
always form a plausible 3D face; the 3DMM jaw of AFLW2000-3D's labels), ``base+`` places each
point from the image (sharper eyes and mouth, fewer shape priors). Their weighted mean is more
accurate than either (``docs/results.md``), which makes it the teacher of the shipped student
networks.

``teacher`` is registered here: ``3ddfa-v2`` (flip-averaged) and ``base+`` fused with the
shares in :data:`TEACHER_SHARES`. It needs the 3DDFA_V2 release files, which mvface does not
ship: ``create_model("teacher", weights="path/to/3ddfa_v2")`` (or ``mvface eval --model
teacher:path/to/3ddfa_v2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mvface.errors import BadInputError, NotAvailableError
from mvface.models._registry import create_model, register_model
from mvface.models.base import LandmarkModel, Landmarks, ModelConfig
from mvface.models.boxes import IDENTITY

__all__ = ["TEACHER_SHARES", "EnsembleModel", "teacher"]

#: Share of each member of ``teacher`` in its fused points: ``3ddfa-v2`` (flip-averaged),
#: ``base+``. Chosen on the first 200 faces of the AFLW2000-3D dev half (``docs/results.md``).
TEACHER_SHARES: tuple[float, float] = (0.7, 0.3)


class EnsembleModel(LandmarkModel):
    """Landmark models fused point by point with fixed shares.

    Each member crops the face with its own policy from the canonical box, so the ensemble's
    own crop policy is the identity (its "crop boxes" are the canonical boxes).

    Args:
        members: ``(model, share)`` pairs; a share is a number or ``(68,)`` per-point shares.
            Shares are normalized per point to sum to 1.
        name: registry name shown in reports.

    Attributes:
        members: the member models.
        shares: ``(M, 68)`` normalized shares.
    """

    def __init__(
        self, members: Sequence[tuple[LandmarkModel, float | np.ndarray]], name: str = "ensemble"
    ) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        shares = np.stack([np.broadcast_to(np.asarray(s, np.float64), (68,)) for _, s in members])
        if np.any(shares < 0) or np.any(shares.sum(axis=0) <= 0):
            raise ValueError("ensemble shares must be >= 0 with a positive sum for every point")
        self.members = [m for m, _ in members]
        self.shares = shares / shares.sum(axis=0, keepdims=True)
        three_d = all(m.config.output == "68x3" for m in self.members)
        self.config = ModelConfig(
            name=name,
            crop=IDENTITY,
            output="68x3" if three_d else "68x2",
            licence="; ".join(f"{m.config.name}: {m.config.licence}" for m in self.members),
        )

    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        preds = [m.predict(list(images), crop_boxes).points for m in self.members]
        return Landmarks(points=fuse_points(preds, self.shares))


def fuse_points(points: Sequence[np.ndarray], shares: np.ndarray) -> np.ndarray:
    """Per-point weighted mean of several models' points.

    Args:
        points: M arrays ``(N, 68, 2|3)`` in image pixels.
        shares: ``(M, 68)`` shares summing to 1 over M for each point.

    Returns:
        ``(N, 68, 2)``, or ``(N, 68, 3)`` when every member gives ``z``: each member's ``z``
        is taken relative to its own mean over the 68 points before the mean (depth origins
        differ between families; the units are image pixels for all).
    """
    dims = min(p.shape[-1] for p in points)
    out = np.zeros((*points[0].shape[:2], dims))
    for p, share in zip(points, shares, strict=True):
        q = np.asarray(p[..., :dims], np.float64).copy()
        if dims == 3:
            q[..., 2] -= q[..., 2].mean(axis=1, keepdims=True)
        out += share[None, :, None] * q
    return out


@register_model("teacher")
def teacher(weights: str | None = None, **cfg: Any) -> EnsembleModel:
    """``3ddfa-v2`` (flip-averaged) and ``base+`` fused with :data:`TEACHER_SHARES`.

    Args:
        weights: the 3DDFA_V2 release folder (``mb05_120x120.pth`` and its statistics);
            required, since mvface does not ship those weights.
        **cfg: none are accepted.
    """
    if cfg:
        raise BadInputError("teacher", f"takes no options, got {sorted(cfg)}")
    if weights is None:
        raise NotAvailableError(
            "teacher needs the 3DDFA_V2 release files: give them as weights "
            "(e.g. --model teacher:path/to/3ddfa_v2)"
        )
    tddfa = create_model("3ddfa-v2", weights=weights, flip_average=True)
    return EnsembleModel(
        [(tddfa, TEACHER_SHARES[0]), (create_model("base+"), TEACHER_SHARES[1])], name="teacher"
    )
