"""Multi-view triangulation by the direct linear transform (DLT), differentiable.

Conventions are those of :mod:`mvface.geometry.cameras`: projection matrices ``P = K @ [R | t]``
``(*, V, 3, 4)`` map world points to pixels (0 at the image's left/top edge), one matrix per view.
Pixels are ``(*, V, N, 2)``: ``N`` points seen in each of ``V`` views.

**Method.** For a world point ``X`` and a view with pixel ``(x, y)`` the DLT gives two linear
equations ``(x·P₃ − P₁)·[X, 1] = 0`` and ``(y·P₃ − P₂)·[X, 1] = 0``. The default
``method="linear"`` solves them as an *inhomogeneous* weighted least-squares problem in ``X``
(fixing the homogeneous coordinate to 1) through its 3x3 normal equations
``(Σ w AᵀA + λI) X = −Σ w Aᵀb``, solved by a closed-form 3x3 Cholesky factorization. It was
chosen over the classical homogeneous SVD form because:

* its gradient is the gradient of a linear solve, ``−M⁻¹ (∂M X − ∂r)``, well defined whenever the
  system is; the SVD backward divides by differences of singular values and so breaks where two
  coincide: NaN (float32) for a point at the centre of a symmetric four-camera rig, ~1e4
  (float32) to ~1e12 (float64) for identical views, where this form's gradient stays below
  1e-3 (see the tests) — SVD gradients are unfit for a training loss;
* its conditioning is the geometry's: ``M`` depends only on the viewing-ray directions (it is
  invariant to world translation and, up to a global factor, to world scale), so its condition
  number measures the baseline directly (about ``4/θ²`` for two views ``θ`` radians apart) and
  is reported by :func:`triangulate_dlt_checked`;
* it costs one batched 3x3 solve per point, independent of ``V``.

It cannot represent points at infinity, which faces never are. ``method="svd"`` gives the
homogeneous form (smallest right singular vector of the stacked ``2V x 4`` system, as
``cv2.triangulatePoints``) for comparison; avoid it inside losses.

**Conditioning.** Each view's pixels are Hartley-normalized (translated to their weighted
centroid and scaled so the mean distance to it is √2) and the same similarity is applied to
``P``; then each ``P`` is scaled so that the first three entries of its third row have unit norm
(so the equations of every view measure ``depth × normalized image error``). In the linear form
the translation cancels algebraically and the scale acts as a per-view weight that makes the
equations unit-free; in the SVD form it is the usual Hartley conditioning. A ridge
``λ = ε·(trace M + 1)`` (``ε`` the dtype's machine epsilon) keeps the solve finite when ``M`` is
singular (identical views, fewer than two views), at a relative bias of order ``ε·cond(M)``,
i.e. no more than float round-off.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

from mvface.errors import BadInputError
from mvface.geometry._checks import (
    check_finite,
    check_floating,
    check_shape,
    value_checks_enabled,
)
from mvface.geometry.projection import project_points

__all__ = [
    "Triangulation",
    "reproject",
    "triangulate_dlt",
    "triangulate_dlt_checked",
]

Method = Literal["linear", "svd"]

#: Default bound on the condition number of the normal equations for a valid triangulation.
#: Two views ``θ`` apart give about ``4/θ²``, so 1e5 rejects baselines under about 0.36°
#: (measured: 1.01e5 at 0.36°, 1.26e4 at 1°, 14.8 at 30°; the 512-view reference rig gives 2.9).
#: It flags degenerate geometry, not accuracy: depth error ≈ depth · pixel noise / (focal · θ).
DEFAULT_MAX_CONDITION = 1e5


class Triangulation(NamedTuple):
    """Result of :func:`triangulate_dlt_checked`.

    Attributes:
        points: ``(*, N, 3)`` triangulated world points, always finite (zeros where the solve
            overflowed, which also sets ``valid`` False). Differentiable.
        valid: ``(*, N)`` bool: at least ``min_views`` views with positive weight, a
            well-conditioned system, the point in front of every camera with positive weight,
            finite result.
        condition: ``(*, N)`` condition number of the (normalized) 3x3 normal equations;
            ``inf`` when singular. Not differentiable.
        reprojection_error: ``(*, N)`` weighted mean over views of the distance between the
            reprojected point and the input pixel, in pixels; ``inf`` where no view has
            positive weight. Not differentiable.
    """

    points: torch.Tensor
    valid: torch.Tensor
    condition: torch.Tensor
    reprojection_error: torch.Tensor


def reproject(points3d: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """Project triangulated points into every view.

    Args:
        points3d: ``(*, N, 3)`` world points.
        projections: ``(*, V, 3, 4)`` projection matrices.

    Returns:
        ``(*, V, N, 2)`` pixels.

    Raises:
        BadInputError: wrong shapes or NaN/Inf in ``projections``.
    """
    check_shape(points3d, ["*", "N", "3"], "points")
    return project_points(points3d.unsqueeze(-3), projections)


class _Prepared(NamedTuple):
    projections: torch.Tensor  # (*, V, 3, 4), batch broadcast
    points: torch.Tensor  # (*, V, N, 2), NaN of zero-weight entries replaced by 0
    weights: torch.Tensor  # (*, V, N), >= 0


def _prepare(
    projections: torch.Tensor, points: torch.Tensor, weights: torch.Tensor | None
) -> _Prepared:
    """Check shapes and values, broadcast, and clean zero-weight NaN pixels."""
    check_shape(projections, ["*", "V", "3", "4"], "camera")
    check_shape(points, ["*", "V", "N", "2"], "points")
    check_floating(projections, "camera")
    check_floating(points, "points")
    check_finite(projections, "camera")
    num_views = projections.shape[-3]
    if points.shape[-3] != num_views:
        raise BadInputError(
            "points",
            f"{points.shape[-3]} views of points but {num_views} projection matrices",
        )
    batch = torch.broadcast_shapes(projections.shape[:-3], points.shape[:-3])
    num_points = points.shape[-2]
    if weights is None:
        w = torch.ones((), dtype=points.dtype, device=points.device)
    else:
        check_floating(weights, "weights")
        if weights.dim() == points.dim() - 1:  # (*, V, N)
            w = weights
        elif weights.dim() == points.dim() - 2:  # (*, V)
            w = weights.unsqueeze(-1)
        else:
            raise BadInputError(
                "weights",
                f"expected shape (*, V, N) or (*, V) for points {tuple(points.shape)},"
                f" got {tuple(weights.shape)}",
            )
        check_finite(weights, "weights")
        if value_checks_enabled() and bool((weights < 0).any()):
            raise BadInputError("weights", "weights must be non-negative")
    w = w.to(points.dtype).broadcast_to((*batch, num_views, num_points))
    P = projections.broadcast_to((*batch, num_views, 3, 4))
    x = points.broadcast_to((*batch, num_views, num_points, 2))
    used = (w > 0).unsqueeze(-1)
    if value_checks_enabled():
        bad = ~torch.isfinite(x.detach()) & used
        if bool(bad.any()):
            raise BadInputError(
                "points", f"{int(bad.sum())} coordinates with positive weight are NaN or infinite"
            )
    x = torch.where(used, x, torch.zeros_like(x))
    return _Prepared(P, x, w)


def _normalized_system(prep: _Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    """Hartley-normalized DLT rows: ``A`` ``(*, V, N, 2, 4)`` and row weights ``(*, V, N)``."""
    P, x, w = prep
    tiny = torch.finfo(x.dtype).tiny
    # Per-view weighted centroid and mean distance; views without weight fall back to uniform.
    view_weight = w.sum(-1, keepdim=True)
    w_norm = torch.where(view_weight > 0, w, torch.ones_like(w))
    w_norm = w_norm / w_norm.sum(-1, keepdim=True)
    centroid = (x * w_norm.unsqueeze(-1)).sum(-2, keepdim=True)  # (*, V, 1, 2)
    spread = (torch.linalg.vector_norm(x - centroid, dim=-1) * w_norm).sum(-1)  # (*, V)
    # Unit of last resort (a single point, or all points coincide): ~ the focal length.
    focal = torch.linalg.vector_norm(P[..., 0, :3], dim=-1) / torch.linalg.vector_norm(
        P[..., 2, :3], dim=-1
    ).clamp_min(tiny)
    spread = torch.maximum(spread, 1e-3 * focal.detach())
    scale = math.sqrt(2.0) / spread  # (*, V)
    cx, cy = centroid[..., 0, 0], centroid[..., 0, 1]
    zero, one = torch.zeros_like(scale), torch.ones_like(scale)
    T = torch.stack(
        [scale, zero, -scale * cx, zero, scale, -scale * cy, zero, zero, one], dim=-1
    ).reshape(*scale.shape, 3, 3)
    P_n = T @ P
    P_n = P_n / torch.linalg.vector_norm(P_n[..., 2:3, :3], dim=-1, keepdim=True).clamp_min(tiny)
    x_n = (x - centroid) * scale[..., None, None]
    P_n = P_n.unsqueeze(-3)  # (*, V, 1, 3, 4)
    row_x = x_n[..., 0:1] * P_n[..., 2, :] - P_n[..., 0, :]
    row_y = x_n[..., 1:2] * P_n[..., 2, :] - P_n[..., 1, :]
    return torch.stack([row_x, row_y], dim=-2), w


def _normal_equations(A: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``M`` ``(*, N, 3, 3)`` and ``r`` ``(*, N, 3)`` of ``Σ_v w (A₃ X + a₄)² -> min``."""
    A3, b = A[..., :3], -A[..., 3]
    M = torch.einsum("...vnki,...vnkj,...vn->...nij", A3, A3, w)
    r = torch.einsum("...vnki,...vnk,...vn->...ni", A3, b, w)
    return M, r


