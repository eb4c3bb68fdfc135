"""Head pose from 68 landmarks: fit a mean 3D face, read the rotation's Pose_Para angles.

One code path for every landmark model: the pose is the rotation that best maps
:data:`MEAN_FACE_68` (model space of AFLW2000-3D ``Pose_Para``: x toward the subject's left, y
up, z toward the camera) onto the predicted points, as Euler angles ``[pitch, yaw, roll]`` in
radians (:mod:`mvface.geometry.rotations`).

* :func:`head_pose` (what ``Landmarks.pose`` of every model is): a weak-perspective (scaled
  orthographic) camera ``x ≈ s · Π R v + t`` (``Π``: the first two rows) fitted to the points'
  x and y by :func:`fit_rotation_2d`: the affine camera's nearest scaled rotation to start,
  then alternating steps (each point's missing depth from the current rotation, then a 3D
  similarity fit) with robust (Huber) reweighting. AFLW2000-3D's pose is a weak-perspective
  3DMM fit's, so this is its camera model.
* :func:`head_pose_3d`: a weighted similarity (Umeyama) fit to 3D points ``(N, 68, 3)`` (x
  right, y down, z toward the camera in the same units), :func:`fit_rotation_3d`: the pose a
  model's own 3D points imply.

The jaw contour (iBUG 0-16) is where the 68-point conventions disagree (a 2D silhouette in
300-W, fixed 3D vertices in 3DMM fits) and where a turned face hides its points: the 2D fit is
started twice, the second time with each jaw point weighted by how squarely it faces the camera
under the first (affine) fit's rotation (:func:`jaw_visibility`).

All of it is NumPy, vectorised over the N faces (it runs after every prediction), float64
throughout. The mean face is mvface's own data (``scripts/make_mean_face.py``).

Example:
    >>> R = np.asarray(rotation_from_euler(np.array([[0.1, 0.5, -0.2]])))
    >>> pts = MEAN_FACE_68 @ R[0].T * 40 + 200  # y up; image rows grow downward:
    >>> pts[:, 1] = 450 - pts[:, 1]
    >>> np.round(head_pose(pts[None, :, :2]), 6).tolist()
    [[0.1, 0.5, -0.2]]
    >>> np.round(head_pose_3d(pts[None]), 6).tolist()
    [[0.1, 0.5, -0.2]]
"""

from __future__ import annotations

import numpy as np

from mvface.errors import BadInputError
from mvface.geometry._mean_face_68 import MEAN_FACE_68 as _MEAN_FACE_TUPLE

__all__ = [
    "JAW_NORMALS",
    "MEAN_FACE_68",
    "POINT_WEIGHTS",
    "fit_rotation_2d",
    "fit_rotation_3d",
    "head_pose",
    "head_pose_2d",
    "head_pose_3d",
    "jaw_visibility",
    "rotation_from_euler",
    "rotation_to_euler_np",
]

#: ``(68, 3)`` mean face, model space (x toward the subject's left, y up, z toward the camera),
#: centred, unit RMS radius, symmetric; made by ``scripts/make_mean_face.py`` (see its recipe).
MEAN_FACE_68: np.ndarray = np.array(_MEAN_FACE_TUPLE, dtype=np.float64)
MEAN_FACE_68.flags.writeable = False

#: ``(68,)`` default base weights of the fits (all 1; the 2D fit lowers the jaw's by visibility).
POINT_WEIGHTS: np.ndarray = np.ones(68)
POINT_WEIGHTS.flags.writeable = False

#: Jaw-contour points (iBUG 0-16).
JAW = slice(0, 17)

#: Distance, in the mean face's units (RMS radii), of the vertical axis behind the face centre
#: from which the jaw contour's outward normals point (a cylinder head model).
JAW_AXIS_DEPTH = 2.0

#: A jaw point's weight is ``clip((n_z − FROM) / SPAN, JAW_MIN_WEIGHT, 1)`` with ``n_z`` the
#: camera-facing component of its rotated outward normal: 1 facing the camera, small on a
#: turned face's far side, where a 2D silhouette or a guess stands in for the hidden jaw line.
JAW_VISIBLE_FROM = 0.2
JAW_VISIBLE_SPAN = 0.6
JAW_MIN_WEIGHT = 0.02

