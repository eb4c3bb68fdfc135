"""The multiview-consistency loss of the 3D-aware plug-in (the paper's contribution).

For B identities seen in V views with known cameras, a detector's predictions should be the
projections of one 3D face. The loss has three synthetic terms, computed on coordinates divided by
the image size so that the weights do not depend on resolution:

* **consistency**: triangulate the predictions of the first S views (the *source* views) with the
  differentiable DLT, reproject into all V views, L1 between every view's prediction and the
  reprojection;
* **anchored consistency**: L1 between the reprojections in the source views and their pseudo
  ground truth (keeps the triangulated face where the data says it is);
* **supervision**: L1 between the predictions and the pseudo ground truth of every view, with a
  separate weight for the jaw points 0–16, whose pseudo ground truth is least reliable.

The trainer adds the detector's own loss on its original data: ``total = w_orig · L_orig +
w_consistency · L_c + w_anchor · L_a + w_supervision · L_s (+ family extras)``. Reference weights
(the paper's DAD-3DNet+ setting): ``w_orig = 1``, every synthetic term ``0.1`` (``0.2`` for
3DDFA+), S = 4.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mvface.geometry.projection import project_points
from mvface.geometry.triangulation import triangulate_dlt

JAW = slice(0, 17)


@dataclass(frozen=True)
class MultiviewLossConfig:
    """Weights and switches of the plug-in loss.

    Attributes:
        num_source_views: S, the views whose predictions are triangulated (the first S).
        w_consistency, w_anchor, w_supervision: weights of the three synthetic terms.
        jaw_weight: weight of points 0–16 relative to the others in the supervision term.
        stop_gradient: detach the triangulated points (then the consistency term only pulls
            each view towards the reprojection; the reference implementation does not detach).
        hidden_weight: weight of landmarks marked hidden in ``visibility`` (1 = ignore
            visibility, 0 = drop hidden points) in every term.
    """

    num_source_views: int = 4
    w_consistency: float = 0.1
    w_anchor: float = 0.1
    w_supervision: float = 0.1
    jaw_weight: float = 1.0
    stop_gradient: bool = False
    hidden_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.num_source_views < 2:
            raise ValueError("num_source_views must be at least 2 to triangulate")
        if min(self.w_consistency, self.w_anchor, self.w_supervision, self.jaw_weight) < 0:
            raise ValueError("loss weights must be non-negative")
        if not 0.0 <= self.hidden_weight <= 1.0:
            raise ValueError("hidden_weight must be in [0, 1]")


def _weighted_l1(diff: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``|diff|`` over the coordinates, weighted per point.

    ``diff`` ``(B, V, N, 2)``, ``weights`` ``(B, V, N)``; returns a scalar.
    """
    per_point = diff.abs().mean(dim=-1)
    return (per_point * weights).sum() / weights.sum().clamp_min(1e-12)


def multiview_losses(
    predictions: torch.Tensor,
    projections: torch.Tensor,
    pseudo_gt: torch.Tensor,
    image_size: float,
    visibility: torch.Tensor | None = None,
    config: MultiviewLossConfig | None = None,
) -> dict[str, torch.Tensor]:
    """The plug-in's synthetic loss terms for a batch of multiview sets.

    Args:
        predictions: ``(B, V, N, 2)`` predicted landmarks in each view's pixels.
        projections: ``(B, V, 3, 4)`` camera matrices of the views (pixels of the same frame).
        pseudo_gt: ``(B, V, N, 2)`` per-view pseudo ground truth, pixels.
        image_size: side of the views in pixels (coordinates are divided by it).
        visibility: ``(B, V, N)`` bool, ``True`` where the landmark is visible, or ``None``.
        config: weights and switches (defaults: the reference setting).

    Returns:
        ``{"consistency", "anchor", "supervision", "total"}`` scalars; ``total`` is the weighted
        sum of the three (without the original-data loss, which the trainer adds).
    """
    cfg = config or MultiviewLossConfig()
    b, v, n, _ = predictions.shape
    s = cfg.num_source_views
    if v < s:
        raise ValueError(f"{v} views given but num_source_views is {s}")
    if projections.shape != (b, v, 3, 4) or pseudo_gt.shape != predictions.shape:
        raise ValueError(
            f"shapes disagree: predictions {tuple(predictions.shape)}, projections "
            f"{tuple(projections.shape)}, pseudo_gt {tuple(pseudo_gt.shape)}"
        )
    point_w = torch.ones(b, v, n, dtype=predictions.dtype, device=predictions.device)
    if visibility is not None:
        hidden = 1.0 - visibility.to(predictions.dtype)
        point_w = point_w - (1.0 - cfg.hidden_weight) * hidden
    sources = predictions[:, :s]
    if cfg.stop_gradient:
        sources = sources.detach()
    points3d = triangulate_dlt(projections[:, :s], sources, point_w[:, :s])
    reprojected = project_points(points3d[:, None], projections)  # (B, V, N, 2)
    scale = 1.0 / image_size
    consistency = _weighted_l1((predictions - reprojected) * scale, point_w)
    anchor = _weighted_l1((reprojected[:, :s] - pseudo_gt[:, :s]) * scale, point_w[:, :s])
    sup_w = point_w.clone()
    sup_w[..., JAW] = sup_w[..., JAW] * cfg.jaw_weight
    supervision = _weighted_l1((predictions - pseudo_gt) * scale, sup_w)
    total = (
        cfg.w_consistency * consistency + cfg.w_anchor * anchor + cfg.w_supervision * supervision
    )
    return {
        "consistency": consistency,
        "anchor": anchor,
        "supervision": supervision,
        "total": total,
    }


MultiviewLossFn = Callable[..., dict[str, torch.Tensor]]


@functools.cache
def compiled_multiview_losses() -> MultiviewLossFn:
    """:func:`multiview_losses` through ``torch.compile`` (compiled at its first call).

    Why: eagerly, one forward + backward of the loss is ~1000 small tensor operations (3x3
    systems, projections, per-view normalization). On a GPU each is a kernel launch, so the
    loss costs launch time, not arithmetic; compiled, it is a few fused kernels. Same values
    (to float round-off) and gradients as the eager function. One compilation per input shape
    and config (``dynamic=False``: a training run has one).
    """
    return torch.compile(multiview_losses, dynamic=False)
