"""Geometry core of mvface: cameras, projection, triangulation, alignment, head-pose angles.

Plain functions on tensors with batch dimensions in front (kornia style), differentiable, float32
and float64. Conventions (details in each module's docstring):

* OpenCV camera axes: x right, y down, the camera looks along +z.
* World-to-camera extrinsics ``x_cam = R @ X + t``; cam2world ``(*, 4, 4)`` holds ``Rᵀ`` and the
  camera position (:mod:`~mvface.geometry.cameras`).
* Pixels are continuous with 0 at the image's left/top edge (pixel centres at ``i + 0.5``); EG3D's
  normalized intrinsics give ``pixel = (x/z · 4.2647 + 0.5) · resolution`` exactly.
* World up of the synthetic rig is +y (:func:`look_at`'s default).
* Head-pose Euler angles follow AFLW2000-3D ``Pose_Para`` (:mod:`~mvface.geometry.rotations`).

Bad inputs (NaN cameras, singular intrinsics, wrong shapes) raise
:class:`mvface.errors.BadInputError`; :func:`value_checks_disabled` skips the value checks in hot
loops.
"""

from __future__ import annotations

from mvface.geometry._checks import check_finite, check_shape, value_checks_disabled
from mvface.geometry.alignment import apply_similarity, umeyama
from mvface.geometry.cameras import (
    EG3D_CENTER,
    EG3D_FOCAL,
    EG3D_LABEL_SIZE,
    cam2world_to_extrinsics,
    camera_centers,
    camera_to_eg3d_label,
    camera_yaw_pitch,
    eg3d_intrinsics,
    eg3d_label_to_camera,
    extrinsics_to_cam2world,
    intrinsics_matrix,
    look_at,
    normalized_to_pixel_intrinsics,
    pixel_to_normalized_intrinsics,
    projection_matrix,
)
from mvface.geometry.projection import (
    project_points,
    project_points_with_depth,
    transform_points,
    unproject_points,
)
from mvface.geometry.rotations import euler_to_rotation, rotation_angle, rotation_to_euler
from mvface.geometry.triangulation import (
    Triangulation,
    reproject,
    triangulate_dlt,
    triangulate_dlt_checked,
)

__all__ = [
    "EG3D_CENTER",
    "EG3D_FOCAL",
    "EG3D_LABEL_SIZE",
    "Triangulation",
    "apply_similarity",
    "cam2world_to_extrinsics",
    "camera_centers",
    "camera_to_eg3d_label",
    "camera_yaw_pitch",
    "check_finite",
    "check_shape",
    "eg3d_intrinsics",
    "eg3d_label_to_camera",
    "euler_to_rotation",
    "extrinsics_to_cam2world",
    "intrinsics_matrix",
    "look_at",
    "normalized_to_pixel_intrinsics",
    "pixel_to_normalized_intrinsics",
    "project_points",
    "project_points_with_depth",
    "projection_matrix",
    "reproject",
    "rotation_angle",
    "rotation_to_euler",
    "transform_points",
    "triangulate_dlt",
    "triangulate_dlt_checked",
    "umeyama",
    "unproject_points",
    "value_checks_disabled",
]
