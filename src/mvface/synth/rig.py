"""Camera rigs for the synthetic multiview data: the paper's 512 views, grids, random views.

Every rig returns cam2world matrices ``(V, 4, 4)`` float64 in the conventions of
:mod:`mvface.geometry.cameras`: OpenCV camera axes (x right, y down, looking along +z), world
frame of EG3D's FFHQ-aligned heads (+y up, the face looks towards +z, head near the origin).
All cameras look at a target point (default the paper's ``(0, 0, 0.2)``) from a sphere of radius
``radius`` (default 2.7) around the world origin, with world +y as up (no roll), exactly like
EG3D's ``LookAtPoseSampler``. :func:`rig_labels` turns them into EG3D 25-value labels.

Angles (radians):

* **yaw** is the camera's azimuth around world +y: 0 is the frontal camera on the +z axis, positive
  yaw moves the camera towards world +x (the image's right in the frontal view, the subject's
  left); the head then appears turned towards the image's left.
* **pitch** is the camera's elevation above the x-z plane: positive looks down on the head.

They relate to EG3D's ``LookAtPoseSampler.sample(h, v, ...)`` parameters by ``yaw = h − π/2``
and ``pitch = π/2 − arccos(1 − 2v/π)`` (the sampler does *not* use ``v`` as the polar angle;
see :func:`lookat_sampler_cam2world`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from mvface.errors import BadInputError
from mvface.geometry.cameras import (
    EG3D_CENTER,
    EG3D_FOCAL,
    camera_yaw_pitch,
    look_at,
)

__all__ = [
    "PAPER_LOOKAT",
    "PAPER_NUM_VIEWS",
    "PAPER_RADIUS",
    "camera_yaw_pitch",
    "grid_rig",
    "grid_span_angles",
    "grid_span_rig",
    "lookat_sampler_cam2world",
    "paper_rig",
    "random_rig",
    "rig_labels",
    "spherical_rig",
]

#: Distance of every rig camera from the world origin (EG3D's ``avg_camera_radius``), world units.
PAPER_RADIUS = 2.7
#: The point every rig camera looks at (EG3D FFHQ: ``avg_camera_pivot``), world units.
PAPER_LOOKAT = (0.0, 0.0, 0.2)
#: Number of views of the paper's rig.
PAPER_NUM_VIEWS = 512
#: The paper's view-synthesis script writes π as 3.14 (as EG3D's ``gen_videos.py`` does) in its
#: camera angles; using the same constant reproduces ``cam2world_pose.npy`` to 0.002 world units
#: (camera centres) and 0.05° (optical axes) instead of 0.006 and 0.14° with the true π.
_SCRIPT_PI = 3.14


def _target(target: Sequence[float] | torch.Tensor) -> torch.Tensor:
    out = torch.as_tensor(target, dtype=torch.float64).reshape(-1)
    if out.shape != (3,) or not bool(torch.isfinite(out).all()):
        raise BadInputError("rig", f"target must be 3 finite numbers, got {target!r}")
    return out


def _check_radius(radius: float, target: torch.Tensor) -> None:
    if not math.isfinite(radius) or radius <= float(torch.linalg.vector_norm(target)):
        raise BadInputError("rig", f"radius must exceed the target's distance, got {radius}")


def lookat_sampler_cam2world(
    horizontal: torch.Tensor,
    vertical: torch.Tensor,
    radius: float = PAPER_RADIUS,
    target: Sequence[float] | torch.Tensor = PAPER_LOOKAT,
) -> torch.Tensor:
    """Cam2world matrices of EG3D's ``LookAtPoseSampler.sample(h, v, target, radius=r)``.

    The sampler maps ``v`` to the polar angle ``φ = arccos(1 − 2v/π)`` (so ``v = π/2`` is the
    equator but ``v`` is not ``φ``), places the camera at
    ``[r·sin φ·cos(π − h), r·cos φ, r·sin φ·sin(π − h)]`` and looks at ``target`` with world up
    +y (:func:`mvface.geometry.cameras.look_at`).

    Args:
        horizontal: ``(V,)`` EG3D ``h`` in radians (``π/2`` is frontal); computed in float64
            (pass float64 for full precision).
        vertical: ``(V,)`` EG3D ``v`` in radians (``π/2`` is level), clamped to ``(0, π)``.
        radius: camera distance from the world origin (world units).
        target: the point looked at, 3 numbers (world units).

    Returns:
        ``(V, 4, 4)`` float64 cam2world matrices.

    Example:
        >>> half_pi = torch.tensor([math.pi / 2], dtype=torch.float64)
        >>> lookat_sampler_cam2world(half_pi, half_pi)[0, :3, 3].abs().round(decimals=6).tolist()
        [0.0, 0.0, 2.7]
    """
    target_t = _target(target)
    _check_radius(radius, target_t)
    h = torch.as_tensor(horizontal, dtype=torch.float64).reshape(-1)
    v = torch.as_tensor(vertical, dtype=torch.float64).reshape(-1).clamp(1e-5, math.pi - 1e-5)
    phi = torch.arccos(1 - 2 * v / math.pi)
    eye = torch.stack(
        [
            radius * torch.sin(phi) * torch.cos(math.pi - h),
            radius * torch.cos(phi),
            radius * torch.sin(phi) * torch.sin(math.pi - h),
        ],
        dim=-1,
    )
    return look_at(eye, target_t.expand_as(eye))


def _split_paper_views(n: int) -> tuple[int, int, int]:
    """Views on the ellipse, the vertical and the horizontal sweep (3/4, 1/8, 1/8 of ``n``)."""
    if n < 3:
        raise BadInputError("rig", f"the paper rig needs at least 3 views, got {n}")
    ellipse = round(0.75 * n)
    vertical = (n - ellipse) // 2
    return ellipse, vertical, n - ellipse - vertical


def paper_rig(
    n: int = PAPER_NUM_VIEWS,
    radius: float = PAPER_RADIUS,
    target: Sequence[float] | torch.Tensor = PAPER_LOOKAT,
) -> torch.Tensor:
    """The paper's camera list as a formula (reproduces ``cam2world_pose.npy`` for ``n = 512``).

    In EG3D ``LookAtPoseSampler`` parameters, with ``π'`` = 3.14 (the script's π) and
    ``a = π'/4 = 0.785``:

    * views ``0 … 3n/4 − 1`` (0–383): three quarters of an ellipse,
      ``h = π'/2 + a·cos(2π'k/n)``, ``v = π'/2 − 0.05 − a·sin(2π'k/n)`` (yaw ±45°, pitch from
      about +32° up to −28° down);
    * the next ``n/8`` (384–447): a vertical sweep at ``h = π'/2``,
      ``v = π'/2 − 0.05 − a·sin(π'k/m)`` for ``k = 0 … m − 1`` (up to +32° and back);
    * the last ``n/8`` (448–511): a horizontal sweep at ``v = π'/2 − 0.05`` (pitch +2.9°),
      ``h = π'/2 + a·cos(π'k/m)`` (yaw from +45° to −45°).

    For ``n = 512`` every camera centre lies within 0.0021 world units and every optical axis
    within 0.05° of the file (which is stored at reduced precision). Other ``n`` keep the same
    layout with 3/4 of the views on the ellipse and the rest split between the two sweeps.

    Args:
        n: number of views (at least 3; the paper uses 512).
        radius: camera distance from the origin (world units).
        target: the point every camera looks at.

    Returns:
        ``(n, 4, 4)`` float64 cam2world matrices (OpenCV axes).

    Raises:
        BadInputError: ``n < 3``, a bad radius or target.

    Example:
        >>> paper_rig().shape
        torch.Size([512, 4, 4])
    """
    n_ellipse, n_vertical, n_horizontal = _split_paper_views(int(n))
    amplitude = _SCRIPT_PI / 4
    level = _SCRIPT_PI / 2
    pitch_level = _SCRIPT_PI / 2 - 0.05
    k = torch.arange(n_ellipse, dtype=torch.float64)
    phase = 2 * _SCRIPT_PI * k * (0.75 / n_ellipse)  # = 2π'k/n when n_ellipse = 3n/4
    h = [level + amplitude * torch.cos(phase)]
    v = [pitch_level - amplitude * torch.sin(phase)]
    k = torch.arange(n_vertical, dtype=torch.float64)
    h.append(torch.full_like(k, level))
    v.append(pitch_level - amplitude * torch.sin(_SCRIPT_PI * k / n_vertical))
    k = torch.arange(n_horizontal, dtype=torch.float64)
    h.append(level + amplitude * torch.cos(_SCRIPT_PI * k / n_horizontal))
    v.append(torch.full_like(k, pitch_level))
    return lookat_sampler_cam2world(torch.cat(h), torch.cat(v), radius, target)


def spherical_rig(
    yaws: torch.Tensor | np.ndarray | Sequence[float],
    pitches: torch.Tensor | np.ndarray | Sequence[float],
    radius: float = PAPER_RADIUS,
    target: Sequence[float] | torch.Tensor = PAPER_LOOKAT,
) -> torch.Tensor:
    """Cameras at given yaw/pitch pairs on a sphere around the origin, looking at ``target``.

    The camera sits at ``radius · (cos p · sin y, sin p, cos p · cos y)``.

    Args:
        yaws: ``(V,)`` camera azimuths in radians (see the module docstring).
        pitches: ``(V,)`` camera elevations in radians, inside ``(−π/2, π/2)``.
        radius: camera distance from the origin (world units).
        target: the point looked at.

    Returns:
        ``(V, 4, 4)`` float64 cam2world matrices.

    Raises:
        BadInputError: different lengths, non-finite angles, |pitch| ≥ 89.9°, bad radius.
    """
    yaw = torch.as_tensor(np.asarray(yaws, dtype=np.float64)).reshape(-1)
    pitch = torch.as_tensor(np.asarray(pitches, dtype=np.float64)).reshape(-1)
    if yaw.shape != pitch.shape:
        raise BadInputError("rig", f"{yaw.numel()} yaws but {pitch.numel()} pitches")
    if not bool(torch.isfinite(yaw).all() & torch.isfinite(pitch).all()):
        raise BadInputError("rig", "yaw and pitch angles must be finite")
    if bool((pitch.abs() >= math.radians(89.9)).any()):
        raise BadInputError("rig", "pitch must stay within ±89.9° (camera looking straight down)")
    target_t = _target(target)
    _check_radius(radius, target_t)
    eye = radius * torch.stack(
        [torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch), torch.cos(pitch) * torch.cos(yaw)],
        dim=-1,
    )
    return look_at(eye, target_t.expand_as(eye))


def grid_rig(
    yaws: torch.Tensor | np.ndarray | Sequence[float],
    pitches: torch.Tensor | np.ndarray | Sequence[float],
    radius: float = PAPER_RADIUS,
    target: Sequence[float] | torch.Tensor = PAPER_LOOKAT,
) -> torch.Tensor:
    """Every combination of ``yaws`` x ``pitches`` (pitch-major: all yaws of the first pitch first).

    Args:
        yaws: ``(Y,)`` camera azimuths in radians.
        pitches: ``(P,)`` camera elevations in radians.
        radius: camera distance from the origin (world units).
        target: the point looked at.

    Returns:
        ``(P·Y, 4, 4)`` float64 cam2world matrices; view ``i`` has pitch ``pitches[i // Y]`` and
        yaw ``yaws[i % Y]``.

    Example:
        >>> grid_rig(np.radians([-30, 0, 30]), np.radians([0, 10])).shape
        torch.Size([6, 4, 4])
    """
    yaw = np.asarray(yaws, dtype=np.float64).reshape(-1)
    pitch = np.asarray(pitches, dtype=np.float64).reshape(-1)
    if yaw.size == 0 or pitch.size == 0:
        raise BadInputError("rig", "a grid needs at least one yaw and one pitch")
    pitch_grid, yaw_grid = np.meshgrid(pitch, yaw, indexing="ij")
    return spherical_rig(yaw_grid.reshape(-1), pitch_grid.reshape(-1), radius, target)


def grid_span_angles(n: int, max_yaw: float, max_pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and pitch of ``n`` distinct cameras on a grid spanning ``±max_yaw`` x ``±max_pitch``.

    Rows of equal pitch from ``−max_pitch`` (looking up) to ``+max_pitch``, each row's cameras
    evenly spread from ``−max_yaw`` to ``+max_yaw`` (yaw-major within a row); the row count keeps
    the cells near square in angle, and there are at least two rows of at least two cameras when
    ``n >= 3``. When ``n`` is not a multiple of the row length, the last row holds fewer cameras,
    still spread over the whole yaw span (one camera: yaw 0). A zero span gives a single row
    (``max_pitch = 0``) or column (``max_yaw = 0``); ``n = 2`` gives the two yaw ends. So every
    camera is distinct and, for ``n >= 3``, the extremes reach all four limits.

    Args:
        n: number of cameras (≥ 1).
        max_yaw: half the yaw span in radians (≥ 0).
        max_pitch: half the pitch span in radians (≥ 0, < π/2).

    Returns:
        ``(yaws, pitches)``, each ``(n,)`` float64 radians, view ``i`` at ``(yaws[i], pitches[i])``.

    Raises:
        BadInputError: ``n < 1``, a negative span, or ``n > 1`` with both spans 0 (every camera
            would be the same).

    Example:
        >>> yaws, pitches = grid_span_angles(6, math.radians(30), math.radians(20))
        >>> np.degrees(yaws).round(1).tolist(), np.degrees(pitches).round(1).tolist()
        ([-30.0, 0.0, 30.0, -30.0, 0.0, 30.0], [-20.0, -20.0, -20.0, 20.0, 20.0, 20.0])
    """
    if n < 1:
        raise BadInputError("rig", f"need at least one view, got {n}")
    if not (max_yaw >= 0 and max_pitch >= 0):
        raise BadInputError("rig", "max_yaw and max_pitch must be >= 0")
    if n > 1 and max_yaw == 0 and max_pitch == 0:
        raise BadInputError("rig", f"a grid with no yaw and no pitch span has 1 camera, not {n}")
    if max_pitch == 0:
        n_rows = 1
    elif max_yaw == 0:
        n_rows = n
    elif n < 3:
        n_rows = 1
    else:  # rows x columns with the cells near square: columns / rows ~ max_yaw / max_pitch
        n_rows = min(math.ceil(n / 2), max(2, round(math.sqrt(n * max_pitch / max_yaw))))
    per_row = math.ceil(n / n_rows)
    n_rows = math.ceil(n / per_row)  # no empty row
    row_pitches = np.linspace(-max_pitch, max_pitch, n_rows) if n_rows > 1 else np.zeros(1)
    yaws, pitches = [], []
    for row, pitch in enumerate(row_pitches):
        count = min(per_row, n - row * per_row)
        yaws.append(np.linspace(-max_yaw, max_yaw, count) if count > 1 else np.zeros(1))
        pitches.append(np.full(count, pitch))
    return np.concatenate(yaws), np.concatenate(pitches)


def grid_span_rig(
    n: int,
    max_yaw: float,
    max_pitch: float,
    radius: float = PAPER_RADIUS,
    target: Sequence[float] | torch.Tensor = PAPER_LOOKAT,
) -> torch.Tensor:
    """``(n, 4, 4)`` float64 cam2world matrices of :func:`grid_span_angles` (radians)."""
    yaws, pitches = grid_span_angles(n, max_yaw, max_pitch)
    return spherical_rig(yaws, pitches, radius, target)


def random_rig(
    n: int,
    yaw_range: tuple[float, float] = (-math.pi / 4, math.pi / 4),
    pitch_range: tuple[float, float] = (-math.pi / 6, math.pi / 6),
    seed: int = 0,
    radius: float = PAPER_RADIUS,
    target: Sequence[float] | torch.Tensor = PAPER_LOOKAT,
) -> torch.Tensor:
    """``n`` cameras with yaw and pitch drawn uniformly (in angle) from the given ranges.

    Args:
        n: number of views (≥ 1).
        yaw_range: ``(low, high)`` camera azimuth in radians.
        pitch_range: ``(low, high)`` camera elevation in radians.
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same rig.
        radius: camera distance from the origin (world units).
        target: the point looked at.

    Returns:
        ``(n, 4, 4)`` float64 cam2world matrices.

    Raises:
        BadInputError: ``n < 1`` or a range with ``low > high``.
    """
    if n < 1:
        raise BadInputError("rig", f"need at least one view, got {n}")
    for name, (low, high) in (("yaw_range", yaw_range), ("pitch_range", pitch_range)):
        if not low <= high:
            raise BadInputError("rig", f"{name} must be (low, high) with low <= high")
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(yaw_range[0], yaw_range[1], size=n)
    pitch = rng.uniform(pitch_range[0], pitch_range[1], size=n)
    return spherical_rig(yaw, pitch, radius, target)


def rig_labels(
    cam2world: torch.Tensor, focal: float = EG3D_FOCAL, center: float = EG3D_CENTER
) -> torch.Tensor:
    """EG3D 25-value camera labels of cam2world matrices.

    Args:
        cam2world: ``(V, 4, 4)`` cam2world matrices (OpenCV axes).
        focal: normalized focal length (image widths), EG3D's 4.2647 by default.
        center: normalized principal point (image widths), 0.5 by default.

    Returns:
        ``(V, 25)`` in ``cam2world``'s dtype: the 16 row-major cam2world values then the 9 of
        ``[[focal, 0, center], [0, focal, center], [0, 0, 1]]``.

    Example:
        >>> rig_labels(paper_rig(8)).shape
        torch.Size([8, 25])
    """
    if cam2world.ndim != 3 or cam2world.shape[-2:] != (4, 4):
        raise BadInputError("rig", f"cam2world must be (V, 4, 4), got {tuple(cam2world.shape)}")
    K = torch.tensor(
        [[focal, 0.0, center], [0.0, focal, center], [0.0, 0.0, 1.0]],
        dtype=cam2world.dtype,
        device=cam2world.device,
    )
    flat_k = K.reshape(1, 9).expand(cam2world.shape[0], 9)
    return torch.cat([cam2world.reshape(-1, 16), flat_k], dim=-1)
