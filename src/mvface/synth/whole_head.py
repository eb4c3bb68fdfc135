"""A whole head behind the face mesh: cranium, jaw, neck and two ears (the ``"head"`` backend).

The ``"mesh"`` backend (:mod:`mvface.synth.mesh_head`) puts an egg behind the face; seen from the
side it stays an egg, with the ears painted on it and no neck. This module replaces the egg by a
procedural head made by the project (no template, no shape model: its licence is mvface's own):

* :class:`WholeHeadShape`: a smooth union of three convex solids sized from the face mesh with
  adult proportions — the cranium (a superellipsoid, its top at the proxy's crown, its bottom at
  mouth level, the head length of :data:`~mvface.synth.head_proxy.PROXY_LENGTH_RATIO`), the jaw
  (an ellipsoid from the chin back to the angle of the jaw, MediaPipe 172/397) and the neck (an
  elliptic cylinder leaning back by :data:`NECK_LEAN_DEG`, down past the bottom of every view);
  star-shaped about :attr:`WholeHeadShape.center`, so a latitude–longitude grid meshes it
  (:func:`whole_head_shell`, rings spaced evenly in arc length so the neck gets its share) and
  it is pulled onto the face exactly as the egg is
  (:func:`~mvface.synth.head_proxy.pull_onto_face`): the face mesh sits on it without a step.
* two ears (:func:`ear_mesh`): closed, flattened, cupped ovals with a raised rim, between the
  brows' and the nose base's height (MediaPipe 105/334 and 2), their front edge on the head
  behind the cheek and their back edge standing off it by :data:`EAR_FLARE_DEG`.
* texture (:meth:`WholeHeadBackend._paint_shell`): what the photo saw well is the photo, the
  rest the mirror side where that was seen (as for ``"mesh"``), and where neither side was seen
  a painted colour model (:mod:`mvface.synth.head_paint`) — skin from the photo's face, the
  neck a little darker, and hair above a hairline from the photo's hair region above the
  forehead when there is one (its texture tiled) — never the backdrop.

Units are EG3D's world units in the face's own frame (x along the eye line, y up, z out of the
face, origin the mesh centroid; :func:`~mvface.synth.face_mesh.face_frame`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mvface.errors import BadInputError
from mvface.synth.face_mesh import MP_CHEEKS, MP_CHIN, MP_FOREHEAD, MP_MOUTH
from mvface.synth.head_paint import hair_pixels, hair_texture, paint_head_chart, skin_colour
from mvface.synth.head_proxy import (
    PROXY_HEIGHT_RATIO,
    PROXY_LENGTH_RATIO,
    HeadProxy,
    _sphere_grid,
    face_extent,
    fit_head_proxy,
    grid_mirror_partners,
    pull_onto_face,
)
from mvface.synth.mesh_head import HeadShell, MeshHeadBackend
from mvface.synth.mesh_texture import face_outline_mask, project_vertices

__all__ = [
    "Blob",
    "Ear",
    "Neck",
    "WholeHeadBackend",
    "WholeHeadShape",
    "WholeHeadShell",
    "ear_mesh",
    "fit_whole_head",
    "whole_head_backend",
    "whole_head_shell",
]

#: MediaPipe face mesh vertices: brow centres (subject's right, left), nose base, angles of the
#: jaw (right, left).
MP_BROWS = (105, 334)
MP_NOSE_BASE = 2
MP_JAW_ANGLES = (172, 397)

#: Proportions relative to the cheek-to-cheek width ``W`` (MediaPipe 234–454) of adult heads
#: (anthropometric means: head breadth ≈ 1.1x bizygomatic breadth, neck breadth ≈ 0.7x head
#: breadth): cranium half-width, neck half-width and half-depth.
CRANIUM_WIDTH_RATIO = 0.53
NECK_WIDTH_RATIO = 0.34
NECK_DEPTH_RATIO = 0.37
#: The neck's axis leans back going down by this angle from the vertical (degrees); its front
#: (the throat) lies this many ``W`` behind the chin.
NECK_LEAN_DEG = 12.0
NECK_THROAT_BEHIND_CHIN = 0.42
#: Superellipsoid exponent of the cranium (2: an ellipsoid; more: fuller, boxier).
CRANIUM_EXPONENT = 2.3
#: Smooth union ``(Σ level⁻ᵏ)^(−1/k)`` of cranium, jaw and neck: lower = wider fillets.
UNION_SHARPNESS = 7.0
#: Ears: height / (brow-to-nose-base height), width / height, flare of the back edge away
#: from the head (degrees), thickness and cup depth / height, front edge behind the cheek
#: points (x ``W``).
EAR_HEIGHT_RATIO = 1.1
EAR_WIDTH_RATIO = 0.55
EAR_FLARE_DEG = 24.0
EAR_THICKNESS_RATIO = 0.12
EAR_CUP_RATIO = 0.08
EAR_RIM_RATIO = 0.05
EAR_BEHIND_CHEEK = 0.07
#: Width of the fade from the face's outline to the head (stereographic units; the egg's is
#: 0.18): wide, so the surface just beyond the face's outline (the chin's underside, the side
#: of the jaw) stays near the face's depth and landmarks annotated a few pixels off the face
#: mesh lift to the jaw, not to the neck behind it.
FACE_BLEND = 0.35
#: Shell parts (``HeadShell.part``).
PART_HEAD, PART_EAR = 0, 1


@dataclass(frozen=True)
class Blob:
    """A superellipsoid: ``level(p) = (Σ |(p − center)_k / axes_k|^exponent)^(1/exponent)``,
    inside where ``level < 1``."""

    center: np.ndarray
    axes: np.ndarray
    exponent: float = 2.0

    def level(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` points -> ``(...)`` level (1 on the surface)."""
        q = np.abs((points - self.center) / self.axes)
        return np.sum(q**self.exponent, axis=-1) ** (1.0 / self.exponent)


