"""Pinhole cameras: intrinsics, extrinsics, EG3D labels and look-at rigs.

Conventions (all of :mod:`mvface.geometry`):

* **Camera axes are OpenCV's**: x to the right of the image, y down the image, the camera looks
  along +z. A point in front of the camera has camera-frame ``z > 0``.
* **Extrinsics are world-to-camera**: ``x_cam = R @ X + t`` with ``R`` ``(*, 3, 3)`` and ``t``
  ``(*, 3)``. A *cam2world* matrix ``(*, 4, 4)`` holds the camera's axes (columns of its rotation
  block, in world coordinates) and its position (last column); for a rigid camera it is the
  inverse of ``[R | t]``.
* **Rotation blocks are transposed, not inverted**, between the two forms (``R = c2w[:3, :3]ᵀ``),
  exactly as EG3D's pipeline does. This matters for matrices stored at reduced precision: the
  reference rig ``cam2world_pose.npy`` has ``|RᵀR − I|`` up to 7e-4, and its 2-D landmarks were
  generated with the transpose (they reproject to 2e-4 px with it, to 0.31 px mean with
  ``np.linalg.inv``). The translation keeps the camera position exact: ``t = −R @ position``, and
  :func:`camera_centers` returns that position, the point that maps to ``x_cam = 0``.
* **Pixels** are whatever ``K`` makes of ``(x/z, y/z)``: ``u = fx·x/z + cx``, ``v = fy·y/z + cy``,
  x to the right, y down; the functions here add no offset. With EG3D intrinsics (principal
  point ``W/2``) the image centre is at ``W/2``, i.e. the *continuous* convention: 0 at the left/top
  *edge* of the image, pixel ``i`` (0-based) spanning ``[i, i + 1)`` with its centre at
  ``i + 0.5`` — EG3D's renderer (``RaySampler``) casts pixel ``i``'s ray through normalized
  ``(i + 0.5) / resolution``, so its images and the reference data's pixel arrays are in it.
  Code that puts pixel centres at integers (OpenCV drawing, ``grid_sample(align_corners=True)``;
  image centre ``(W − 1)/2``) subtracts 0.5 from these pixels.
* **EG3D intrinsics** are normalized by the image size: ``pixel = (x/z · f + c) · resolution``
  with ``f = EG3D_FOCAL = 4.2647`` and ``c = EG3D_CENTER = 0.5``.
  :func:`normalized_to_pixel_intrinsics` scales the first row by the width and the second by the
  height (``fx = fn·W``, ``cx = cn·W``, ``fy = fn·H``, ``cy = cn·H``), so that formula holds
  exactly; its principal point ``W/2`` is the image centre in the convention above.
* **World frame of the synthetic rig** (EG3D / FFHQ-aligned heads): +y is up, the face looks
  towards +z, units are EG3D's (cameras at radius 2.7 looking at ``(0, 0, 0.2)``). Hence
  :func:`look_at` defaults to ``up = (0, 1, 0)``: the camera's y axis (down the image) is world
  −y, and faces appear upright.

Every function takes tensors with arbitrary leading batch dimensions ``*`` (broadcast against each
other), works in float32 and float64, and is differentiable.
"""

from __future__ import annotations

import torch

from mvface.errors import BadInputError
from mvface.geometry._checks import (
    check_finite,
    check_floating,
    check_intrinsics,
    check_rotation_block,
    check_shape,
    value_checks_enabled,
)

__all__ = [
    "EG3D_CENTER",
    "EG3D_FOCAL",
    "EG3D_LABEL_SIZE",
    "cam2world_to_extrinsics",
    "camera_centers",
    "camera_to_eg3d_label",
    "camera_yaw_pitch",
    "eg3d_intrinsics",
    "eg3d_label_to_camera",
    "extrinsics_to_cam2world",
    "intrinsics_matrix",
    "look_at",
    "normalized_to_pixel_intrinsics",
    "pixel_to_normalized_intrinsics",
    "projection_matrix",
]

