"""3DDFA_V2's 3D morphable model: 62 parameters -> 68 posed 3D keypoints and a head pose.

The parameters (:data:`NUM_PARAMS`) are 12 of pose (a scaled rotation and a translation,
``P = [s R | t]``, into the 120-pixel crop frame, y up, 1-based), 40 of shape and 10 of
expression; the keypoints are ``X = R (u + W_shp a_shp + W_exp a_exp) + t`` with the 68
keypoint rows of 3DDFA_V2's ``bfm_noneck_v3`` bases (:class:`KeypointBasis`, read from the
release's ``.npz`` files). The network that regresses the parameters and the landmark model
around it are :mod:`mvface.models.tddfa`.

Example:
    >>> basis = KeypointBasis.zeros()
    >>> basis(torch.zeros(2, NUM_PARAMS)).shape
    torch.Size([2, 68, 3])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mvface.errors import BadInputError
from mvface.geometry.rotations import rotation_to_euler

__all__ = [
    "BASIS_FILE",
    "INPUT_SIZE",
    "NUM_EXPR",
    "NUM_PARAMS",
    "NUM_SHAPE",
    "PARAM_STATS_FILE",
    "KeypointBasis",
    "crop_points",
    "pose_from_params",
    "split_params",
]

#: The release files the basis is read from (see :meth:`KeypointBasis.from_release`).
PARAM_STATS_FILE = "param_mean_std_62d_120x120.npz"
BASIS_FILE = "bfm_68kp.npz"

#: Side of the network input, pixels.
INPUT_SIZE = 120

#: Number of regressed parameters: 12 pose (3 x 4 ``[s R | t]``, row-major), 40 shape, 10 expr.
NUM_PARAMS = 62
NUM_SHAPE, NUM_EXPR = 40, 10


class KeypointBasis(nn.Module):
    """Parameter statistics and the 68-keypoint 3DMM bases, as buffers (move with ``.to``).

    Buffers (float32): ``param_mean``, ``param_std`` (62,); ``u_base`` (204,); ``w_shp_base``
    (204, 40); ``w_exp_base`` (204, 10). Rows of the bases are x, y, z interleaved per point.

    Args:
        param_mean: (62,) mean of the parameters.
        param_std: (62,) standard deviation of the parameters.
        u_base: (204,) mean keypoints.
        w_shp_base: (204, 40) shape basis.
        w_exp_base: (204, 10) expression basis.
    """

    param_mean: torch.Tensor
    param_std: torch.Tensor
    u_base: torch.Tensor
    w_shp_base: torch.Tensor
    w_exp_base: torch.Tensor

    def __init__(
        self,
        param_mean: torch.Tensor,
        param_std: torch.Tensor,
        u_base: torch.Tensor,
        w_shp_base: torch.Tensor,
        w_exp_base: torch.Tensor,
    ) -> None:
        super().__init__()
        shapes = {
            "param_mean": (param_mean, (NUM_PARAMS,)),
            "param_std": (param_std, (NUM_PARAMS,)),
            "u_base": (u_base, (204,)),
            "w_shp_base": (w_shp_base, (204, NUM_SHAPE)),
            "w_exp_base": (w_exp_base, (204, NUM_EXPR)),
        }
        for name, (value, shape) in shapes.items():
            tensor = torch.as_tensor(value, dtype=torch.float32)
            if tuple(tensor.shape) != shape:
                raise BadInputError(name, f"expected shape {shape}, got {tuple(tensor.shape)}")
            if not torch.isfinite(tensor).all():
                raise BadInputError(name, "contains NaN or infinite values")
            self.register_buffer(name, tensor.clone())

    @classmethod
    def zeros(cls) -> KeypointBasis:
        """A placeholder of the right shapes (std 1, everything else 0), for shape tests."""
        return cls(
            torch.zeros(NUM_PARAMS),
            torch.ones(NUM_PARAMS),
            torch.zeros(204),
            torch.zeros(204, NUM_SHAPE),
            torch.zeros(204, NUM_EXPR),
        )

    @classmethod
    def from_release(cls, folder: Path) -> KeypointBasis:
        """Read ``param_mean_std_62d_120x120.npz`` and ``bfm_68kp.npz`` from ``folder``."""
        try:
            with (
                np.load(folder / PARAM_STATS_FILE, allow_pickle=False) as stats,
                np.load(folder / BASIS_FILE, allow_pickle=False) as bfm,
            ):
                return cls(
                    torch.from_numpy(stats["mean"]),
                    torch.from_numpy(stats["std"]),
                    torch.from_numpy(bfm["u_base"].reshape(-1)),
                    torch.from_numpy(bfm["w_shp_base"][:, :NUM_SHAPE]),
                    torch.from_numpy(bfm["w_exp_base"][:, :NUM_EXPR]),
                )
        except (KeyError, OSError, ValueError) as exc:
            raise BadInputError(
                folder, f"unreadable 3DDFA_V2 bases or statistics ({exc})"
            ) from None

    def denormalize(self, out: torch.Tensor) -> torch.Tensor:
        """Network output ``(N, 62)`` -> parameters ``param = out * std + mean`` ``(N, 62)``."""
        return out * self.param_std.to(out) + self.param_mean.to(out)

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        """Posed keypoints ``X = R (u + W_shp a_shp + W_exp a_exp) + t`` of parameters.

        Args:
            params: ``(N, 62)`` de-normalized parameters.

        Returns:
            ``(N, 68, 3)`` points in 3DDFA's 120-pixel crop frame: x right, y **up**, z toward
            the camera, 1-based (``u = X0 - 1``, ``v = 120 - X1`` are 0-based crop pixels).
        """
        R, offset, alpha_shp, alpha_exp = split_params(params)
        flat = (
            self.u_base.to(params)
            + alpha_shp @ self.w_shp_base.to(params).T
            + alpha_exp @ self.w_exp_base.to(params).T
        )
        vertices = flat.reshape(-1, 68, 3)  # == reshape(3, 68, order="F").T per face
        return vertices @ R.transpose(1, 2) + offset[:, None, :]


def split_params(
    params: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``(N, 62)`` parameters (3DDFA_V2 ``_parse_param``).

    Returns:
        ``R`` ``(N, 3, 3)`` scaled rotation (model space -> y-up crop frame), ``offset``
        ``(N, 3)`` crop pixels, ``alpha_shp`` ``(N, 40)``, ``alpha_exp`` ``(N, 10)``.
    """
    if params.ndim != 2 or params.shape[1] != NUM_PARAMS:
        raise ValueError(f"expected parameters (N, {NUM_PARAMS}), got {tuple(params.shape)}")
    P = params[:, :12].reshape(-1, 3, 4)
    return P[:, :, :3], P[:, :, 3], params[:, 12 : 12 + NUM_SHAPE], params[:, 12 + NUM_SHAPE :]


