"""Per-view landmarks of a synthetic head: lift to 3D, project into every view, test visibility.

The paper lifts the 68 landmarks of one view with that view's depth and projects the 3D points
into every camera, with no visibility test. Here the lifted view is the source crop's
(:attr:`Head.source_camera`), the depth is any backend's rendered depth (so nothing assumes a
mesh), and every view also gets a per-landmark visibility from a depth test against its own
rendered depth, plus a flag for views where the face is mostly hidden.

Pixel conventions (see :mod:`mvface.geometry.cameras`): cameras are EG3D labels whose
projection ``(x/z · f + c) · size`` gives *continuous* pixels (0 at the image's left/top edge,
pixel ``i`` centred at ``i + 0.5``). Landmarks here — inputs and outputs — are mvface's 0-based
integer-centred pixels (:class:`mvface.data.FaceSample`), so

* :func:`project_landmarks` returns ``project_points(X, P) − 0.5`` and
* :func:`lift_landmarks` unprojects at ``landmark + 0.5``;

rendered images (``depth[j, i]``) hold the sample at continuous ``(i + 0.5, j + 0.5)``, i.e. at
landmark coordinates ``(i, j)``, so depth maps are indexed by landmark coordinates directly.
The reference data of the paper (``lm2d_68_multiview_2d``) is in the continuous convention:
add 0.5 to compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mvface.errors import BadInputError
from mvface.geometry.cameras import eg3d_label_to_camera, projection_matrix
from mvface.geometry.projection import project_points_with_depth, unproject_points

__all__ = [
    "DEFAULT_MIN_VISIBLE_FRACTION",
    "DEFAULT_VISIBILITY_TOLERANCE",
    "JAW_DEPTH_TAPER",
    "OUTLINE_DEPTH_SLOPE",
    "ViewLandmarks",
    "deepen_jaw",
    "depth_at_landmarks",
    "head_scale",
    "hidden_views",
    "landmark_visibility",
    "lift_landmarks",
    "project_landmarks",
    "sample_depth",
    "transfer_landmarks",
]

#: Depth-test tolerance in units of :func:`head_scale`: 0.1 x ~0.13 ≈ 0.013 world units, about
#: 5 mm on a real head (occluded landmarks lie centimetres behind the occluder; the far-side jaw
#: of a head turned by 60° lies 0.02–0.1 behind the cheek in front of it).
DEFAULT_VISIBILITY_TOLERANCE = 0.1
#: On the head's outline the surface is seen at a grazing angle: one pixel inwards its depth
#: changes by up to this many pixel widths (tan 80°), so a landmark there may lie that much
#: further behind the head pixels next to it (0.014 world units at 256 px, 0.027 at 128 px).
OUTLINE_DEPTH_SLOPE = 3.7
#: A view whose fraction of visible landmarks is below this is flagged as "face mostly hidden".
DEFAULT_MIN_VISIBLE_FRACTION = 0.5
#: :func:`deepen_jaw` moves the chin (point 8) not at all and the jaw points this many places
#: or more away from it fully, linearly in between.
JAW_DEPTH_TAPER = 3


def _as_labels(cameras: torch.Tensor | np.ndarray) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(cameras) if isinstance(cameras, np.ndarray) else cameras)
    labels = labels.to(torch.float64)
    if labels.ndim == 1:
        labels = labels[None]
    if labels.ndim != 2 or labels.shape[1] != 25:
        raise BadInputError("camera", f"expected (V, 25) EG3D labels, got {tuple(labels.shape)}")
    return labels


def _as_points(points: torch.Tensor | np.ndarray, dims: int, name: str) -> torch.Tensor:
    out = torch.as_tensor(np.asarray(points, np.float64) if not torch.is_tensor(points) else points)
    out = out.to(torch.float64)
    if out.ndim != 2 or out.shape[1] != dims or not bool(torch.isfinite(out).all()):
        raise BadInputError(name, f"expected finite (N, {dims}), got {tuple(out.shape)}")
    return out


def head_scale(points3d: np.ndarray | torch.Tensor) -> float:
    """Size of a landmark set: RMS distance of the points from their centroid (world units).

    About 0.14 for EG3D-scale heads (the paper's example: 0.137).
    """
    p = np.asarray(points3d, np.float64)
    return float(np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean()))


def deepen_jaw(points3d: torch.Tensor, depth: float, taper: int = JAW_DEPTH_TAPER) -> torch.Tensor:
    """Move the jaw points (0–16) back into the head, along the face's depth axis.

    Why: a 68-point jaw in 3D has no single place. The face mesh's oval (``jaw_from=surface``)
    runs along the front of the cheeks; the 3DMM convention that AFLW2000-3D is labelled in
    (the Basel Face Model's keypoints) puts the jaw on the mandible: 0.19–0.26 eye-to-mouth
    distances further back at points 0–5 and 11–16, 0.14 at 6 and 10, level at the chin
    (docs/synth.md). Turned heads show the difference: at 70° of yaw a depth change moves a
    point sideways by 0.94 times as much.

    The depth axis is the normal of the plane through the eye line and the eye-to-mouth
    direction, pointing away from the nose tip (point 30). Point ``k`` moves by
    ``depth × min(1, |k − 8| / taper)`` eye-to-mouth distances (eye centres' midpoint to the
    mouth's centroid).

    Args:
        points3d: ``(68, 3)`` world points (any units, any pose).
        depth: how far back, in eye-to-mouth distances (0: unchanged).
        taper: jaw places from the chin over which the shift grows to ``depth``.

    Returns:
        ``(68, 3)`` points, the jaw moved, a new tensor.

    Raises:
        BadInputError: not 68 finite points, or eyes and mouth in one line.
    """
    p = _as_points(points3d, 3, "landmarks3d")
    if p.shape[0] != 68:
        raise BadInputError("landmarks3d", f"expected 68 points, got {p.shape[0]}")
    eyes = torch.stack([p[36:42].mean(0), p[42:48].mean(0)])
    eye_centre = eyes.mean(0)
    down = p[48:68].mean(0) - eye_centre
    normal = torch.linalg.cross(eyes[1] - eyes[0], down)
    if float(torch.linalg.norm(normal)) <= 1e-12 * float(torch.linalg.norm(down)) ** 2:
        raise BadInputError("landmarks3d", "the eyes and the mouth do not span a plane")
    normal = normal / torch.linalg.norm(normal)
    if float((p[30] - eye_centre) @ normal) > 0:  # make it point into the head
        normal = -normal
    k = torch.arange(17, dtype=p.dtype)
    weight = torch.clamp((k - 8).abs() / max(taper, 1), max=1.0)
    out = p.clone()
    out[:17] += (depth * float(torch.linalg.norm(down)) * weight)[:, None] * normal
    return out


def sample_depth(
    depth: np.ndarray,
    points: np.ndarray,
    discontinuity: float = 0.05,
    search_radius: int = 3,
) -> np.ndarray:
    """Depth at sub-pixel positions, bilinear but never across an occlusion edge.

    Each point takes the bilinear mix of its 4 neighbouring pixels; neighbours that are empty
    (``inf``) or lie more than ``discontinuity`` behind the nearest of the four (the other side of
    an occluding contour) are left out and the weights renormalized, so a point on a silhouette
    gets the foreground's depth. A point with no finite neighbour takes the nearest finite depth
    within ``search_radius`` pixels.

    Args:
        depth: ``(H, W)`` camera-frame depth, ``inf`` where empty; ``depth[j, i]`` is the sample
            at 0-based integer-centred pixel ``(i, j)``.
        points: ``(N, 2)`` 0-based integer-centred pixels ``(x, y)``.
        discontinuity: depth jump (world units) treated as an occlusion edge; well above the
            change between neighbouring pixels of a steep face surface (0.026 at 128 px for a
            surface at 80°), below the jump from a nose or jaw to what lies behind it.
        search_radius: fallback search window half-size in pixels.

    Returns:
        ``(N,)`` float64 depth; ``nan`` where no finite depth is within reach.
    """
    d = np.asarray(depth, np.float64)
    h, w = d.shape
    p = np.asarray(points, np.float64)
    x0 = np.floor(p[:, 0]).astype(int)
    y0 = np.floor(p[:, 1]).astype(int)
    fx = p[:, 0] - x0
    fy = p[:, 1] - y0
    values = []
    weights = []
    corners = (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    )
    for dy, dx, wgt in corners:
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        v = np.full(len(p), np.inf)
        v[inside] = d[yi[inside], xi[inside]]
        values.append(v)
        weights.append(wgt)
    V = np.stack(values, 1)
    W = np.stack(weights, 1)
    nearest = V.min(1)
    usable = np.isfinite(V) & (nearest[:, None] + discontinuity >= V)
    W = np.where(usable, W + 1e-12, 0.0)
    total = W.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (np.where(usable, V, 0.0) * W).sum(1) / total
    out[total == 0] = np.nan
    for i in np.flatnonzero(~np.isfinite(out)):
        cx, cy = int(np.rint(p[i, 0])), int(np.rint(p[i, 1]))
        win = d[
            max(cy - search_radius, 0) : max(cy + search_radius + 1, 0),
            max(cx - search_radius, 0) : max(cx + search_radius + 1, 0),
        ]
        if win.size and np.isfinite(win).any():
            ys, xs = np.nonzero(np.isfinite(win))
            oy, ox = max(cy - search_radius, 0), max(cx - search_radius, 0)
            k = np.argmin((ys + oy - p[i, 1]) ** 2 + (xs + ox - p[i, 0]) ** 2)
            out[i] = win[ys[k], xs[k]]
    return out


def depth_at_landmarks(
    landmarks: np.ndarray | torch.Tensor, depth: np.ndarray, search_fraction: float = 0.03
) -> np.ndarray:
    """The head's depth under 2-D landmarks (see :func:`lift_landmarks`).

    Args:
        landmarks: ``(N, 2)`` 0-based integer-centred pixels of a ``S`` x ``S`` view.
        depth: ``(S, S)`` camera-frame depth, ``inf`` where empty.
        search_fraction: a landmark just off the head's silhouette takes the nearest head
            depth within this fraction of the image side.

    Returns:
        ``(N,)`` float64 depth, ``nan`` for landmarks with no head depth nearby.
    """
    points = _as_points(landmarks, 2, "landmarks")
    d = np.asarray(depth)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise BadInputError("depth", f"expected a square (S, S) depth map, got {d.shape}")
    radius = max(3, round(search_fraction * d.shape[0]))
    return sample_depth(d, points.numpy(), search_radius=radius)


def lift_landmarks(
    landmarks: np.ndarray | torch.Tensor,
    depth: np.ndarray,
    camera: torch.Tensor | np.ndarray,
    search_fraction: float = 0.03,
    fallback: np.ndarray | torch.Tensor | None = None,
) -> torch.Tensor:
    """Lift 2-D landmarks of a view to world points with that view's depth map.

    Args:
        landmarks: ``(N, 2)`` 0-based integer-centred pixels of the view (a ``S`` x ``S``
            image; ``S`` is the depth map's size).
        depth: ``(S, S)`` camera-frame depth of the view, ``inf`` where empty (e.g.
            ``head.render(camera[None], S).depth[0]``).
        camera: ``(25,)`` EG3D label of the view.

        search_fraction: a landmark just off the head's silhouette (annotated jaw lines often
            lie a few pixels outside a face model's outline) takes the nearest head depth within
            this fraction of the image side.
        fallback: ``(N, 3)`` world points taken for landmarks with no depth nearby (e.g. the
            head's :meth:`~mvface.synth.backends.Head.surface_landmarks`); ``None``: raise.

    Returns:
        ``(N, 3)`` float64 world points.

    Raises:
        BadInputError: a landmark with no depth nearby (it lies off the head) and no fallback.
    """
    points = _as_points(landmarks, 2, "landmarks")
    z = depth_at_landmarks(points, depth, search_fraction)
    missing = ~np.isfinite(z)
    size = np.asarray(depth).shape[0]
    K, R, t = eg3d_label_to_camera(_as_labels(camera)[0], size, size)
    world = unproject_points(points + 0.5, torch.from_numpy(np.where(missing, 1.0, z)), K, R, t)
    if missing.any():
        if fallback is None:
            where = np.flatnonzero(missing).tolist()
            raise BadInputError("landmarks", f"no depth under landmarks {where} (off the head)")
        replace = torch.from_numpy(missing)
        world[replace] = _as_points(fallback, 3, "fallback").to(world.dtype)[replace]
    return world


def project_landmarks(
    points3d: np.ndarray | torch.Tensor, cameras: torch.Tensor | np.ndarray, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world landmarks into views.

    Args:
        points3d: ``(N, 3)`` world points.
        cameras: ``(V, 25)`` EG3D labels.
        size: image side in pixels.

    Returns:
        ``pixels`` ``(V, N, 2)`` float64, 0-based integer-centred (``project_points − 0.5``),
        and ``depth`` ``(V, N)`` camera-frame z (world units; ≤ 0 behind the camera).
    """
    X = _as_points(points3d, 3, "landmarks3d")
    K, R, t = eg3d_label_to_camera(_as_labels(cameras), size, size)
    P = projection_matrix(K, R, t)
    pixels, depth = project_points_with_depth(X.unsqueeze(0), P)
    return pixels - 0.5, depth


def landmark_visibility(
    pixels: torch.Tensor | np.ndarray,
    point_depth: torch.Tensor | np.ndarray,
    depth_maps: np.ndarray,
    tolerance: float,
    window: int = 1,
    pixel_size: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Depth test of projected landmarks against rendered depth maps (the head's own surface).

    A landmark is visible in a view when it projects inside the image, lies in front of the
    camera, and is not behind the rendered head surface: the farthest *head* depth within
    ``window`` pixels of its pixel is not nearer than the landmark by more than ``tolerance``
    (world units; the pipeline uses :data:`DEFAULT_VISIBILITY_TOLERANCE` x
    :func:`head_scale`, about 0.013). Background pixels (``inf``) are not a surface: a landmark
    with no head pixel in its window is visible (nothing can hide it), but background next to
    a hidden landmark does not reveal it. On the outline (a pixel of the landmark's bilinear
    footprint shows no head) the surface is grazing, and the tolerance grows by
    :data:`OUTLINE_DEPTH_SLOPE` pixel widths, so jaw-line landmarks on the outline of a
    profile stay visible while the far-side jaw of a turned head, behind the cheek, is hidden.

    Args:
        pixels: ``(V, N, 2)`` 0-based integer-centred pixels.
        point_depth: ``(V, N)`` camera-frame depth of each landmark (world units).
        depth_maps: ``(V, S, S)`` rendered depth (``inf`` where empty).
        tolerance: allowed depth difference (world units).
        window: half-size of the pixel window searched (1: 3 x 3).
        pixel_size: ``(V, N)`` (or a scalar) width of one pixel at each landmark's depth
            (world units, ``z / f``); on the outline the tolerance grows by
            :data:`OUTLINE_DEPTH_SLOPE` pixel widths.

    Returns:
        ``(V, N)`` bool.
    """
    px = np.asarray(pixels, np.float64)
    z = np.asarray(point_depth, np.float64)
    maps = np.asarray(depth_maps)
    V, S = maps.shape[0], maps.shape[1]
    if px.shape[:1] != (V,) or z.shape != px.shape[:2] or maps.shape[1:] != (S, S):
        raise BadInputError("visibility", "pixels, depths and depth maps disagree in shape")
    xi = np.rint(px[..., 0]).astype(int)
    yi = np.rint(px[..., 1]).astype(int)
    inside = (px[..., 0] > -0.5) & (px[..., 0] < S - 0.5) & (px[..., 1] > -0.5)
    inside &= (px[..., 1] < S - 0.5) & (z > 0)
    views = np.broadcast_to(np.arange(V)[:, None], xi.shape)
    farthest = np.full(xi.shape, -np.inf)  # the farthest head surface in the window
    for dy in range(-window, window + 1):
        for dx in range(-window, window + 1):
            xs = np.clip(xi + dx, 0, S - 1)
            ys = np.clip(yi + dy, 0, S - 1)
            d = maps[views, ys, xs]
            farthest = np.maximum(farthest, np.where(np.isfinite(d), d, -np.inf))
    # on the outline: a pixel of the point's bilinear footprint shows no head
    x0 = np.floor(px[..., 0]).astype(int)
    y0 = np.floor(px[..., 1]).astype(int)
    outline = np.zeros(xi.shape, bool)
    for dy in (0, 1):
        for dx in (0, 1):
            xs, ys = np.clip(x0 + dx, 0, S - 1), np.clip(y0 + dy, 0, S - 1)
            outline |= ~np.isfinite(maps[views, ys, xs])
    allowed = tolerance + np.where(outline, OUTLINE_DEPTH_SLOPE * np.asarray(pixel_size), 0.0)
    off_head = ~np.isfinite(farthest)  # no head pixel near: nothing can hide the point
    return inside & (off_head | (farthest >= z - allowed))


def hidden_views(
    visibility: np.ndarray, min_visible_fraction: float = DEFAULT_MIN_VISIBLE_FRACTION
) -> np.ndarray:
    """Views whose face is mostly hidden: fewer than ``min_visible_fraction`` landmarks visible.

    Args:
        visibility: ``(V, N)`` bool.
        min_visible_fraction: threshold on the visible fraction.

    Returns:
        ``(V,)`` bool, ``True`` for a mostly hidden face.
    """
    vis = np.asarray(visibility, bool)
    return np.asarray(vis.mean(axis=1) < min_visible_fraction)


@dataclass(frozen=True)
class ViewLandmarks:
    """Landmarks of ``V`` views of one identity.

    Attributes:
        landmarks3d: ``(N, 3)`` float64 world points (the lifted source landmarks).
        points: ``(V, N, 2)`` float64 pixels, 0-based integer-centred; exactly
            ``project_points(landmarks3d, P) − 0.5`` for each view's ``P``.
        depth: ``(V, N)`` float64 camera-frame depth of each landmark.
        visible: ``(V, N)`` bool from the depth test (all True when no depth maps were given).
        hidden: ``(V,)`` bool, the face is mostly hidden in the view.
    """

    landmarks3d: np.ndarray
    points: np.ndarray
    depth: np.ndarray
    visible: np.ndarray
    hidden: np.ndarray


def transfer_landmarks(
    landmarks3d: np.ndarray | torch.Tensor,
    cameras: torch.Tensor | np.ndarray,
    size: int,
    depth_maps: np.ndarray | None = None,
    tolerance: float | None = None,
    min_visible_fraction: float = DEFAULT_MIN_VISIBLE_FRACTION,
) -> ViewLandmarks:
    """Landmarks of every view: projection, visibility, hidden-face flags.

    Args:
        landmarks3d: ``(N, 3)`` world points (from :func:`lift_landmarks`).
        cameras: ``(V, 25)`` EG3D labels.
        size: image side in pixels (of the views and of ``depth_maps``).
        depth_maps: ``(V, S, S)`` rendered depth of the same views, or ``None`` to skip the
            depth test (then only "inside the image and in front of the camera" counts).
        tolerance: depth-test tolerance in world units; default
            :data:`DEFAULT_VISIBILITY_TOLERANCE` x :func:`head_scale`.
        min_visible_fraction: see :func:`hidden_views`.

    Returns:
        The :class:`ViewLandmarks`.
    """
    X = _as_points(landmarks3d, 3, "landmarks3d")
    labels = _as_labels(cameras)
    pixels, depth = project_landmarks(X, labels, size)
    px, z = pixels.numpy(), depth.numpy()
    if depth_maps is None:
        inside = (px > -0.5).all(-1) & (px < size - 0.5).all(-1) & (z > 0)
        visible = np.asarray(inside)
    else:
        maps = np.asarray(depth_maps)
        if maps.shape != (len(labels), size, size):
            raise BadInputError(
                "depth", f"expected ({len(labels)}, {size}, {size}) depth maps, got {maps.shape}"
            )
        tol = tolerance
        if tol is None:
            tol = DEFAULT_VISIBILITY_TOLERANCE * head_scale(X.numpy())
        K, _, _ = eg3d_label_to_camera(labels, size, size)
        pixel_size = np.abs(z) / K[:, 0, 0].numpy()[:, None]
        visible = landmark_visibility(px, z, maps, tol, pixel_size=pixel_size)
    return ViewLandmarks(
        landmarks3d=X.numpy(),
        points=px,
        depth=z,
        visible=visible,
        hidden=hidden_views(visible, min_visible_fraction),
    )