def _solve_linear(M: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``(M + λI) X = r`` for the symmetric positive semi-definite ``M`` ``(*, 3, 3)``.

    A closed-form 3x3 Cholesky factorization and two substitutions: elementwise tensor
    arithmetic only, so it never waits for a GPU (``torch.linalg.solve`` reads its status back)
    and ``torch.compile`` fuses it with the rest of a loss. Cholesky is backward stable for
    positive-definite systems, which the ridge makes ``M`` (every pivot squared is at least
    ``λ``; the clamps only catch round-off).
    """
    eps = torch.finfo(M.dtype).eps
    ridge = eps * (M.diagonal(dim1=-2, dim2=-1).sum(-1) + 1.0)
    a, b, c = M[..., 0, 0] + ridge, M[..., 1, 0], M[..., 2, 0]
    d, e, f = M[..., 1, 1] + ridge, M[..., 2, 1], M[..., 2, 2] + ridge
    l00 = a.clamp_min(ridge).sqrt()
    l10, l20 = b / l00, c / l00
    l11 = (d - l10 * l10).clamp_min(ridge).sqrt()
    l21 = (e - l20 * l10) / l11
    l22 = (f - l20 * l20 - l21 * l21).clamp_min(ridge).sqrt()
    y0 = r[..., 0] / l00  # L y = r
    y1 = (r[..., 1] - l10 * y0) / l11
    y2 = (r[..., 2] - l20 * y0 - l21 * y1) / l22
    x2 = y2 / l22  # Lᵀ X = y
    x1 = (y1 - l21 * x2) / l11
    x0 = (y0 - l10 * x1 - l20 * x2) / l00
    return torch.stack([x0, x1, x2], dim=-1)


def _solve_svd(A: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    rows = A * w.sqrt()[..., None, None]  # (*, V, N, 2, 4)
    rows = rows.movedim(-4, -3)  # (*, N, V, 2, 4)
    rows = rows.reshape(*rows.shape[:-3], -1, 4)  # (*, N, 2V, 4)
    _, _, Vh = torch.linalg.svd(rows, full_matrices=False)
    homogeneous = Vh[..., -1, :]
    last = homogeneous[..., 3:]
    tiny = torch.finfo(A.dtype).tiny
    last = torch.where(last.abs() > tiny, last, torch.full_like(last, tiny))
    return homogeneous[..., :3] / last


def _triangulate(prep: _Prepared, method: Method) -> tuple[torch.Tensor, torch.Tensor]:
    A, w = _normalized_system(prep)
    M, r = _normal_equations(A, w)
    if method == "linear":
        X = _solve_linear(M, r)
    elif method == "svd":
        X = _solve_svd(A, w)
    else:
        raise BadInputError("triangulation", f"unknown method {method!r} (use 'linear' or 'svd')")
    return X, M


def triangulate_dlt(
    projections: torch.Tensor,
    points: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    method: Method = "linear",
) -> torch.Tensor:
    """Triangulate points seen in several views (weighted, normalized DLT).

    See the module docstring for the method and why it is the default. The result is always
    finite for finite cameras; it is meaningless where the geometry is degenerate, which
    :func:`triangulate_dlt_checked` reports.

    Args:
        projections: ``(*, V, 3, 4)`` projection matrices (world to pixels), ``V >= 2``.
        points: ``(*, V, N, 2)`` pixels of the ``N`` points in each view. Entries whose weight
            is 0 are ignored and may be NaN (missing observations).
        weights: non-negative confidence per observation ``(*, V, N)`` or per view ``(*, V)``,
            with the same leading dimensions ``*`` as ``points`` (the number of dimensions
            tells the two apart); None weighs all observations 1. Only ratios matter.
        method: ``"linear"`` (inhomogeneous least squares, stable gradients) or ``"svd"``
            (homogeneous DLT; gradients unstable for (near-)noiseless data).

    Returns:
        ``(*, N, 3)`` world points.

    Raises:
        BadInputError: wrong shapes, NaN/Inf cameras, NaN pixels with positive weight,
            negative weights, unknown method.

    Example:
        >>> from mvface.geometry.cameras import eg3d_intrinsics, look_at, cam2world_to_extrinsics
        >>> from mvface.geometry.cameras import projection_matrix
        >>> eyes = torch.tensor([[-1.0, 0.0, 2.5], [1.0, 0.0, 2.5]], dtype=torch.float64)
        >>> R, t = cam2world_to_extrinsics(look_at(eyes, torch.zeros(2, 3, dtype=torch.float64)))
        >>> P = projection_matrix(eg3d_intrinsics(512, 512, dtype=torch.float64), R, t)
        >>> X = torch.tensor([[0.1, -0.2, 0.05]], dtype=torch.float64)
        >>> triangulate_dlt(P, reproject(X, P)).allclose(X)
        True
    """
    prep = _prepare(projections, points, weights)
    return _triangulate(prep, method)[0]


def _condition_number(M: torch.Tensor) -> torch.Tensor:
    eigenvalues = torch.linalg.eigvalsh(M)
    smallest, largest = eigenvalues[..., 0], eigenvalues[..., -1]
    singular = ~(smallest > 0) | ~(largest > 0)
    ratio = largest / torch.where(singular, torch.ones_like(smallest), smallest)
    return torch.where(singular, torch.full_like(ratio, math.inf), ratio)


def triangulate_dlt_checked(
    projections: torch.Tensor,
    points: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    method: Method = "linear",
    max_condition: float = DEFAULT_MAX_CONDITION,
    min_views: int = 2,
) -> Triangulation:
    """Triangulate like :func:`triangulate_dlt` and flag the points that cannot be trusted.

    A point is valid when all of these hold:

    * at least ``min_views`` views have a positive weight for it;
    * the condition number of its normalized 3x3 normal equations is at most ``max_condition``
      (rays nearly parallel — identical views or too small a baseline — make it huge; two views
      ``θ`` radians apart give about ``4/θ²``);
    * it lies in front of every camera that has a positive weight for it (cheirality, with the
      sign of ``det P[:, :3]`` so that ``P`` and ``−P`` agree);
    * the solve gave a finite result.

    Invalid points keep their (finite) solution; nothing is NaN.

    Args:
        projections: ``(*, V, 3, 4)`` projection matrices (world to pixels).
        points: ``(*, V, N, 2)`` pixels; zero-weight entries may be NaN.
        weights: ``(*, V, N)``, ``(*, V)`` or None, non-negative.
        method: ``"linear"`` or ``"svd"``, as in :func:`triangulate_dlt`.
        max_condition: largest accepted condition number (default
            ``DEFAULT_MAX_CONDITION = 1e5``, about 0.36° between two views; a float32 solve
            loses about ``log10(condition)`` of its 7 digits).
        min_views: least number of views with positive weight.

    Returns:
        A :class:`Triangulation` of ``points`` ``(*, N, 3)``, ``valid`` ``(*, N)``,
        ``condition`` ``(*, N)`` and ``reprojection_error`` ``(*, N)`` (pixels).

    Raises:
        BadInputError: as :func:`triangulate_dlt`.
    """
    prep = _prepare(projections, points, weights)
    X, M = _triangulate(prep, method)
    finite = torch.isfinite(X).all(-1)
    X = torch.where(finite.unsqueeze(-1), X, torch.zeros_like(X))
    with torch.no_grad():
        P, x, w = prep.projections.detach(), prep.points.detach(), prep.weights.detach()
        used = w > 0  # (*, V, N)
        num_views = used.sum(-2)
        condition = _condition_number(M.detach())
        homogeneous = X.detach().unsqueeze(-3) @ P[..., :3].transpose(-1, -2) + P[..., None, :, 3]
        depth = homogeneous[..., 2] * torch.linalg.det(P[..., :3]).sign().unsqueeze(-1)
        in_front = ((depth > 0) | ~used).all(-2)
        tiny = torch.finfo(X.dtype).tiny
        w_depth = homogeneous[..., 2:3]
        w_depth = torch.where(w_depth.abs() > tiny, w_depth, torch.full_like(w_depth, tiny))
        distance = torch.linalg.vector_norm(homogeneous[..., :2] / w_depth - x, dim=-1)
        distance = torch.where(used, distance, torch.zeros_like(distance))
        total = w.sum(-2)
        error = (distance * w).sum(-2) / torch.where(total > 0, total, torch.ones_like(total))
        error = torch.where(total > 0, error, torch.full_like(error, math.inf))
        valid = (num_views >= min_views) & (condition <= max_condition) & in_front & finite
    return Triangulation(X, valid, condition, error)