#: EG3D's normalized focal length (focal length in units of the image size).
EG3D_FOCAL = 4.2647
#: EG3D's normalized principal point (the image centre, in units of the image size).
EG3D_CENTER = 0.5
#: Number of values of an EG3D camera label: 16 cam2world + 9 normalized intrinsics, row-major.
EG3D_LABEL_SIZE = 25

_Scalar = float | int | torch.Tensor


def _as_float_tensors(*values: _Scalar) -> list[torch.Tensor]:
    """Convert scalars/tensors to tensors of one common floating dtype and device."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else None
    dtype = torch.get_default_dtype()
    floating = [t.dtype for t in tensors if t.is_floating_point()]
    if floating:
        dtype = floating[0]
        for d in floating[1:]:
            dtype = torch.promote_types(dtype, d)
    return [torch.as_tensor(v, dtype=dtype, device=device) for v in values]


def intrinsics_matrix(fx: _Scalar, fy: _Scalar, cx: _Scalar, cy: _Scalar) -> torch.Tensor:
    """Build pinhole intrinsics matrices ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.

    Args:
        fx: focal length along x, ``(*)`` tensor or number (pixels, or image widths when
            normalized).
        fy: focal length along y, ``(*)`` (pixels, or image heights).
        cx: principal point x, ``(*)`` (pixels from the left image edge, or image widths).
        cy: principal point y, ``(*)`` (pixels from the top image edge, or image heights).

    Returns:
        ``(*, 3, 3)`` intrinsics, the inputs broadcast against each other. The dtype is the
        floating dtype of the tensor inputs (torch's default dtype when all are numbers).

    Example:
        >>> intrinsics_matrix(500.0, 500.0, 256.0, 256.0).shape
        torch.Size([3, 3])
    """
    fx_t, fy_t, cx_t, cy_t = torch.broadcast_tensors(*_as_float_tensors(fx, fy, cx, cy))
    zero = torch.zeros_like(fx_t)
    one = torch.ones_like(fx_t)
    rows = (fx_t, zero, cx_t, zero, fy_t, cy_t, zero, zero, one)
    return torch.stack(rows, dim=-1).reshape(*fx_t.shape, 3, 3)


def eg3d_intrinsics(
    width: float,
    height: float,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """EG3D's intrinsics in pixels for an image of ``width`` x ``height``.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        dtype: floating dtype (torch's default when None).
        device: device of the result.

    Returns:
        ``(3, 3)``: ``[[4.2647·W, 0, 0.5·W], [0, 4.2647·H, 0.5·H], [0, 0, 1]]``.

    Example:
        >>> eg3d_intrinsics(512, 512)[0, 0].item()  # 4.2647 * 512
        2183.5263671875
    """
    Kn = intrinsics_matrix(
        torch.tensor(EG3D_FOCAL, dtype=dtype, device=device), EG3D_FOCAL, EG3D_CENTER, EG3D_CENTER
    )
    return normalized_to_pixel_intrinsics(Kn, width, height)


def _image_scale(K: torch.Tensor, width: _Scalar, height: _Scalar) -> torch.Tensor:
    """``(*, 3, 1)`` row scale ``[W, H, 1]`` broadcastable against ``K`` ``(*, 3, 3)``."""
    w, h = (torch.as_tensor(v, dtype=K.dtype, device=K.device) for v in (width, height))
    w, h = torch.broadcast_tensors(w, h)
    if value_checks_enabled() and not bool(((w > 0) & (h > 0)).all()):
        raise BadInputError("camera", "image width and height must be positive")
    return torch.stack([w, h, torch.ones_like(w)], dim=-1).unsqueeze(-1)


def normalized_to_pixel_intrinsics(
    K_normalized: torch.Tensor, width: _Scalar, height: _Scalar
) -> torch.Tensor:
    """Scale normalized (EG3D) intrinsics to pixels.

    The first row is multiplied by the width and the second by the height:
    ``fx = fn·W``, ``cx = cn·W``, ``fy = fn·H``, ``cy = cn·H`` (skew scales with W). With EG3D's
    ``fn = 4.2647``, ``cn = 0.5`` this gives ``pixel = (x/z · 4.2647 + 0.5) · W`` exactly, the
    principal point at the image centre ``W/2`` (pixel edges at integers, see the module
    docstring).

    Args:
        K_normalized: ``(*, 3, 3)`` intrinsics in image widths/heights.
        width: image width in pixels, a number or ``(*)`` tensor.
        height: image height in pixels, a number or ``(*)`` tensor.

    Returns:
        ``(*, 3, 3)`` intrinsics in pixels.

    Raises:
        BadInputError: wrong shape, NaN/Inf, singular matrix, non-positive size.
    """
    check_intrinsics(K_normalized)
    return K_normalized * _image_scale(K_normalized, width, height)


def pixel_to_normalized_intrinsics(
    K_pixel: torch.Tensor, width: _Scalar, height: _Scalar
) -> torch.Tensor:
    """Inverse of :func:`normalized_to_pixel_intrinsics`: divide row 0 by W and row 1 by H.

    Args:
        K_pixel: ``(*, 3, 3)`` intrinsics in pixels.
        width: image width in pixels, a number or ``(*)`` tensor.
        height: image height in pixels, a number or ``(*)`` tensor.

    Returns:
        ``(*, 3, 3)`` normalized intrinsics (in image widths/heights).

    Raises:
        BadInputError: wrong shape, NaN/Inf, singular matrix, non-positive size.
    """
    check_intrinsics(K_pixel)
    return K_pixel / _image_scale(K_pixel, width, height)


def cam2world_to_extrinsics(cam2world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-camera extrinsics of cam2world matrices.

    ``R = c2w[:3, :3]ᵀ`` (transposed, as EG3D does; see the module docstring) and
    ``t = −R @ c2w[:3, 3]``, so the camera position ``c2w[:3, 3]`` maps to ``x_cam = 0``. The last
    row of ``cam2world`` is not read.

    Args:
        cam2world: ``(*, 4, 4)`` camera-to-world matrices (OpenCV camera axes).

    Returns:
        ``R`` ``(*, 3, 3)`` and ``t`` ``(*, 3)`` with ``x_cam = R @ X + t``.

    Raises:
        BadInputError: wrong shape, NaN/Inf, or a rotation block that is singular or mirrored.

    Example:
        >>> R, t = cam2world_to_extrinsics(torch.eye(4))
        >>> R.shape, t.shape
        (torch.Size([3, 3]), torch.Size([3]))
    """
    check_shape(cam2world, ["*", "4", "4"], "camera")
    check_finite(cam2world, "camera")
    rotation_c2w = cam2world[..., :3, :3]
    check_rotation_block(rotation_c2w)
    R = rotation_c2w.transpose(-1, -2)
    t = -(R @ cam2world[..., :3, 3:4]).squeeze(-1)
    return R, t


