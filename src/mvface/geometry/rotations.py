"""Head-pose Euler angles in the convention of AFLW2000-3D / 300W-LP ``Pose_Para``.

``Pose_Para = [pitch, yaw, roll, tx, ty, tz, s]`` (radians) is the pose of Zhu et al.'s 3DMM
fitting (3DDFA, CVPR 2016). Their MATLAB ``RotationMatrix(phi=pitch, gamma=yaw, theta=roll)`` is::

    R_x = [1 0 0; 0 cos φ sin φ; 0 −sin φ cos φ]
    R_y = [cos γ 0 −sin γ; 0 1 0; sin γ 0 cos γ]
    R_z = [cos θ sin θ 0; −sin θ cos θ 0; 0 0 1]
    R   = R_x · R_y · R_z

and the 68 landmarks of a face with model-space vertices ``v`` (BFM: x toward the subject's left
= image right, y up, z out of the face toward the camera) are ``pt3d = s · R · v + t`` in a frame
with x right and **y up**; the stored ``pt3d_68`` then flips y to 1-based image rows
(``y_img = H + 1 − y``).

:func:`euler_to_rotation` returns exactly this ``R`` (model space -> y-up image frame).
In the usual right-handed active form it is ``R = Rx(−pitch) · Ry(−yaw) · Rz(−roll)``, i.e.
``Rᵀ = Rz(roll) · Ry(yaw) · Rx(pitch)`` — ``scipy``'s ``Rotation.from_euler("xyz", [pitch, yaw,
roll]).as_matrix().T``. The transposed form used by face3d / 3DDFA-python (``Rz·Ry·Rx`` with the
textbook matrices) is *not* what the data says: Umeyama-aligning the BFM mean shape to AFLW2000-3D
``pt3d_68`` recovers this ``R`` to a median 1.4° (the residual is the subject's shape and
expression), its transpose to 53°.

Signs, as seen in the image (checked on AFLW2000-3D):

* **pitch > 0**: the face turns up (chin forward/up, nose tip moves up in the image);
* **yaw > 0**: the face turns toward the image's left (the subject turns to their right; the nose
  tip moves left of the eye midpoint);
* **roll > 0**: the face rotates clockwise in the image (the line from the subject's right eye to
  their left eye descends to the right; roll ≈ its image angle ``atan2(Δy_img, Δx_img)``).

:func:`rotation_to_euler` returns pitch and roll in ``(−π, π]`` and yaw in ``[−π/2, π/2]``; at
gimbal lock (``|yaw| = π/2``) it sets roll to 0 and puts the whole in-plane rotation into pitch,
without NaN in values or gradients. Batch dimensions ``*`` lead, as everywhere in
:mod:`mvface.geometry`.
"""

from __future__ import annotations

import torch

from mvface.geometry._checks import check_finite, check_floating, check_shape

__all__ = ["euler_to_rotation", "rotation_angle", "rotation_to_euler"]


