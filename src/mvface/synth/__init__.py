"""Synthetic multiview faces: 3D heads from single photos, camera rigs, rendering, landmarks.

The paper's data pipeline, steps 4-6 (the CLI and the dataset writer build on these):

* :mod:`~mvface.synth.rig` — camera rigs as cam2world matrices: :func:`paper_rig` (the paper's
  512 views as a formula), :func:`grid_rig`, :func:`random_rig`; :func:`rig_labels` turns them
  into EG3D 25-value labels.
* :mod:`~mvface.synth.head` — the head interface: :class:`HeadBackend` ``.build(crop,
  landmarks, camera=None) -> Head``, :class:`Head` ``.render(cameras, size) -> RenderOutput``
  (rgb, depth, mask); :mod:`~mvface.synth.backends` — their registry (:func:`create_backend`,
  :func:`list_backends`).
* :mod:`~mvface.synth.mesh_head` — the default CPU backend ``"mesh"``: MediaPipe face mesh on
  an egg-shaped head proxy, textured from the photo, in front of an inpainted backdrop.
* :mod:`~mvface.synth.renderer` — OpenGL (moderngl + headless EGL) or numpy rasterizers.
* :mod:`~mvface.synth.landmarks` — lift the crop's landmarks with the source depth, project
  them into every view, depth-test their visibility, flag mostly hidden faces.

Example:
    >>> from mvface.synth import create_backend, paper_rig, rig_labels  # doctest: +SKIP
    >>> head = create_backend("mesh").build(crop, landmarks)  # doctest: +SKIP
    >>> cameras = rig_labels(paper_rig(64))  # doctest: +SKIP
    >>> views = head.render(cameras, 256)  # doctest: +SKIP
    >>> source = head.render(head.source_camera[None], crop.shape[0])  # doctest: +SKIP
    >>> lm3d = lift_landmarks(landmarks, source.depth[0], head.source_camera)  # doctest: +SKIP
    >>> per_view = transfer_landmarks(lm3d, cameras, 256, views.depth)  # doctest: +SKIP
"""

from __future__ import annotations

from mvface.synth.backends import (
    Head,
    HeadBackend,
    RenderOutput,
    create_backend,
    iter_renders,
    list_backends,
    register_backend,
)
from mvface.synth.landmarks import (
    ViewLandmarks,
    head_scale,
    hidden_views,
    landmark_visibility,
    lift_landmarks,
    project_landmarks,
    sample_depth,
    transfer_landmarks,
)
from mvface.synth.rig import (
    PAPER_LOOKAT,
    PAPER_NUM_VIEWS,
    PAPER_RADIUS,
    camera_yaw_pitch,
    grid_rig,
    lookat_sampler_cam2world,
    paper_rig,
    random_rig,
    rig_labels,
    spherical_rig,
)

__all__ = [
    "PAPER_LOOKAT",
    "PAPER_NUM_VIEWS",
    "PAPER_RADIUS",
    "Head",
    "HeadBackend",
    "RenderOutput",
    "ViewLandmarks",
    "camera_yaw_pitch",
    "create_backend",
    "grid_rig",
    "head_scale",
    "hidden_views",
    "iter_renders",
    "landmark_visibility",
    "lift_landmarks",
    "list_backends",
    "lookat_sampler_cam2world",
    "paper_rig",
    "project_landmarks",
    "random_rig",
    "register_backend",
    "rig_labels",
    "sample_depth",
    "spherical_rig",
    "transfer_landmarks",
]