#: Robust alternating steps of the 2D fit after its affine start. On the AFLW2000-3D dev half
#: (998 faces) ``fast``'s mean |yaw| error is 4.15° with 0 steps, 4.10° with 1, 4.07° with 3;
#: each step costs about as much as the rest of the fit.
ITERATIONS_2D = 1

#: Huber threshold of the 2D fit's robust weights, in multiples of the median residual.
HUBER_K = 2.0


def _jaw_normals() -> np.ndarray:
    face = np.asarray(_MEAN_FACE_TUPLE, dtype=np.float64)[JAW]
    normals = face * np.array([1.0, 0.0, 1.0]) + np.array([0.0, 0.0, JAW_AXIS_DEPTH])
    return normals / np.linalg.norm(normals, axis=-1, keepdims=True)


#: ``(17, 3)`` unit outward normals of the jaw points, model space (horizontal, from the axis).
JAW_NORMALS: np.ndarray = _jaw_normals()
JAW_NORMALS.flags.writeable = False

_Y_UP_3D = np.array([1.0, -1.0, 1.0])
_Y_UP_2D = np.array([1.0, -1.0])


def _check_points(points: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[1] != 68 or pts.shape[2] not in dims:
        want = " or ".join(f"(N, 68, {d})" for d in dims)
        raise BadInputError("points", f"expected {want}, got {tuple(pts.shape)}")
    if not np.isfinite(pts).all():
        raise BadInputError("points", "contain NaN or infinite values")
    return pts


def _weights(weights: np.ndarray | None, count: int) -> np.ndarray:
    w = POINT_WEIGHTS if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.broadcast_to(w, (count, 68))
    if (w < 0).any() or not (w.sum(-1) > 0).all():
        raise BadInputError("weights", "must be non-negative and not all zero")
    return w


def rotation_from_euler(angles: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`mvface.geometry.rotations.euler_to_rotation` (same ``R``).

    Args:
        angles: ``(*, 3)`` ``[pitch, yaw, roll]`` radians.

    Returns:
        ``(*, 3, 3)`` rotations, model space -> y-up image frame.
    """
    a = np.asarray(angles, dtype=np.float64)
    (cp, cy, cr), (sp, sy, sr) = np.moveaxis(np.cos(a), -1, 0), np.moveaxis(np.sin(a), -1, 0)
    rows = (
        (cy * cr, cy * sr, -sy),
        (sp * sy * cr - cp * sr, cp * cr + sp * sy * sr, sp * cy),
        (cp * sy * cr + sp * sr, cp * sy * sr - sp * cr, cp * cy),
    )
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def rotation_to_euler_np(R: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`mvface.geometry.rotations.rotation_to_euler` (same angles).

    Args:
        R: ``(*, 3, 3)`` rotations (model space -> y-up image frame).

    Returns:
        ``(*, 3)`` ``[pitch, yaw, roll]`` radians; pitch and roll in ``(−π, π]``, yaw in
        ``[−π/2, π/2]``; at gimbal lock roll is 0 and pitch takes the in-plane rotation.
    """
    R = np.asarray(R, dtype=np.float64)
    cos_yaw = np.hypot(R[..., 0, 0], R[..., 0, 1])
    locked = cos_yaw <= 16 * np.finfo(np.float64).eps
    yaw = np.arctan2(-R[..., 0, 2], cos_yaw)
    pitch = np.where(
        locked, np.arctan2(-R[..., 2, 1], R[..., 1, 1]), np.arctan2(R[..., 1, 2], R[..., 2, 2])
    )
    roll = np.where(locked, 0.0, np.arctan2(R[..., 0, 1], R[..., 0, 0]))
    return np.stack([pitch, yaw, roll], axis=-1)


def _similarity(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Umeyama fit ``dst ≈ s R src + t``; returns ``s`` ``(N,)``, ``R`` ``(N, 3, 3)``.

    ``src`` ``(68, 3)`` or ``(N, 68, 3)``, ``dst`` ``(N, 68, 3)``, ``w`` ``(N, 68)`` summing to 1.
    """
    wc = w[..., None]
    src_c = src - (wc * src).sum(-2, keepdims=True)
    dst_c = dst - (wc * dst).sum(-2, keepdims=True)
    cov = np.swapaxes(dst_c * wc, -1, -2) @ src_c  # (N, 3, 3)
    U, S, Vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    d = np.where(d == 0, 1.0, d)
    U[..., :, 2] *= d[:, None]
    S[..., 2] *= d
    var = (wc * src_c * src_c).sum((-2, -1))
    return S.sum(-1) / np.maximum(var, np.finfo(np.float64).tiny), U @ Vt


def fit_rotation_3d(points: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rotation of the mean face that best fits 3D points (weighted Umeyama similarity).

    Args:
        points: ``(N, 68, 3)`` image pixels (x right, y down), z toward the camera in the same
            units.
        weights: ``(68,)`` or ``(N, 68)`` non-negative per-point weights (default
            :data:`POINT_WEIGHTS`).

    Returns:
        ``(N, 3, 3)`` rotations, model space -> y-up image frame.

    Raises:
        BadInputError: wrong shape, NaN/Inf, bad weights.
    """
    pts = _check_points(points, (3,)) * _Y_UP_3D
    w = _weights(weights, len(pts))
    return _similarity(MEAN_FACE_68, pts, w / w.sum(-1, keepdims=True))[1]


#: ``(68, 9)`` outer products ``v vᵀ`` of the mean face's points, for the weighted moments.
_FACE_OUTER: np.ndarray = (MEAN_FACE_68[:, :, None] * MEAN_FACE_68[:, None, :]).reshape(68, 9)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of ``(N, 3)`` arrays (``np.cross`` costs ten times more)."""
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _det(M: np.ndarray) -> np.ndarray:
    """Determinants ``(N,)`` of ``(N, 3, 3)`` matrices: the triple product of the rows."""
    return (M[:, 0] * _cross(M[:, 1], M[:, 2])).sum(-1)


def _median_68(values: np.ndarray) -> np.ndarray:
    """``(N, 1)`` medians of ``(N, 68)`` values (``np.median``'s Python overhead was 50 µs)."""
    part = np.partition(values, (33, 34), axis=-1)
    return (part[:, 33:34] + part[:, 34:35]) / 2


def _affine_rotation(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares affine camera of the mean face, made a scaled rotation.

    ``A = C G⁻¹`` (``C``: weighted cross-covariance of ``x`` with the face, ``G``: the face's
    weighted covariance); its nearest row-orthonormal matrix ``(A Aᵀ)^(-1/2) A`` in closed form
    (the 2 x 2 square root), completed by the cross product. Every step is a few vectorised
    array operations: a batched LAPACK call per face cost more than the rest together.

    Args:
        x: ``(N, 68, 2)`` y-up points.
        w: ``(N, 68)`` weights summing to 1.

    Returns:
        ``R`` ``(N, 3, 3)`` and the scale ``(N,)`` (mean of ``A``'s singular values).
    """
    v = MEAN_FACE_68
    n = len(x)
    mu_v = w @ v  # (N, 3)
    mu_x = np.einsum("nk,nkd->nd", w, x)
    gram = (w @ _FACE_OUTER).reshape(n, 3, 3) - mu_v[:, :, None] * mu_v[:, None, :]
    wx = np.swapaxes(w[..., None] * x, 1, 2).reshape(2 * n, 68)
    cross = (wx @ v).reshape(n, 2, 3) - mu_x[:, :, None] * mu_v[:, None, :]
    A = cross @ np.linalg.inv(gram)  # (N, 2, 3)
    m00 = (A[:, 0] * A[:, 0]).sum(-1)
    m01 = (A[:, 0] * A[:, 1]).sum(-1)
    m11 = (A[:, 1] * A[:, 1]).sum(-1)
    root_det = np.sqrt(np.maximum(m00 * m11 - m01 * m01, 0.0))
    tau = np.sqrt(m00 + m11 + 2 * root_det)  # = σ1 + σ2
    # (A Aᵀ)^(-1/2) = tau (M + root_det I)⁻¹
    a, b, d = m00 + root_det, m01, m11 + root_det
    inv_det = tau / np.maximum(a * d - b * b, np.finfo(np.float64).tiny)
    r0 = (inv_det * d)[:, None] * A[:, 0] - (inv_det * b)[:, None] * A[:, 1]
    r1 = (inv_det * a)[:, None] * A[:, 1] - (inv_det * b)[:, None] * A[:, 0]
    R = np.stack([r0, r1, _cross(r0, r1)], axis=1)
    return R, tau / 2


def _weak_perspective(x: np.ndarray, base: np.ndarray, iterations: int) -> np.ndarray:
    """One robust weak-perspective fit of the mean face to y-up 2D points ``x`` ``(N, 68, 2)``.

    ``base`` ``(N, 68)`` weights summing to 1. Returns ``R`` ``(N, 3, 3)``.
    """
    R, scale = _affine_rotation(x, base)
    w = base
    n = len(x)
    tiny = np.finfo(np.float64).tiny
    face_t = MEAN_FACE_68.T  # (3, 68)
    # coordinates lead, points last: reductions over 68 contiguous values, and the mean face
    # under all N rotations is one (3N x 3) @ (3 x 68) product (a per-face loop over tiny
    # trailing axes cost 10x more)
    xt = np.ascontiguousarray(np.swapaxes(x, 1, 2))  # (N, 2, 68)
    for _ in range(iterations):
        # Huber weights from the residuals of the current fit, then an alternating step: each
        # point's depth from the current fit and a weighted 3D similarity fit to the completed
        # points (the step that keeps the camera a scaled rotation while it moves)
        mu_v = w @ MEAN_FACE_68  # (N, 3)
        xc = xt - (xt * w[:, None]).sum(-1, keepdims=True)
        rotated = (R.reshape(3 * n, 3) @ face_t).reshape(n, 3, 68) - (R @ mu_v[..., None])
        dx = xc[:, 0] - scale[:, None] * rotated[:, 0]
        dy = xc[:, 1] - scale[:, None] * rotated[:, 1]
        residual = np.sqrt(dx * dx + dy * dy)
        limit = HUBER_K * _median_68(residual)
        w = base * np.minimum(1.0, limit / np.maximum(residual, tiny))
        w = w / w.sum(-1, keepdims=True)
        mu_v = w @ MEAN_FACE_68
        xc = xt - (xt * w[:, None]).sum(-1, keepdims=True)
        depth = scale[:, None] * (R[:, 2] @ face_t - (R[:, 2] * mu_v).sum(-1, keepdims=True))
        target = np.concatenate([xc, depth[:, None]], axis=1)  # (N, 3, 68), weighted mean 0
        # cross-covariance Σ w_k t_k (v_k − μ)ᵀ = Σ w_k t_k v_kᵀ, one product for all faces
        cov = ((target * w[:, None]).reshape(3 * n, 68) @ MEAN_FACE_68).reshape(n, 3, 3)
        U, S, Vt = np.linalg.svd(cov)
        d = np.where(_det(U) * _det(Vt) < 0, -1.0, 1.0)
        U[:, :, 2] *= d[:, None]
        S[:, 2] *= d
        variance = w @ (MEAN_FACE_68 * MEAN_FACE_68).sum(-1) - (mu_v * mu_v).sum(-1)
        R, scale = U @ Vt, S.sum(-1) / np.maximum(variance, tiny)
    return R


def jaw_visibility(R: np.ndarray) -> np.ndarray:
    """``(N, 17)`` weights in ``[JAW_MIN_WEIGHT, 1]`` of the jaw points under rotations ``R``.

    How squarely each jaw point faces the camera: the z component of its rotated outward normal
    (:data:`JAW_NORMALS`), mapped by :data:`JAW_VISIBLE_FROM` and :data:`JAW_VISIBLE_SPAN`.

    Args:
        R: ``(N, 3, 3)`` rotations, model space -> y-up image frame.
    """
    facing = R[:, 2] @ JAW_NORMALS.T  # (N, 17)
    return np.clip((facing - JAW_VISIBLE_FROM) / JAW_VISIBLE_SPAN, JAW_MIN_WEIGHT, 1.0)


def fit_rotation_2d(
    points: np.ndarray, weights: np.ndarray | None = None, iterations: int = ITERATIONS_2D
) -> np.ndarray:
    """Rotation of the mean face that best fits 2D points under a weak-perspective camera.

    Minimises ``Σ w_k ρ(|x_k − (s Π R v_k + t)|)`` over the scale ``s``, rotation ``R`` and
    2D translation ``t`` (``Π``: the first two rows; ``ρ``: Huber at :data:`HUBER_K` times the
    median residual): AFLW2000-3D's own camera model. Start: the weighted least-squares affine
    camera (2 x 3), its nearest row-orthonormal matrix completed by the cross product. That
    start's rotation weights the jaw points by :func:`jaw_visibility` (a turned face's far jaw
    contour is a silhouette, not the 3D jaw line); with those weights the fit starts again and
    takes ``iterations`` alternating steps (new robust weights, each point's depth from the
    current fit, a weighted 3D similarity fit to the completed points). Exact on noise-free
    projections of the mean face.

    Args:
        points: ``(N, 68, 2)`` image pixels (x right, y down).
        weights: ``(68,)`` or ``(N, 68)`` non-negative base weights per point (default
            :data:`POINT_WEIGHTS`).
        iterations: robust alternating steps of the final fit (0: its affine start alone).

    Returns:
        ``(N, 3, 3)`` rotations, model space -> y-up image frame; NaN for a face whose points
        are collinear (or all at one place).

    Raises:
        BadInputError: wrong shape, NaN/Inf, bad weights.
    """
    x = _check_points(points, (2,)) * _Y_UP_2D
    base = np.array(_weights(weights, len(x)))
    spread = x - x.mean(1, keepdims=True)
    cov = np.swapaxes(spread, 1, 2) @ spread  # (N, 2, 2)
    trace = cov[:, 0, 0] + cov[:, 1, 1]
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
    flat = ~(det > 1e-8 * trace**2)  # collinear or coincident points: no rotation to find
    if flat.any():
        out = np.full((len(x), 3, 3), np.nan)
        if not flat.all():
            out[~flat] = fit_rotation_2d(np.asarray(points)[~flat], base[~flat], iterations)
        return out
    # the visibility pass needs only a rough rotation: the affine start (the robust steps there
    # changed the AFLW2000-3D dev errors by under 0.05° and doubled the cost)
    R = _weak_perspective(x, base / base.sum(-1, keepdims=True), 0)
    base[:, JAW] *= jaw_visibility(R)
    return _weak_perspective(x, base / base.sum(-1, keepdims=True), iterations)


def head_pose_3d(points: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``[pitch, yaw, roll]`` radians ``(N, 3)`` of ``(N, 68, 3)`` points (:func:`fit_rotation_3d`).

    The pose a model's own 3D points imply; :func:`head_pose` does not use z (see there).
    """
    return rotation_to_euler_np(fit_rotation_3d(points, weights))


def head_pose_2d(
    points: np.ndarray, weights: np.ndarray | None = None, iterations: int = ITERATIONS_2D
) -> np.ndarray:
    """``[pitch, yaw, roll]`` radians ``(N, 3)`` of ``(N, 68, 2)`` points (:func:`fit_rotation_2d`).

    Exact for weak-perspective views of the mean face; under a real (pinhole) camera the
    perspective biases it by about 1° at 50 mean-face radii (~3.5 m) and 2° at 20 (~1.5 m).
    """
    return rotation_to_euler_np(fit_rotation_2d(points, weights, iterations))


def head_pose(points: np.ndarray) -> np.ndarray:
    """Head pose of predicted landmarks: what every model returns as ``Landmarks.pose``.

    The weak-perspective fit of x and y (:func:`head_pose_2d`) for 2D and 3D points alike: on
    the AFLW2000-3D dev half it is as good as the 3D fit for ``3ddfa-v2`` and better for the
    face-mesh models, whose z is their least reliable coordinate (``benchmarks/bench_pose.py``).

    Args:
        points: ``(N, 68, 2)`` or ``(N, 68, 3)`` image pixels (x right, y down); z is ignored.

    Returns:
        ``(N, 3)`` ``[pitch, yaw, roll]`` radians, AFLW2000-3D ``Pose_Para`` convention; NaN
        for a face whose x, y are not all finite or are collinear (the others are still
        fitted).

    Raises:
        BadInputError: wrong shape.

    Example:
        >>> head_pose(np.zeros((0, 68, 3))).shape
        (0, 3)
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[1] != 68 or pts.shape[2] not in (2, 3):
        raise BadInputError("points", f"expected (N, 68, 2) or (N, 68, 3), got {pts.shape}")
    xy = pts[..., :2]
    finite = np.isfinite(xy).all(axis=(1, 2))
    if finite.all():
        return head_pose_2d(xy)
    out = np.full((len(pts), 3), np.nan)
    if finite.any():
        out[finite] = head_pose_2d(xy[finite])
    return out