def crop_points(X: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """3DDFA crop-frame points ``(*, 68, 3)`` (y up, 1-based) -> 0-based crop pixels, y down.

    ``u = X0 - 1``, ``v = size - X1``, ``z = X2 - 1`` (3DDFA_V2 ``similar_transform``).
    """
    return torch.stack([X[..., 0] - 1, size - X[..., 1], X[..., 2] - 1], dim=-1)


def pose_from_params(params: np.ndarray, scale_xy: np.ndarray | None = None) -> np.ndarray:
    """Head pose ``[pitch, yaw, roll]`` (radians, AFLW2000-3D ``Pose_Para`` convention).

    The scaled rotation ``R`` of the parameters maps model space into the y-up crop frame, as
    ``s R(Pose_Para)`` does into the y-up image frame of AFLW2000-3D. Its rows are first scaled
    to image pixels (``scale_xy``: non-square crops), then the scale is removed by the polar
    decomposition (nearest rotation, ``U Vᵀ`` of the SVD) and the angles are read with
    :func:`mvface.geometry.rotations.rotation_to_euler`.

    Args:
        params: ``(N, 62)`` de-normalized parameters.
        scale_xy: ``(N, 2)`` image pixels per crop pixel along x and y, or ``None`` (square).

    Returns:
        ``(N, 3)`` float64 ``[pitch, yaw, roll]`` radians.
    """
    p = np.asarray(params, np.float64).reshape(-1, NUM_PARAMS)
    R = p[:, :12].reshape(-1, 3, 4)[:, :, :3]
    if scale_xy is not None:
        s = np.asarray(scale_xy, np.float64).reshape(-1, 2)
        rows = np.stack([s[:, 0], s[:, 1], s.mean(axis=1)], axis=1)
        R = rows[:, :, None] * R
    U, _, Vt = np.linalg.svd(R)
    flip = np.sign(np.linalg.det(U @ Vt))  # a reflection would mean a degenerate estimate
    U[:, :, 2] *= flip[:, None]
    return rotation_to_euler(torch.from_numpy(U @ Vt)).numpy()