@dataclass(frozen=True)
class Neck:
    """An elliptic cylinder with rounded ends, its axis in the y-z plane.

    Attributes:
        top: ``(3,)`` upper end of the axis (inside the cranium).
        lean: radians; the axis runs down (−y) and back (−z) at this angle from the vertical.
        half_width: along x.
        half_depth: across the axis in the y-z plane (front to back).
        length: along the axis.
    """

    top: np.ndarray
    lean: float
    half_width: float
    half_depth: float
    length: float

    def level(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` points -> ``(...)`` level (1 on the surface)."""
        c, s = math.cos(self.lean), math.sin(self.lean)
        d = points - self.top
        along = -c * d[..., 1] - s * d[..., 2]
        across = -s * d[..., 1] + c * d[..., 2]
        radial = np.hypot(d[..., 0] / self.half_width, across / self.half_depth)
        cap = np.abs(2.0 * along / self.length - 1.0)
        return (radial**8 + cap**8) ** 0.125


@dataclass(frozen=True)
class Ear:
    """The subject's right ear (at −x); the left one is its mirror image across ``x = mirror_x``.

    Attributes:
        root: ``(3,)`` middle of the ear's front edge, on the head.
        height: top to lobe.
        width: front edge to back edge (in the ear's plane).
        flare: radians the ear's plane turns out of the head's side (its back edge stands off).
        thickness: at the middle.
        cup: how far the middle sinks towards the head (the bowl of the concha).
        rim: height of the raised rim (helix) on the outer side.
        mirror_x: x of the head's sagittal plane.
    """

    root: np.ndarray
    height: float
    width: float
    flare: float
    thickness: float
    cup: float
    rim: float
    mirror_x: float


@dataclass(frozen=True)
class WholeHeadShape:
    """The head behind the face: cranium, jaw and neck joined smoothly, and two ears.

    Star-shaped about ``center``: :meth:`radius` gives the distance to the surface along any
    direction, and :meth:`normalize` maps points to the space where the surface is the unit
    sphere (as :meth:`~mvface.synth.head_proxy.HeadProxy.normalize` does for the egg).

    Attributes:
        center: ``(3,)`` the point the grid's directions start from (on the ear plane).
        cranium: the skull.
        jaw: the lower face behind the face mesh, from the chin to the angles of the jaw.
        neck: the neck.
        ear: the right ear (the left is mirrored).
        chin_y: y of the chin (MediaPipe 152).
        sharpness: ``k`` of the smooth union.
    """

    center: np.ndarray
    cranium: Blob
    jaw: Blob
    neck: Neck
    ear: Ear
    chin_y: float
    sharpness: float = UNION_SHARPNESS

    def level(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` -> ``(...)``: smooth union of the three solids' levels (< 1 inside)."""
        k = self.sharpness
        parts = [b.level(points) for b in (self.cranium, self.jaw, self.neck)]
        total = sum(np.maximum(p, 1e-9) ** -k for p in parts)
        return np.asarray(total ** (-1.0 / k))

    @property
    def reach(self) -> float:
        """An upper bound of the distance from ``center`` to any surface point."""
        far = np.linalg.norm(self.neck.top - self.center) + self.neck.length
        far += self.neck.half_width + self.neck.half_depth
        cranium = np.linalg.norm(self.cranium.center - self.center) + self.cranium.axes.max() * 2
        return float(max(far, cranium))

    def radius(self, dirs: np.ndarray) -> np.ndarray:
        """``(N, 3)`` unit directions -> ``(N,)`` distance from ``center`` to the surface."""
        return ray_exit(self.level, np.broadcast_to(self.center, dirs.shape), dirs, self.reach)

    def normalize(self, points: np.ndarray) -> np.ndarray:
        """``(N, 3)`` points -> the space where the surface is the unit sphere."""
        d = points - self.center
        r = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        return np.asarray(d / self.radius(d / r)[:, None])

    def denormalize(self, q: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalize`."""
        r = np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        return np.asarray(self.center + q * self.radius(q / r)[:, None])


def ray_exit(
    level: Any, origins: np.ndarray, dirs: np.ndarray, reach: float, steps: int = 40
) -> np.ndarray:
    """Distance along each ray to the last crossing of ``level = 1`` (the outermost surface).

    Marches ``steps`` samples out to ``reach`` then bisects the last inside-to-outside step.

    Args:
        level: function ``(..., 3) -> (...)``, < 1 inside.
        origins: ``(N, 3)`` ray starts (inside).
        dirs: ``(N, 3)`` unit directions.
        reach: farthest distance searched.
        steps: samples of the march.

    Returns:
        ``(N,)`` distances (0 where a ray starts outside and never enters).
    """
    r = np.linspace(0.0, reach, steps + 1)
    pts = origins[:, None, :] + r[None, :, None] * dirs[:, None, :]
    inside = level(pts) < 1.0  # (N, steps + 1)
    last = np.where(inside.any(1), steps - np.argmax(inside[:, ::-1], axis=1), 0)
    lo = r[np.minimum(last, steps)]
    hi = r[np.minimum(last + 1, steps)]
    for _ in range(14):  # reach / steps / 2^14: well under a micrometre of the head
        mid = 0.5 * (lo + hi)
        out = level(origins + mid[:, None] * dirs) >= 1.0
        hi = np.where(out, mid, hi)
        lo = np.where(out, lo, mid)
    return np.asarray(np.where(inside.any(1), 0.5 * (lo + hi), 0.0))


def fit_whole_head(face: np.ndarray, proxy: HeadProxy | None = None) -> WholeHeadShape:
    """Size and place the whole head from the face mesh (face frame, face looking along +z).

    Args:
        face: ``(468, 3)`` face mesh vertices in the face's own frame.
        proxy: the egg fitted to the same face (default: fitted here); the cranium keeps its
            crown, its ear plane and its length.

    Returns:
        The shape.
    """
    proxy = fit_head_proxy(face) if proxy is None else proxy
    width, height = face_extent(face)
    cheek_r, cheek_l = face[MP_CHEEKS[0]], face[MP_CHEEKS[1]]
    chin, top = face[MP_CHIN], face[MP_FOREHEAD]
    mid_x = 0.5 * float(cheek_r[0] + cheek_l[0])
    ear_z = 0.5 * float(cheek_r[2] + cheek_l[2])
    mouth_y = float(face[list(MP_MOUTH), 1].mean())
    crown = float(chin[1] + PROXY_HEIGHT_RATIO * height)
    # cranium: crown to mouth level; front just behind the forehead, the proxy's length
    length = PROXY_LENGTH_RATIO * width
    front = float(top[2]) + 0.03 * height
    cranium = Blob(
        center=np.array([mid_x, 0.5 * (crown + mouth_y), front - 0.5 * length]),
        axes=np.array([CRANIUM_WIDTH_RATIO * width, 0.5 * (crown - mouth_y), 0.5 * length]),
        exponent=CRANIUM_EXPONENT,
    )
    # jaw: from the chin back past the angles of the jaw, up to the cheekbones
    angles = face[list(MP_JAW_ANGLES)]
    jaw_half_width = max(0.5 * float(abs(angles[1, 0] - angles[0, 0])), 0.3 * width)
    jaw_back = float(angles[:, 2].mean()) - 0.12 * width
    jaw_front = float(chin[2])
    jaw_bottom = float(min(chin[1], angles[:, 1].min())) - 0.02 * height
    jaw_top = float(face[list(MP_BROWS), 1].mean())
    jaw = Blob(
        center=np.array([mid_x, 0.5 * (jaw_top + jaw_bottom), 0.5 * (jaw_front + jaw_back)]),
        axes=np.array(
            [1.05 * jaw_half_width, 0.5 * (jaw_top - jaw_bottom), 0.5 * (jaw_front - jaw_back)]
        ),
    )
    # neck: its front (the throat) behind the chin, its top inside the cranium
    lean = math.radians(NECK_LEAN_DEG)
    half_depth = NECK_DEPTH_RATIO * width
    throat_z = float(chin[2]) - NECK_THROAT_BEHIND_CHIN * width
    top_y = float(cranium.center[1])
    # axis at chin height passes half a depth behind the throat
    axis_at_chin = np.array([mid_x, float(chin[1]), throat_z - half_depth / math.cos(lean)])
    up = np.array([0.0, math.cos(lean), math.sin(lean)])
    neck_top = axis_at_chin + up * (top_y - float(chin[1])) / math.cos(lean)
    neck = Neck(
        top=neck_top,
        lean=lean,
        half_width=NECK_WIDTH_RATIO * width,
        half_depth=half_depth,
        length=float(neck_top[1] - chin[1]) / math.cos(lean) + 2.5 * height,
    )
    # ears: between the brows and the nose base, behind the cheek points
    brow_y = float(face[list(MP_BROWS), 1].mean())
    nose_y = float(face[MP_NOSE_BASE, 1])
    ear_height = EAR_HEIGHT_RATIO * max(brow_y - nose_y, 0.05 * height)
    ear = Ear(
        root=np.array(
            [mid_x - 0.5 * width, 0.5 * (brow_y + nose_y), ear_z - EAR_BEHIND_CHEEK * width]
        ),
        height=ear_height,
        width=EAR_WIDTH_RATIO * ear_height,
        flare=math.radians(EAR_FLARE_DEG),
        thickness=EAR_THICKNESS_RATIO * ear_height,
        cup=EAR_CUP_RATIO * ear_height,
        rim=EAR_RIM_RATIO * ear_height,
        mirror_x=mid_x,
    )
    center = np.array([mid_x, float(proxy.center[1]), ear_z])
    center[1] = min(center[1], 0.5 * (brow_y + nose_y))
    shape = WholeHeadShape(
        center=center, cranium=cranium, jaw=jaw, neck=neck, ear=ear, chin_y=float(chin[1])
    )
    if float(shape.level(center[None])[0]) >= 1.0:  # never for a face mesh
        raise BadInputError("face mesh", "degenerate face mesh (head centre outside the head)")
    return shape


@dataclass(frozen=True)
class WholeHeadShell(HeadShell):
    """A :class:`~mvface.synth.mesh_head.HeadShell` that knows its shape and face.

    Attributes:
        shape: the head it meshes.
        face: ``(468, 3)`` face mesh vertices it was pulled onto (face frame).
    """

    shape: WholeHeadShape | None = None
    face: np.ndarray | None = None


def _even_rings(shape: WholeHeadShape, n_lat: int) -> np.ndarray:
    """``n_lat − 1`` polar angles (radians from +y) of rings spaced evenly in arc length, over
    the mean of four meridians of the shape (the long neck gets as many rings as its length)."""
    theta = np.linspace(0.0, math.pi, 129)
    arc = np.zeros_like(theta)
    for phi in (0.0, 0.5 * math.pi, math.pi, 1.5 * math.pi):
        dirs = np.stack(
            [np.sin(theta) * math.sin(phi), np.cos(theta), np.sin(theta) * math.cos(phi)], 1
        )
        r = shape.radius(dirs)
        step = np.hypot(np.diff(r), 0.5 * (r[1:] + r[:-1]) * np.diff(theta))
        arc[1:] += np.cumsum(step)
    targets = np.linspace(0.0, arc[-1], n_lat + 1)[1:-1]
    return np.asarray(np.interp(targets, arc, theta))


def _surface_x(shape: WholeHeadShape, points: np.ndarray, side: float) -> np.ndarray:
    """x where rays from the mid-plane through ``points``' (y, z) along ``side``·x leave the
    head (``side`` = −1: the subject's right)."""
    origins = points.copy()
    origins[:, 0] = shape.ear.mirror_x
    dirs = np.zeros_like(points)
    dirs[:, 0] = side
    return origins[:, 0] + side * ray_exit(shape.level, origins, dirs, shape.reach)


def ear_mesh(
    shape: WholeHeadShape, n_rings: int = 6, n_angles: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """Both ears: closed, cupped, rimmed ovals on the sides of the head.

    Each ear is a lens over an oval outline (wider at the top; the front edge at the ear's
    root, the back edge turned out by ``flare``), bent into a bowl of depth ``cup`` towards the
    head, with a rim raised on its outer side; its vertices follow the head's side (each sits
    ``x``-offset from where a ray from the mid-plane leaves the head) so that the front edge
    stays on the head however the skull curves.

    Args:
        shape: the head.
        n_rings: rings from the middle to the edge, per side of the lens.
        n_angles: vertices per ring.

    Returns:
        ``(2N, 3)`` vertices (the right ear's ``N``, then the left's, vertex ``i`` of one the
        mirror image of vertex ``i`` of the other) and ``(2F, 3)`` faces, counter-clockwise
        seen from outside.
    """
    ear = shape.ear
    _, faces = _sphere_grid(2 * n_rings, n_angles)  # its topology; the vertices are below
    ring = np.arange(1, 2 * n_rings)  # grid rings 1..2n-1: outer side, rim (n), inner side
    rho_ring = np.where(ring <= n_rings, ring, 2 * n_rings - ring) / n_rings
    outer_ring = ring < n_rings
    rho = np.concatenate([[0.0], np.repeat(rho_ring, n_angles), [0.0]])
    outer = np.concatenate([[True], np.repeat(outer_ring, n_angles), [False]])
    alpha = np.concatenate(
        [[0.0], np.tile(np.arange(n_angles) * 2 * math.pi / n_angles, len(ring)), [0.0]]
    )
    half_w = 0.5 * ear.width * (1.0 + 0.15 * np.sin(alpha))
    along = 0.5 * ear.width + rho * half_w * np.cos(alpha)  # backwards in the ear's plane
    up = rho * 0.5 * ear.height * np.sin(alpha) * np.where(np.sin(alpha) < 0, 0.9, 1.0)
    lens = 0.5 * ear.thickness * np.sqrt(np.clip(1.0 - rho**2, 0.0, 1.0))
    bowl = -ear.cup * (1.0 - rho**2)
    helix = ear.rim * np.clip(np.sin(math.pi * (rho - 0.6) / 0.4), 0.0, None) ** 2
    out = bowl + np.where(outer, lens + helix, -lens)  # along the ear's outward normal
    # the right ear's frame: back = −z turned out (−x) by the flare, normal out of the head
    cf, sf = math.cos(ear.flare), math.sin(ear.flare)
    back = np.array([-sf, 0.0, -cf])
    normal = np.array([-cf, 0.0, sf])
    pts = ear.root + along[:, None] * back + up[:, None] * np.array([0.0, 1.0, 0.0])
    pts = pts + out[:, None] * normal
    # follow the head's side: shift x by the head's surface at each vertex's (y, z), sunk a
    # little so the front edge is buried
    base = _surface_x(shape, pts, -1.0) + 0.25 * ear.thickness
    pts[:, 0] += base - ear.root[0]
    # orient the triangles outwards (signed volume > 0)
    tri = pts[faces]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()
    if volume < 0:
        faces = faces[:, ::-1]
    left = pts * np.array([-1.0, 1.0, 1.0]) + np.array([2.0 * ear.mirror_x, 0.0, 0.0])
    return np.vstack([pts, left]), np.vstack([faces, faces[:, ::-1] + len(pts)]).astype(np.int32)


def whole_head_shell(
    shape: WholeHeadShape,
    face: np.ndarray,
    face_faces: np.ndarray,
    n_lat: int = 56,
    n_lon: int = 96,
    blend: float = FACE_BLEND,
    recess: float = 0.06,
    ears: bool = True,
) -> WholeHeadShell:
    """The closed head surface behind the face mesh, pulled onto the face, and the ears.

    Args:
        shape: the head (:func:`fit_whole_head`).
        face: ``(468, 3)`` face mesh vertices (face frame).
        face_faces: ``(F, 3)`` triangles of the face mesh.
        n_lat, n_lon: grid resolution (rings evenly spaced in arc length).
        blend, recess: see :func:`~mvface.synth.head_proxy.pull_onto_face`.
        ears: add the ears.

    Returns:
        The shell: grid vertices then ear vertices; ``chart`` holds each grid vertex's
        ``(|longitude| / π, polar angle / π)`` from ``shape.center`` (ears: ``nan``); ``part``
        is :data:`PART_HEAD` or :data:`PART_EAR`.
    """
    dirs, faces = _sphere_grid(n_lat, n_lon, _even_rings(shape, n_lat))
    rho = pull_onto_face(dirs, shape.normalize(face), face_faces, blend, recess)
    vertices = shape.center + dirs * (rho * shape.radius(dirs))[:, None]
    partners = grid_mirror_partners(n_lat, n_lon)
    longitude = np.abs(np.arctan2(dirs[:, 0], dirs[:, 2])) / math.pi
    polar = np.arccos(np.clip(dirs[:, 1], -1.0, 1.0)) / math.pi
    chart = np.stack([longitude, polar], 1)
    part = np.full(len(vertices), PART_HEAD, np.int8)
    if ears:
        ear_v, ear_f = ear_mesh(shape)
        n, half = len(vertices), len(ear_v) // 2
        ear_partners = n + np.concatenate([np.arange(half) + half, np.arange(half)])
        faces = np.vstack([faces, ear_f + n])
        vertices = np.vstack([vertices, ear_v])
        partners = np.concatenate([partners, ear_partners])
        chart = np.vstack([chart, np.full((len(ear_v), 2), np.nan)])
        part = np.concatenate([part, np.full(len(ear_v), PART_EAR, np.int8)])
    return WholeHeadShell(
        vertices, faces.astype(np.int32), partners.astype(np.int64), chart, part, shape, face
    )


def _polar(shape: WholeHeadShape, points: np.ndarray) -> np.ndarray:
    """Polar angle (radians from +y) of ``(N, 3)`` points seen from ``shape.center``."""
    d = points - shape.center
    return np.asarray(np.arccos(np.clip(d[:, 1] / np.linalg.norm(d, axis=1), -1.0, 1.0)))


class WholeHeadBackend(MeshHeadBackend):
    """The ``"head"`` backend: the ``"mesh"`` backend with a whole head (cranium, jaw, neck,
    ears) instead of the egg, and its unseen parts painted (skin, darker neck, hair).

    Args:
        grid: ``(n_lat, n_lon)`` of the head's grid (rings evenly spaced in arc length).
        ears: give the head ears.
        **config: the :class:`~mvface.synth.mesh_head.MeshHeadBackend` options.
    """

    name = "head"
    #: jaw landmarks annotated just off the face mesh would lift onto the neck or the side of
    #: the skull: at most this far (world units, ~1.5 cm) behind the face mesh's own landmark
    max_lift_behind: float | None = 0.03

    def __init__(self, grid: tuple[int, int] = (56, 96), ears: bool = True, **config: Any):
        super().__init__(grid=grid, **config)
        self.ears = ears

    def _head_shell(
        self, proxy: HeadProxy, local: np.ndarray, face_faces: np.ndarray
    ) -> WholeHeadShell:
        shape = fit_whole_head(local, proxy)
        return whole_head_shell(shape, local, face_faces, *self.grid, ears=self.ears)

    def _paint_shell(
        self,
        image: np.ndarray,
        covered: np.ndarray,
        shell: HeadShell,
        face: np.ndarray,
        K: np.ndarray,
        R: np.ndarray,
        t: np.ndarray,
        landmarks: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Skin, neck and hair on the shell's chart
        (:func:`~mvface.synth.head_paint.paint_head_chart`); see
        :meth:`MeshHeadBackend._paint_shell`."""
        if not isinstance(shell, WholeHeadShell) or shell.chart is None:
            return None
        shape, local_face = shell.shape, shell.face
        if shape is None or local_face is None:
            return None
        size = image.shape[0]
        pix = project_vertices(face, K, R, t)[:, :2]
        if landmarks is not None:
            face_mask = face_outline_mask(landmarks, size)
            brow_row = float(np.asarray(landmarks)[17:27, 1].min())
        else:
            face_mask = np.zeros((size, size), np.uint8)
            cv2.fillConvexPoly(face_mask, cv2.convexHull(pix.astype(np.int32)), 1)
            face_mask = face_mask.astype(bool)
            brow_row = float(pix[list(MP_BROWS), 1].min())
        skin = skin_colour(image, face_mask)
        hair_mask = hair_pixels(image, covered, brow_row, skin)
        panel = size  # the atlas panels are all S x S
        hair = hair_texture(image, hair_mask, panel) if hair_mask.any() else None
        # a shape-space local frame: the hairline through the face mesh's top at the front
        # and the nape (mouth level) at the back; the neck below the chin / the nape
        top = local_face[MP_FOREHEAD][None]
        front_hair = float(_polar(shape, top)[0])
        mouth_y = float(local_face[list(MP_MOUTH), 1].mean())
        back_hair = float(
            _polar(
                shape,
                np.array(
                    [[shape.center[0], mouth_y, shape.cranium.center[2] - shape.cranium.axes[2]]]
                ),
            )[0]
        )
        front_neck = float(_polar(shape, local_face[MP_CHIN][None])[0]) + math.radians(4.0)
        back_neck = back_hair + math.radians(6.0)
        chart_rgb = paint_head_chart(
            skin, hair, (front_hair, back_hair), (front_neck, back_neck), panel
        )
        uv = np.where(
            np.isfinite(shell.chart),
            shell.chart * [1.0, 0.92],
            np.array([0.5, 0.97]),
        )
        return chart_rgb, np.clip(uv, 0.5 / panel, 1 - 0.5 / panel)


def whole_head_backend(**config: Any) -> WholeHeadBackend:
    """Factory of the whole-head backend (``--backend head``, registered by
    :mod:`mvface.synth.backends`)."""
    return WholeHeadBackend(**config)
