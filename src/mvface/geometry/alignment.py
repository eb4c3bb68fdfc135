"""Similarity alignment of corresponding point sets (Umeyama 1991).

``dst ≈ s · R @ src + t`` with a scale ``s > 0``, a proper rotation ``R`` (``det R = +1``, never a
reflection) and a translation ``t``, found in closed form by least squares:
``Σ_n w_n |dst_n − (s R src_n + t)|² -> min``. Points are ``(*, N, D)``: batch dimensions in
front, ``N`` points of dimension ``D`` (2 or 3, any ``D`` works).
"""

from __future__ import annotations

import torch

from mvface.errors import BadInputError
from mvface.geometry._checks import check_finite, check_floating, check_shape, value_checks_enabled

__all__ = ["apply_similarity", "umeyama"]


def umeyama(
    src: torch.Tensor,
    dst: torch.Tensor,
    with_scale: bool = True,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares similarity (or rigid) transform mapping ``src`` onto ``dst``.

    Umeyama's closed form: with weighted centroids ``μ``, centred points and the cross-covariance
    ``Σ = Σ_n w_n d_n s_nᵀ / Σ w = U S Vᵀ``, ``R = U diag(1, .., 1, sign(det U det V)) Vᵀ``,
    ``s = tr(S·diag(...)) / σ²_src`` and ``t = μ_dst − s R μ_src``.

    Differentiable through :func:`torch.linalg.svd`; the gradient is finite when the singular
    values of ``Σ`` are distinct (generic point sets). The result is not unique when ``src`` is
    degenerate (all points equal, collinear, or planar with ``D = 3`` and a reflection-like
    ``dst``); it stays finite.

    Args:
        src: ``(*, N, D)`` source points.
        dst: ``(*, N, D)`` target points (same units as wanted for ``t``).
        with_scale: estimate the scale; when False ``s = 1`` (rigid alignment).
        weights: ``(*, N)`` non-negative weights per point, or None for equal weights.

    Returns:
        ``scale`` ``(*)``, ``R`` ``(*, D, D)`` and ``t`` ``(*, D)`` with
        ``dst ≈ scale · R @ src + t``.

    Raises:
        BadInputError: wrong shapes, NaN/Inf, negative or all-zero weights.

    Example:
        >>> src = torch.randn(10, 3, dtype=torch.float64)
        >>> s, R, t = umeyama(src, 2.0 * src + 1.0)
        >>> round(s.item(), 6), torch.allclose(R, torch.eye(3, dtype=torch.float64))
        (2.0, True)
    """
    check_shape(src, ["*", "N", "D"], "points")
    check_shape(dst, ["*", "N", "D"], "points")
    check_floating(src, "points")
    check_floating(dst, "points")
    if src.shape[-2:] != dst.shape[-2:]:
        raise BadInputError(
            "points", f"src {tuple(src.shape)} and dst {tuple(dst.shape)} do not correspond"
        )
    check_finite(src, "points")
    check_finite(dst, "points")
    batch = torch.broadcast_shapes(src.shape[:-2], dst.shape[:-2])
    num_points, dim = src.shape[-2:]
    src = src.broadcast_to((*batch, num_points, dim))
    dst = dst.broadcast_to((*batch, num_points, dim))
    if weights is None:
        w = torch.full((*batch, num_points), 1.0 / num_points, dtype=src.dtype, device=src.device)
    else:
        check_shape(weights, ["*", "N"], "weights")
        check_finite(weights, "weights")
        if value_checks_enabled() and bool((weights < 0).any()):
            raise BadInputError("weights", "weights must be non-negative")
        w = weights.to(src.dtype).broadcast_to((*batch, num_points))
        total = w.sum(-1, keepdim=True)
        if value_checks_enabled() and bool((total <= 0).any()):
            raise BadInputError("weights", "all weights are zero")
        w = w / total
    wc = w.unsqueeze(-1)  # (*, N, 1)
    mu_src = (wc * src).sum(-2)
    mu_dst = (wc * dst).sum(-2)
    src_c = src - mu_src.unsqueeze(-2)
    dst_c = dst - mu_dst.unsqueeze(-2)
    covariance = (dst_c * wc).transpose(-1, -2) @ src_c  # (*, D, D)
    U, S, Vh = torch.linalg.svd(covariance)
    with torch.no_grad():
        sign = torch.linalg.det(U) * torch.linalg.det(Vh)
        sign = torch.where(sign < 0, -torch.ones_like(sign), torch.ones_like(sign))
        correction = torch.ones_like(S)
        correction[..., -1] = sign
    R = (U * correction.unsqueeze(-2)) @ Vh
    if with_scale:
        variance = (wc * src_c.square()).sum((-2, -1))
        tiny = torch.finfo(src.dtype).tiny
        scale = (S * correction).sum(-1) / variance.clamp_min(tiny)
    else:
        scale = torch.ones(batch, dtype=src.dtype, device=src.device)
    t = mu_dst - scale.unsqueeze(-1) * (R @ mu_src.unsqueeze(-1)).squeeze(-1)
    return scale, R, t


def apply_similarity(
    points: torch.Tensor, scale: torch.Tensor | float, R: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Apply ``scale · R @ p + t`` to every point.

    Args:
        points: ``(*, N, D)`` points.
        scale: ``(*)`` scales (a number or 0-dim tensor for all).
        R: ``(*, D, D)`` rotations.
        t: ``(*, D)`` translations.

    Returns:
        ``(*, N, D)`` transformed points.

    Raises:
        BadInputError: wrong shapes.
    """
    check_shape(points, ["*", "N", "D"], "points")
    check_shape(R, ["*", "D", "D"], "rotation")
    check_shape(t, ["*", "D"], "translation")
    scale_t = torch.as_tensor(scale, dtype=points.dtype, device=points.device)
    return scale_t[..., None, None] * (points @ R.transpose(-1, -2)) + t.unsqueeze(-2)
