"""The head proxy: an egg-shaped closed surface behind the face mesh.

Step 5 of :mod:`mvface.synth.mesh_head`. Two half-ellipsoids sharing their x and y semi-axes
(:class:`HeadProxy`), sized from the face mesh with adult head proportions
(:func:`fit_head_proxy`) and meshed as a latitude-longitude grid pulled onto the face surface in
the face region, so that the face mesh sits on it without a step. Units are EG3D's world units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay, cKDTree

from mvface.errors import BadInputError
from mvface.synth.face_mesh import MP_CHEEKS, MP_CHIN, MP_FOREHEAD

__all__ = [
    "HeadProxy",
    "fit_head_proxy",
    "grid_mirror_partners",
    "proxy_surface",
    "pull_onto_face",
]


@dataclass(frozen=True)
class HeadProxy:
    """An egg-shaped head: two half-ellipsoids joined at the ear plane ``z = center_z``.

    A point ``p`` (world) is on the surface when ``|((p − c) / axes)|² = 1`` with
    ``axes = (a, b, front)`` where ``p_z ≥ center_z`` and ``(a, b, back)`` behind.

    Attributes:
        center: ``(3,)`` world centre ``c`` (on the ear plane).
        a: half-width along world x.
        b: half-height along world y.
        front: depth from the ear plane to the front (world +z).
        back: depth from the ear plane to the back of the head.
    """

    center: np.ndarray
    a: float
    b: float
    front: float
    back: float

    def normalize(self, points: np.ndarray) -> np.ndarray:
        """``(N, 3)`` world points in the unit-sphere space of the proxy."""
        q = (points - self.center) / np.array([self.a, self.b, 1.0])
        depth = np.where(q[:, 2] >= 0, self.front, self.back)
        q[:, 2] = q[:, 2] / depth
        return q

    def denormalize(self, q: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalize`."""
        depth = np.where(q[:, 2] >= 0, self.front, self.back)
        scale = np.stack([np.full(len(q), self.a), np.full(len(q), self.b), depth], axis=1)
        return q * scale + self.center


#: Head proportions relative to the face mesh (anthropometry of adult heads, plus hair):
#: half-width / cheek width, chin-to-vertex / chin-to-mesh-top, chin margin below the proxy,
#: head length / cheek width.
PROXY_WIDTH_RATIO = 0.5
PROXY_HEIGHT_RATIO = 1.32
PROXY_CHIN_MARGIN = 0.06
PROXY_LENGTH_RATIO = 1.3


def face_extent(face: np.ndarray) -> tuple[float, float]:
    """Cheek-to-cheek width and chin-to-forehead height of a ``(468, 3)`` face mesh (world
    units): what every head shape is sized from.

    Raises:
        BadInputError: the mesh has no width or height.
    """
    width = float(np.linalg.norm(face[MP_CHEEKS[1]] - face[MP_CHEEKS[0]]))
    height = float(face[MP_FOREHEAD][1] - face[MP_CHIN][1])
    if width <= 0 or height <= 0:
        raise BadInputError("face mesh", "degenerate face mesh (no width or height)")
    return width, height


def fit_head_proxy(face: np.ndarray) -> HeadProxy:
    """Size and place the head proxy from the face mesh (world frame, face looking along +z).

    Width from the cheek points (MediaPipe 234/454, near the ears), height from chin (152) to
    the top of the mesh (10) scaled to the top of the skull, the ear plane through the cheek
    points, the front reaching the forehead just behind the mesh, the back from the head
    length.

    Args:
        face: ``(468, 3)`` world vertices of the face mesh.

    Returns:
        The proxy.
    """
    width, height = face_extent(face)
    cheek_r, cheek_l = face[MP_CHEEKS[0]], face[MP_CHEEKS[1]]
    chin, top = face[MP_CHIN], face[MP_FOREHEAD]
    a = PROXY_WIDTH_RATIO * width
    bottom = chin[1] - PROXY_CHIN_MARGIN * height
    vertex = chin[1] + PROXY_HEIGHT_RATIO * height
    b = 0.5 * (vertex - bottom)
    center = np.array([0.5 * (cheek_r[0] + cheek_l[0]), 0.5 * (vertex + bottom), 0.0])
    center[2] = 0.5 * (cheek_r[2] + cheek_l[2])
    # the front passes 1% of the head height behind the top of the mesh
    rel = min((top[1] - center[1]) / b, 0.95)
    front = (top[2] - 0.01 * height - center[2]) / math.sqrt(1 - rel**2)
    front = float(np.clip(front, 0.5 * a, 1.5 * a))
    back = max(PROXY_LENGTH_RATIO * width - front, 0.8 * a)
    return HeadProxy(center=center, a=a, b=float(b), front=front, back=float(back))