def euler_to_rotation(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of AFLW2000-3D ``Pose_Para`` angles (``R = R_x · R_y · R_z``, Zhu et al.).

    Args:
        angles: ``(*, 3)`` ``[pitch, yaw, roll]`` in radians (``Pose_Para[:3]``).

    Returns:
        ``(*, 3, 3)`` rotations mapping model space (x right, y up, z toward the camera) into the
        y-up image frame (see the module docstring).

    Raises:
        BadInputError: wrong shape or NaN/Inf.

    Example:
        >>> R = euler_to_rotation(torch.tensor([0.0, 0.5, 0.0]))
        >>> (R @ torch.tensor([0.0, 0.0, 1.0]))[0] < 0  # positive yaw: nose to the image left
        tensor(True)
    """
    check_shape(angles, ["*", "3"], "angles")
    check_floating(angles, "angles")
    check_finite(angles, "angles")
    cos, sin = angles.cos(), angles.sin()
    cp, cy, cr = cos.unbind(-1)
    sp, sy, sr = sin.unbind(-1)
    rows = (
        cy * cr,
        cy * sr,
        -sy,
        sp * sy * cr - cp * sr,
        cp * cr + sp * sy * sr,
        sp * cy,
        cp * sy * cr + sp * sr,
        cp * sy * sr - sp * cr,
        cp * cy,
    )
    return torch.stack(rows, dim=-1).reshape(*angles.shape[:-1], 3, 3)


def rotation_to_euler(R: torch.Tensor) -> torch.Tensor:
    """AFLW2000-3D ``Pose_Para`` angles of rotation matrices; inverse of :func:`euler_to_rotation`.

    Args:
        R: ``(*, 3, 3)`` rotation matrices (model space -> y-up image frame).

    Returns:
        ``(*, 3)`` ``[pitch, yaw, roll]`` in radians: pitch and roll in ``(−π, π]``, yaw in
        ``[−π/2, π/2]``. At gimbal lock (``cos yaw ≈ 0``) roll is 0 and pitch takes the in-plane
        rotation. Values and gradients are finite everywhere.

    Raises:
        BadInputError: wrong shape or NaN/Inf.

    Example:
        >>> angles = torch.tensor([0.1, -0.4, 0.3], dtype=torch.float64)
        >>> torch.allclose(rotation_to_euler(euler_to_rotation(angles)), angles)
        True
    """
    check_shape(R, ["*", "3", "3"], "rotation")
    check_floating(R, "rotation")
    check_finite(R, "rotation")
    finfo = torch.finfo(R.dtype)
    cos_yaw_sq = R[..., 0, 0].square() + R[..., 0, 1].square()
    # Below this cos(yaw) the pitch/roll split is lost to rounding: treat as gimbal lock.
    locked = cos_yaw_sq <= (16 * finfo.eps) ** 2
    cos_yaw = cos_yaw_sq.clamp_min(finfo.tiny).sqrt()
    yaw = torch.atan2(-R[..., 0, 2], cos_yaw)
    one = torch.ones_like(yaw)
    # Double `where`: the branch not taken gets harmless inputs so its gradient is not NaN.
    pitch_free = torch.atan2(
        torch.where(locked, 0 * one, R[..., 1, 2]), torch.where(locked, one, R[..., 2, 2])
    )
    roll_free = torch.atan2(
        torch.where(locked, 0 * one, R[..., 0, 1]), torch.where(locked, one, R[..., 0, 0])
    )
    pitch_locked = torch.atan2(
        torch.where(locked, -R[..., 2, 1], 0 * one), torch.where(locked, R[..., 1, 1], one)
    )
    pitch = torch.where(locked, pitch_locked, pitch_free)
    roll = torch.where(locked, torch.zeros_like(roll_free), roll_free)
    return torch.stack([pitch, yaw, roll], dim=-1)


def rotation_angle(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Geodesic distance between rotations: the angle of ``R1ᵀ R2``.

    Computed as ``atan2(|vee(D − Dᵀ)| / 2, (tr D − 1) / 2)`` with ``D = R1ᵀ R2``, accurate for small
    and large angles alike (``arccos`` of the trace loses half the digits near 0 and is off by
    up to a degree for rotations stored at reduced precision).

    Args:
        R1: ``(*, 3, 3)`` rotations.
        R2: ``(*, 3, 3)`` rotations.

    Returns:
        ``(*)`` angles in radians, in ``[0, π]``.

    Raises:
        BadInputError: wrong shapes.
    """
    check_shape(R1, ["*", "3", "3"], "rotation")
    check_shape(R2, ["*", "3", "3"], "rotation")
    D = R1.transpose(-1, -2) @ R2
    skew = torch.stack(
        [D[..., 2, 1] - D[..., 1, 2], D[..., 0, 2] - D[..., 2, 0], D[..., 1, 0] - D[..., 0, 1]],
        dim=-1,
    )
    sin = torch.linalg.vector_norm(skew, dim=-1) / 2
    cos = (D.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.atan2(sin, cos)