def _check_extrinsics(R: torch.Tensor, t: torch.Tensor) -> None:
    check_rotation_block(R)
    check_shape(t, ["*", "3"], "camera")
    check_floating(t, "camera")
    check_finite(t, "camera")


def _stack_extrinsics(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(*, 3, 4)`` matrices ``[R | t]``, batch dimensions broadcast."""
    batch = torch.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    return torch.cat([R.broadcast_to((*batch, 3, 3)), t.broadcast_to((*batch, 3))[..., None]], -1)


def camera_centers(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Camera positions in world coordinates: the points ``X`` with ``R @ X + t = 0``.

    Args:
        R: ``(*, 3, 3)`` world-to-camera rotations.
        t: ``(*, 3)`` world-to-camera translations (world units).

    Returns:
        ``(*, 3)`` centres ``−R⁻¹ t`` (``−Rᵀ t`` for an exact rotation), world units.

    Raises:
        BadInputError: wrong shape, NaN/Inf, or a singular/mirrored rotation.
    """
    _check_extrinsics(R, t)
    batch = torch.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    R_b = R.broadcast_to((*batch, 3, 3))
    t_b = t.broadcast_to((*batch, 3)).unsqueeze(-1)
    return -torch.linalg.solve(R_b, t_b).squeeze(-1)


def camera_yaw_pitch(cam2world: torch.Tensor) -> torch.Tensor:
    """Yaw and pitch (radians) of camera positions seen from the world origin.

    In the world frame of the synthetic rig (+y up, the face looks towards +z):

    * **yaw** is the camera's azimuth around world +y: 0 is the frontal camera on the +z axis,
      positive yaw moves the camera towards world +x (the image's right in the frontal view, the
      subject's left); the head then appears turned towards the image's left.
    * **pitch** is the camera's elevation above the x-z plane: positive looks down on the head.

    Args:
        cam2world: ``(*, 4, 4)`` cam2world matrices.

    Returns:
        ``(*, 2)`` ``[yaw, pitch]`` of each camera centre, radians.

    Example:
        >>> c2w = look_at(torch.tensor([2.7, 0.0, 0.0]), torch.zeros(3))
        >>> camera_yaw_pitch(c2w).rad2deg().round().tolist()
        [90.0, 0.0]
    """
    R, t = cam2world_to_extrinsics(cam2world)
    center = camera_centers(R, t)
    yaw = torch.atan2(center[..., 0], center[..., 2])
    pitch = torch.atan2(center[..., 1], torch.linalg.vector_norm(center[..., [0, 2]], dim=-1))
    return torch.stack([yaw, pitch], dim=-1)


def extrinsics_to_cam2world(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Cam2world matrices of world-to-camera extrinsics.

    The rotation block is ``Rᵀ`` and the last column the camera centre ``−R⁻¹ t``; exact inverse
    of :func:`cam2world_to_extrinsics` (also for rotations stored at reduced precision).

    Args:
        R: ``(*, 3, 3)`` world-to-camera rotations.
        t: ``(*, 3)`` world-to-camera translations.

    Returns:
        ``(*, 4, 4)`` cam2world matrices with last row ``[0, 0, 0, 1]``.

    Raises:
        BadInputError: wrong shape, NaN/Inf, or a singular/mirrored rotation.
    """
    center = camera_centers(R, t)
    R_b = torch.broadcast_to(R, (*center.shape[:-1], 3, 3))
    top = torch.cat([R_b.transpose(-1, -2), center.unsqueeze(-1)], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def projection_matrix(K: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Projection matrices ``P = K @ [R | t]`` (world points to pixels).

    Args:
        K: ``(*, 3, 3)`` intrinsics in pixels.
        R: ``(*, 3, 3)`` world-to-camera rotations.
        t: ``(*, 3)`` world-to-camera translations.

    Returns:
        ``(*, 3, 4)``. With ``K``'s last row ``[0, 0, 1]`` the third homogeneous coordinate of
        ``P @ [X, 1]`` is the camera-frame depth ``z``.

    Raises:
        BadInputError: wrong shape, NaN/Inf, singular ``K`` or rotation.
    """
    check_intrinsics(K)
    _check_extrinsics(R, t)
    return K @ _stack_extrinsics(R, t)


def eg3d_label_to_camera(
    label: torch.Tensor, width: _Scalar, height: _Scalar
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split EG3D camera labels into pixel intrinsics and extrinsics.

    Args:
        label: ``(*, 25)``: 16 row-major cam2world values (OpenCV axes) then 9 row-major
            normalized intrinsics, as in EG3D's ``dataset.json``.
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        ``K`` ``(*, 3, 3)`` intrinsics in pixels, ``R`` ``(*, 3, 3)`` and ``t`` ``(*, 3)``
        world-to-camera extrinsics.

    Raises:
        BadInputError: wrong shape, NaN/Inf, singular intrinsics or rotation.

    Example:
        >>> label = torch.cat([torch.eye(4).flatten(), eg3d_intrinsics(1, 1).flatten()])
        >>> K, R, t = eg3d_label_to_camera(label, 512, 512)
        >>> round(K[0, 2].item())
        256
    """
    check_shape(label, ["*", str(EG3D_LABEL_SIZE)], "camera")
    check_floating(label, "camera")
    check_finite(label, "camera")
    cam2world = label[..., :16].reshape(*label.shape[:-1], 4, 4)
    K_normalized = label[..., 16:].reshape(*label.shape[:-1], 3, 3)
    R, t = cam2world_to_extrinsics(cam2world)
    return normalized_to_pixel_intrinsics(K_normalized, width, height), R, t


def camera_to_eg3d_label(
    K: torch.Tensor, R: torch.Tensor, t: torch.Tensor, width: _Scalar, height: _Scalar
) -> torch.Tensor:
    """EG3D camera labels of pinhole cameras; inverse of :func:`eg3d_label_to_camera`.

    Args:
        K: ``(*, 3, 3)`` intrinsics in pixels.
        R: ``(*, 3, 3)`` world-to-camera rotations.
        t: ``(*, 3)`` world-to-camera translations.
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        ``(*, 25)`` labels: row-major cam2world then row-major normalized intrinsics.

    Raises:
        BadInputError: wrong shape, NaN/Inf, singular intrinsics or rotation.
    """
    cam2world = extrinsics_to_cam2world(R, t)
    K_normalized = pixel_to_normalized_intrinsics(K, width, height)
    batch = torch.broadcast_shapes(cam2world.shape[:-2], K_normalized.shape[:-2])
    return torch.cat(
        [
            cam2world.broadcast_to((*batch, 4, 4)).flatten(-2),
            K_normalized.broadcast_to((*batch, 3, 3)).flatten(-2),
        ],
        dim=-1,
    )


def look_at(
    eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None
) -> torch.Tensor:
    """Cam2world matrices of cameras at ``eye`` looking at ``target``, OpenCV axes.

    The camera z axis points from ``eye`` to ``target``, x is ``normalize(z × up)`` (image right)
    and y is ``z × x`` (image down, i.e. against ``up``). With the default ``up = (0, 1, 0)`` this
    reproduces the reference rig ``cam2world_pose.npy`` (EG3D's ``LookAtPoseSampler``) to 0.03°:
    faces of the FFHQ-aligned world frame (+y up) are upright in the image.

    Args:
        eye: ``(*, 3)`` camera positions (world units).
        target: ``(*, 3)`` points looked at.
        up: ``(*, 3)`` world up direction; default ``(0, 1, 0)``. Need not be unit length.

    Returns:
        ``(*, 4, 4)`` cam2world matrices.

    Raises:
        BadInputError: NaN/Inf, ``eye == target``, or viewing direction parallel to ``up``.

    Example:
        >>> c2w = look_at(torch.tensor([0.0, 0.0, 2.7]), torch.tensor([0.0, 0.0, 0.2]))
        >>> c2w[:3, 2].tolist()  # looks along world -z
        [0.0, 0.0, -1.0]
    """
    check_shape(eye, ["*", "3"], "camera")
    check_shape(target, ["*", "3"], "camera")
    check_floating(eye, "camera")
    if up is None:
        up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device)
    check_shape(up, ["*", "3"], "camera")
    for value in (eye, target, up):
        check_finite(value, "camera")
    eye, target, up = torch.broadcast_tensors(eye, target, up)
    forward = target - eye
    right = torch.linalg.cross(forward, up)
    forward_norm = torch.linalg.vector_norm(forward, dim=-1, keepdim=True)
    right_norm = torch.linalg.vector_norm(right, dim=-1, keepdim=True)
    if value_checks_enabled():
        if bool((forward_norm == 0).any()):
            raise BadInputError("camera", "look_at: eye and target coincide")
        scale = forward_norm * torch.linalg.vector_norm(up, dim=-1, keepdim=True)
        if bool((right_norm <= 1e-6 * scale).any()):
            raise BadInputError("camera", "look_at: viewing direction is parallel to up")
    tiny = torch.finfo(eye.dtype).tiny
    z = forward / forward_norm.clamp_min(tiny)
    x = right / right_norm.clamp_min(tiny)
    y = torch.linalg.cross(z, x)
    top = torch.stack([x, y, z, eye], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)
