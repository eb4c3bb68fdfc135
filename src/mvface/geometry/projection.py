"""Moving points between world, camera and pixel coordinates.

Conventions are those of :mod:`mvface.geometry.cameras`: OpenCV camera axes (x right, y down,
looking along +z), world-to-camera extrinsics ``x_cam = R @ X + t``, projection matrices
``P = K @ [R | t]`` ``(*, 3, 4)`` mapping world points to pixels (0 at the image's left/top edge),
depth = camera-frame ``z`` in world units.

Points carry their own point dimension ``N`` before the coordinates: ``X`` is ``(*, N, 3)`` and a
camera ``(*, 3, 4)``. The leading dimensions broadcast, so one point set seen by ``V`` views is
``X`` ``(B, 1, N, 3)`` with ``P`` ``(B, V, 3, 4)`` giving pixels ``(B, V, N, 2)``.

Points on the camera plane (depth 0) project to infinity; points behind the camera (depth < 0)
project to the mirrored pixel, as in any pinhole model: test the depth where that matters.
"""

from __future__ import annotations

import torch

from mvface.geometry._checks import check_finite, check_floating, check_intrinsics, check_shape
from mvface.geometry.cameras import _check_extrinsics

__all__ = [
    "project_points",
    "project_points_with_depth",
    "transform_points",
    "unproject_points",
]


def _check_points(X: torch.Tensor, dims: int, name: str) -> None:
    check_shape(X, ["*", "N", str(dims)], name)
    check_floating(X, name)


def transform_points(R: torch.Tensor, t: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Rigidly move world points into camera frames: ``x_cam = R @ X + t``.

    Args:
        R: ``(*, 3, 3)`` world-to-camera rotations.
        t: ``(*, 3)`` world-to-camera translations (world units).
        X: ``(*, N, 3)`` world points.

    Returns:
        ``(*, N, 3)`` camera-frame points (OpenCV axes; ``z`` is the depth).

    Raises:
        BadInputError: wrong shapes, NaN/Inf or singular rotation in the camera.

    Example:
        >>> transform_points(torch.eye(3), torch.tensor([0.0, 0.0, 2.0]), torch.zeros(5, 3))[0]
        tensor([0., 0., 2.])
    """
    _check_extrinsics(R, t)
    _check_points(X, 3, "points")
    return X @ R.transpose(-1, -2) + t.unsqueeze(-2)


def project_points_with_depth(
    X: torch.Tensor, P: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points to pixels and return their depths too.

    Args:
        X: ``(*, N, 3)`` world points.
        P: ``(*, 3, 4)`` projection matrices ``K @ [R | t]``.

    Returns:
        ``pixels`` ``(*, N, 2)`` (x right, y down, 0 at the left/top image edge) and ``depth``
        ``(*, N)``: the third homogeneous coordinate ``P[2] @ [X, 1]``, which is the camera-frame
        ``z`` (world units) for ``P`` from :func:`~mvface.geometry.cameras.projection_matrix` with
        ``K``'s last row ``[0, 0, 1]``.

    Raises:
        BadInputError: wrong shapes or NaN/Inf in ``P``.
    """
    check_shape(P, ["*", "3", "4"], "camera")
    check_floating(P, "camera")
    check_finite(P, "camera")
    _check_points(X, 3, "points")
    homogeneous = X @ P[..., :3].transpose(-1, -2) + P[..., 3].unsqueeze(-2)
    depth = homogeneous[..., 2]
    return homogeneous[..., :2] / depth.unsqueeze(-1), depth


def project_points(X: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """Project world points to pixels: ``(u, v) = (p0, p1) / p2`` with ``p = P @ [X, 1]``.

    Args:
        X: ``(*, N, 3)`` world points.
        P: ``(*, 3, 4)`` projection matrices ``K @ [R | t]``.

    Returns:
        ``(*, N, 2)`` pixels (x right, y down, 0 at the left/top image edge).

    Raises:
        BadInputError: wrong shapes or NaN/Inf in ``P``.

    Example:
        >>> from mvface.geometry.cameras import eg3d_intrinsics
        >>> Rt = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2.7]])
        >>> P = eg3d_intrinsics(512, 512) @ Rt
        >>> project_points(torch.zeros(1, 3), P)
        tensor([[256., 256.]])
    """
    return project_points_with_depth(X, P)[0]


def unproject_points(
    pixels: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Lift pixels with known depth back to world points; inverse of projection.

    ``x_cam = depth · K⁻¹ [u, v, 1]`` then ``X = R⁻¹ (x_cam − t)``.

    Args:
        pixels: ``(*, N, 2)`` pixels (0 at the left/top image edge).
        depth: ``(*, N)`` camera-frame ``z`` of each pixel (world units).
        K: ``(*, 3, 3)`` intrinsics in pixels, last row ``[0, 0, 1]``.
        R: ``(*, 3, 3)`` world-to-camera rotations.
        t: ``(*, 3)`` world-to-camera translations.

    Returns:
        ``(*, N, 3)`` world points.

    Raises:
        BadInputError: wrong shapes, NaN/Inf or singular matrices in the camera.
    """
    check_intrinsics(K)
    _check_extrinsics(R, t)
    _check_points(pixels, 2, "pixels")
    check_shape(depth, ["*", "N"], "depth")
    homogeneous = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1)
    rays = homogeneous @ torch.linalg.inv(K).transpose(-1, -2)
    x_cam = rays * depth.unsqueeze(-1)
    return (x_cam - t.unsqueeze(-2)) @ torch.linalg.inv(R).transpose(-1, -2)
