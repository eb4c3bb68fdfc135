"""Multiview consistency error: how well one identity's per-view predictions agree in 3D.

For every identity seen from ``V`` calibrated views, the 2D predictions of all views are
triangulated with the DLT (:func:`mvface.geometry.triangulation.triangulate_dlt`), the 3D
points are projected back into every view, and the mean reprojection distance (pixels) is
divided by the image size ``sqrt(W * H)``. Predictions that are projections of one 3D shape
score 0; inconsistent ones score more. The value is a fraction; reports show it x100.

This needs no ground truth, so it scores models on synthetic multiview renders and on any
calibrated multi-camera capture.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mvface.errors import BadInputError
from mvface.eval.metrics import to_numpy

__all__ = ["multiview_consistency_error", "reprojection_distances"]


def _image_normalizer(image_size: Any) -> float:
    """``sqrt(W * H)`` for a ``(W, H)`` pair, or the number itself for a square side."""
    size = np.atleast_1d(to_numpy(image_size)).reshape(-1)
    if size.shape == (1,):
        norm = float(size[0])
    elif size.shape == (2,):
        norm = math.sqrt(float(size[0]) * float(size[1])) if (size > 0).all() else 0.0
    else:
        raise BadInputError("image_size", f"expected a number or (W, H), got {size.tolist()}")
    if not (math.isfinite(norm) and norm > 0):
        raise BadInputError("image_size", f"must be finite and > 0, got {size.tolist()}")
    return norm


def reprojection_distances(
    projections: Any,
    points: Any,
    weights: Any | None = None,
) -> np.ndarray:
    """Triangulate each identity from all views and measure the reprojection distances.

    Args:
        projections: ``(B, V, 3, 4)`` camera projection matrices mapping world points to
            pixel coordinates of each view, ``V >= 2``.
        points: ``(B, V, N, 2)`` predicted points in pixels of each view.
        weights: optional ``(B, V, N)`` (per observation) or ``(B, V)`` (per view)
            non-negative weights (e.g. visibility or confidence) passed to the DLT; points
            with weight 0 are missing observations and may be NaN.

    Returns:
        ``(B, V, N)`` float64 distances in pixels between each prediction and the
        reprojection of its triangulated 3D point (0 where the weight is 0).

    Raises:
        BadInputError: wrong shapes, NaN values, negative weights, or a triangulation that
            gives a non-finite reprojection (naming the identity index).
    """
    import torch

    from mvface.geometry.projection import project_points
    from mvface.geometry.triangulation import triangulate_dlt

    P = to_numpy(projections)
    x = to_numpy(points)
    if P.ndim != 4 or P.shape[2:] != (3, 4):
        raise BadInputError("projections", f"expected shape (B, V, 3, 4), got {P.shape}")
    if x.ndim != 4 or x.shape[-1] != 2 or x.shape[:2] != P.shape[:2]:
        raise BadInputError(
            "points", f"expected shape (B, V, N, 2) with (B, V) = {P.shape[:2]}, got {x.shape}"
        )
    if P.shape[1] < 2:
        raise BadInputError("projections", f"need at least 2 views, got {P.shape[1]}")
    w = _weights(weights, x.shape[:3])
    used = np.ones(x.shape[:3], dtype=bool) if w is None else w > 0
    _check_finite_per_identity(P, "projections")
    _check_finite_per_identity(np.where(used[..., None], x, 0.0), "points")
    x = np.where(used[..., None], x, 0.0)  # missing observations (weight 0) may be NaN
    P_t = torch.from_numpy(P)
    x_t = torch.from_numpy(x)
    with torch.no_grad():
        X = triangulate_dlt(P_t, x_t, weights=None if w is None else torch.from_numpy(w))
        reproj = project_points(X.unsqueeze(1), P_t)  # (B, 1, N, 3) x (B, V, 3, 4) -> (B, V, N, 2)
        dist = torch.linalg.vector_norm(reproj - x_t, dim=-1)
    out = np.where(used, dist.detach().cpu().numpy().astype(np.float64), 0.0)
    finite = np.isfinite(out).reshape(out.shape[0], -1).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise BadInputError(
            f"identity {bad}", "triangulation is degenerate (non-finite reprojection)"
        )
    return out


def _weights(weights: Any | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """``(B, V, N)`` or ``(B, V)`` non-negative weights as a ``(B, V, N)`` array, or ``None``."""
    if weights is None:
        return None
    w = to_numpy(weights)
    if w.shape == shape[:2]:
        w = np.broadcast_to(w[..., None], shape).copy()
    if w.shape != shape:
        raise BadInputError("weights", f"expected shape {shape} or {shape[:2]}, got {w.shape}")
    if not (np.isfinite(w) & (w >= 0)).all():
        raise BadInputError("weights", "must be finite and >= 0")
    return w


def _check_finite_per_identity(arr: np.ndarray, name: str) -> None:
    finite = np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise BadInputError(f"identity {bad}", f"{name} contain NaN or infinite values")


def multiview_consistency_error(
    projections: Any,
    points: Any,
    image_size: Any,
    weights: Any | None = None,
) -> np.ndarray:
    """Mean reprojection distance after multiview triangulation, per identity, as a fraction.

    Args:
        projections: ``(B, V, 3, 4)`` projection matrices (world -> pixels), ``V >= 2``.
        points: ``(B, V, 68, 2)`` predicted points in pixels of each view (any ``N`` works).
        image_size: ``(W, H)`` in pixels, normalizer ``sqrt(W * H)``; or one number, the side
            of a square image (its own ``sqrt(s * s)``).
        weights: optional ``(B, V, N)`` or ``(B, V)`` non-negative weights; they weight both
            the DLT and the mean of the distances (a zero weight takes an observation out
            entirely, and its point may then be NaN).

    Returns:
        ``(B,)`` float64 errors, fractions of the image size (x100 for percent); 0 for
        predictions that are exact projections of one 3D point set.

    Raises:
        BadInputError: wrong shapes, NaN values, a bad image size, all-zero weights for an
            identity, or a degenerate triangulation (naming the identity index).

    Example:
        >>> import numpy as np
        >>> K = np.array([[500.0, 0, 256], [0, 500, 256], [0, 0, 1]])
        >>> P = np.stack([K @ np.hstack([np.eye(3), [[dx], [0], [3]]]) for dx in (-0.5, 0.5)])
        >>> X = np.random.default_rng(0).uniform(-0.2, 0.2, (68, 3))
        >>> h = np.concatenate([X, np.ones((68, 1))], 1) @ P.transpose(0, 2, 1)  # (V, 68, 3)
        >>> pts = h[..., :2] / h[..., 2:]  # exact projections: consistent
        >>> multiview_consistency_error(P[None], pts[None], (512, 512)).round(9).tolist()
        [0.0]
        >>> moved = pts.copy(); moved[0] += (0.0, 3.0)  # view 0 is 3 px lower
        >>> bool(multiview_consistency_error(P[None], moved[None], (512, 512))[0] > 0)
        True
    """
    norm = _image_normalizer(image_size)
    dist = reprojection_distances(projections, points, weights)  # (B, V, N)
    w = _weights(weights, dist.shape)
    if w is None:
        mean = dist.mean(axis=(1, 2))
    else:
        total = w.sum(axis=(1, 2))
        if (total <= 0).any():
            bad = int(np.flatnonzero(total <= 0)[0])
            raise BadInputError(f"identity {bad}", "all weights are zero")
        mean = (dist * w).sum(axis=(1, 2)) / total
    return mean / norm