def _sphere_grid(
    n_lat: int, n_lon: int, theta: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere vertices ``(2 + (n_lat − 1)·n_lon, 3)`` and faces of a lat-long grid.

    Latitude rings run from +y (top) to −y; longitude 0 is +z (the face side). ``theta``:
    the ``n_lat − 1`` ring polar angles (radians from +y, increasing; default: evenly spaced).
    """
    if theta is None:
        theta = np.linspace(0, math.pi, n_lat + 1)[1:-1]
    if len(theta) != n_lat - 1:
        raise ValueError(f"theta must hold n_lat - 1 = {n_lat - 1} angles, got {len(theta)}")
    phi = np.linspace(0, 2 * math.pi, n_lon, endpoint=False)
    T, P = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(T) * np.sin(P), np.cos(T), np.sin(T) * np.cos(P)], -1).reshape(-1, 3)
    vertices = np.vstack([[0.0, 1.0, 0.0], ring, [0.0, -1.0, 0.0]])
    faces: list[np.ndarray] = []
    j = np.arange(n_lon)
    jn = (j + 1) % n_lon
    faces.append(np.stack([np.zeros(n_lon, int), 1 + jn, 1 + j], 1))
    for i in range(n_lat - 2):
        a = 1 + i * n_lon + j
        b = 1 + i * n_lon + jn
        c = 1 + (i + 1) * n_lon + j
        d = 1 + (i + 1) * n_lon + jn
        faces += [np.stack([a, b, c], 1), np.stack([b, d, c], 1)]
    last = len(vertices) - 1
    base = 1 + (n_lat - 2) * n_lon
    faces.append(np.stack([np.full(n_lon, last), base + j, base + jn], 1))
    # the rows above wind clockwise seen from outside: flip so that normals point outwards
    return vertices, np.vstack(faces)[:, ::-1].astype(np.int32).copy()


def _stereographic(q: np.ndarray) -> np.ndarray:
    """Front-hemisphere chart of unit directions: ``(x, y) / (1 + z)``."""
    return q[:, :2] / np.maximum(1.0 + q[:, 2:3], 1e-3)


def _interpolate_on_triangles(
    query: np.ndarray, points: np.ndarray, triangles: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Piecewise-linear interpolation of ``values`` at ``points`` over ``triangles``.

    Brute force over all triangles, vectorized (a few hundred triangles here): qhull's point
    location (``LinearNDInterpolator``) sometimes takes seconds for points outside the hull.

    Args:
        query: ``(M, 2)`` positions.
        points: ``(N, 2)`` vertices.
        triangles: ``(F, 3)`` vertex indices.
        values: ``(N,)`` values at the vertices.

    Returns:
        ``(M,)``; ``nan`` outside every triangle.
    """
    out = np.full(len(query), np.nan)
    p = points[triangles]  # (F, 3, 2)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-12
    p, e1, e2, det, tri = p[ok], e1[ok], e2[ok], det[ok], triangles[ok]
    for start in range(0, len(query), 512):
        q = query[start : start + 512, None, :] - p[None, :, 0]  # (m, F, 2)
        b1 = (q[..., 0] * e2[:, 1] - q[..., 1] * e2[:, 0]) / det
        b2 = (e1[:, 0] * q[..., 1] - e1[:, 1] * q[..., 0]) / det
        b0 = 1 - b1 - b2
        inside = (b0 >= -1e-9) & (b1 >= -1e-9) & (b2 >= -1e-9)
        hit = inside.any(1)
        k = inside.argmax(1)[hit]
        rows = np.flatnonzero(hit)
        v = values[tri[k]]
        out[start + rows] = b0[rows, k] * v[:, 0] + b1[rows, k] * v[:, 1] + b2[rows, k] * v[:, 2]
    return out


def proxy_surface(
    proxy: HeadProxy,
    face: np.ndarray,
    face_faces: np.ndarray,
    n_lat: int = 48,
    n_lon: int = 96,
    blend: float = 0.18,
    recess: float = 0.06,
) -> tuple[np.ndarray, np.ndarray]:
    """Closed head surface: the proxy, pulled onto the face (slightly behind it) in the face region.

    In the proxy's unit-sphere space every face vertex has a direction and a radius ``ρ``. Grid
    directions inside the face's outline take the face's radius there minus ``recess`` (ramped
    from 0 at the outline, so the face mesh always lies in front); outside, the outline's radius
    offset fades to the plain proxy (``ρ = 1``) over ``blend`` (stereographic units, ~20°).

    Returns:
        ``(N, 3)`` world vertices and ``(F, 3)`` faces.
    """
    dirs, faces = _sphere_grid(n_lat, n_lon)
    rho = pull_onto_face(dirs, proxy.normalize(face), face_faces, blend, recess)
    return proxy.denormalize(dirs * rho[:, None]), faces


def pull_onto_face(
    dirs: np.ndarray,
    q_face: np.ndarray,
    face_faces: np.ndarray,
    blend: float = 0.18,
    recess: float = 0.06,
) -> np.ndarray:
    """Radii of a closed surface's grid directions pulled onto the face (see
    :func:`proxy_surface`), in a normalized space where the plain surface is the unit sphere.

    Args:
        dirs: ``(N, 3)`` unit directions of the grid (+z: the face side).
        q_face: ``(M, 3)`` face mesh vertices in the normalized space.
        face_faces: ``(F, 3)`` triangles of the face mesh.
        blend: width of the fade from the face's outline to the plain surface (stereographic
            units).
        recess: how far the surface stays behind the face inside its outline (normalized).

    Returns:
        ``(N,)`` radii ``ρ`` (1 on the plain surface).
    """
    rho_face = np.linalg.norm(q_face, axis=1)
    s_face = _stereographic(q_face / rho_face[:, None])
    s_grid = _stereographic(dirs)
    front = dirs[:, 2] > -0.2
    # outline of the face mesh = vertices on its boundary edges
    edges = np.sort(np.concatenate([face_faces[:, [0, 1]], face_faces[:, [1, 2]]]), axis=1)
    edges = np.concatenate([edges, np.sort(face_faces[:, [2, 0]], axis=1)])
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    boundary = np.unique(unique[counts == 1])
    tree = cKDTree(s_face[boundary])
    dist, nearest = tree.query(s_grid)
    # interpolate only where the face can be
    low, high = s_face.min(0), s_face.max(0)
    near = front & (s_grid >= low).all(1) & (s_grid <= high).all(1)
    rho_inside = np.full(len(dirs), np.nan)
    triangles = Delaunay(s_face).simplices
    rho_inside[near] = _interpolate_on_triangles(s_grid[near], s_face, triangles, rho_face)
    inside = near & np.isfinite(rho_inside)
    rho = np.ones(len(dirs))
    offset = rho_face[boundary][nearest] - 1.0
    outside = front & ~inside
    rho[outside] = 1.0 + offset[outside] * np.exp(-((dist[outside] / blend) ** 2))
    ramp = np.clip(dist[inside] / (0.5 * blend), 0.0, 1.0)
    rho[inside] = rho_inside[inside] - recess * ramp
    return rho


def grid_mirror_partners(n_lat: int, n_lon: int) -> np.ndarray:
    """Partners of :func:`_sphere_grid`'s vertices across ``x = 0`` (longitude ``φ → 2π − φ``)."""
    ring = np.arange((n_lat - 1) * n_lon).reshape(n_lat - 1, n_lon)
    mirrored = ring[:, (n_lon - np.arange(n_lon)) % n_lon].reshape(-1) + 1
    return np.concatenate([[0], mirrored, [(n_lat - 1) * n_lon + 1]]).astype(np.int64)
