"""The default 3D-head backend: a textured face mesh on a head proxy, built and drawn on a CPU.

From one square face crop and its 68 landmarks (:meth:`MeshHeadBackend.build`):

1. **Face mesh.** MediaPipe's 468-point face mesh
   (:func:`mvface.models.mediapipe_mesh.load_facemesh`, shipped weights, no download) runs
   on an eyes-level crop around the landmarks, twice (the second crop comes from the first
   mesh, as MediaPipe's tracker does): :func:`predict_face_mesh`.
2. **Source camera.** When the crop's EG3D camera is given it is used. Otherwise
   :func:`estimate_source_camera` builds one: the world frame is the face's own (x along the
   eye line, y from the mouth to the eyes tilted back by :data:`EYE_MOUTH_PITCH_DEG`, z forward),
   the scale makes the eye distance and the eye-to-mouth distance those of EG3D's heads
   (:data:`CANONICAL_EYE_DISTANCE`, :data:`CANONICAL_EYE_MOUTH_DISTANCE`) and the mesh centroid
   sits at the rig's look-at point ``(0, 0, 0.2)``, where EG3D's FFHQ faces sit.
3. **Lift.** Every mesh vertex keeps its pixel in the source view; its depth is the centroid depth
   plus MediaPipe's relative depth (same pixel scale as x and y; measured 1.04 against EG3D's
   depth on the paper's example). So the face re-projects exactly onto the photo.
4. **Triangulate** with Delaunay on the frontal (world x-y) projection of the lifted mesh; long
   edges at the concave rim are dropped (:func:`triangulate_face`). MediaPipe's own triangle list
   is not in the ``.tflite`` and is not needed.
5. **Head proxy** (:class:`HeadProxy`): an egg-shaped closed surface — two half-ellipsoids
   sharing their x and y semi-axes, a short one in front of the ear plane and a long one behind
   it — sized from the face mesh (cheek width, chin-to-forehead height, adult head
   proportions) and pulled in the face region onto the face surface (slightly behind it), so
   that the face mesh sits on it without a step. Hair, ears and neck of the photo are painted
   on it. See ``docs/synth.md`` for why and a picture.
6. **Texture** is the photo, by projection from the source camera, where the photo saw the
   surface well: the cosine between the normal and the direction to the source camera at
   least :data:`OBSERVED_FULL_COSINE` (fading out to :data:`OBSERVED_NONE_COSINE`), not hidden
   in the source view's depth, and (face mesh) inside the face's annotated outline. Elsewhere
   (``fill="mirror"``, the default; :func:`fill_weights`) it is the face's mirror side where
   that was seen — MediaPipe's vertices in left/right pairs (:func:`face_mirror_partners`),
   the proxy's grid mirrored across the head's sagittal plane — and where neither side was
   seen, the head's low-frequency colour (the photo's head pixels spread and blurred, never the
   backdrop). Weights are per vertex and interpolated
   (:class:`~mvface.synth.render_types.TexturedMesh` ``uv2``/``uv3``), so the seam is a blend;
   each view's ``filled`` map says how much of every pixel was filled in. ``fill="none"`` is
   the texture before: a cross-fade to a blurred copy of the photo mapped by reflecting the
   surface direction inwards at the proxy's outline (:func:`rim_texture_directions`).
7. **Backdrop**: the photo with the region the head covers (grown by half a head-width above the
   chin, for hair standing out of the proxy) filled smoothly from its surroundings, drawn
   behind every view and fixed (the head turns in front of it, as in a photo of a person
   turning their head); ``depth``/``mask`` ignore it.

Views are drawn by :mod:`mvface.synth.renderer` (OpenGL through EGL when available, numpy
otherwise). Units are EG3D's world units (the rig's cameras sit at 2.7; the face is about 0.33
wide); pixels follow :mod:`mvface.synth.head`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
import torch
from scipy.spatial import Delaunay, cKDTree

from mvface.errors import BadInputError
from mvface.geometry.cameras import EG3D_CENTER, EG3D_FOCAL
from mvface.models.mediapipe_mesh import small_network_inference
from mvface.synth.head import RenderOutput
from mvface.synth.landmarks import landmark_visibility
from mvface.synth.render_types import MeshRenderer, PreparedScene, TexturedMesh, labels_to_cameras
from mvface.synth.renderer import create_renderer
from mvface.synth.rig import PAPER_LOOKAT

__all__ = [
    "CANONICAL_EYE_DISTANCE",
    "CANONICAL_EYE_MOUTH_DISTANCE",
    "EYE_MOUTH_PITCH_DEG",
    "MEDIAPIPE_DEPTH_SCALE",
    "HeadProxy",
    "MeshHead",
    "MeshHeadBackend",
    "estimate_source_camera",
    "face_frame",
    "face_mirror_partners",
    "fill_weights",
    "fit_head_proxy",
    "lift_face_mesh",
    "predict_face_mesh",
    "rim_texture_directions",
    "triangulate_face",
]

# MediaPipe face mesh vertices used here (0-based; checked on the paper's example crop).
MP_RIGHT_EYE = (33, 133)  # subject's right eye: outer, inner corner (image left)
MP_LEFT_EYE = (263, 362)  # subject's left eye: outer, inner corner (image right)
MP_MOUTH = (61, 291)  # mouth corners, subject's right then left
MP_CHIN = 152
MP_FOREHEAD = 10  # top of the mesh on the mid-line
MP_CHEEKS = (234, 454)  # widest points of the face oval, near the ears

#: MediaPipe's mesh depth in units of its x/y pixels; least squares against the depth of the
#: paper's example (EG3D geometry, 54 landmarks) gives 1.04, and 1.0 fits it to 6e-3 units.
MEDIAPIPE_DEPTH_SCALE = 1.0
#: Eye-centre distance (mean of MediaPipe's two eye corners per eye) of the paper's example
#: identity in EG3D world units; sets the scale when the camera is estimated.
CANONICAL_EYE_DISTANCE = 0.155
#: Distance from the eye centres' midpoint to the mouth corners' midpoint, same source.
CANONICAL_EYE_MOUTH_DISTANCE = 0.157
#: The mouth-to-eyes direction leans back from world +y by this angle (degrees) in EG3D's frame
#: (measured on the paper's example: −7.2°; the 5-point standard face of the paper's cropping
#: gives −7.7°).
EYE_MOUTH_PITCH_DEG = -7.2
#: Where the face mesh centroid sits in the world when the camera is estimated (the paper's
#: example puts it at (−0.003, −0.004, 0.201)): the rig's look-at point.
CANONICAL_MESH_CENTROID = PAPER_LOOKAT
#: Vertices whose normal makes a cosine with the direction to the source camera below
#: ``GRAZING_START_COSINE`` (the photo sees them at a grazing angle, its texture is stretched
#: there) cross-fade to the proxy's blurred, rim-reflected texture, fully at
#: ``GRAZING_FULL_COSINE``.
GRAZING_START_COSINE = 0.25
GRAZING_FULL_COSINE = 0.0
#: ``fill="mirror"``: a vertex's own photo texture counts as observed fully where the cosine
#: between its normal and the direction to the source camera is at least
#: ``OBSERVED_FULL_COSINE`` (75°: the photo stretches it at most 4x) and not at all at
#: ``OBSERVED_NONE_COSINE`` (90°), smoothly in between, and only where the source view sees it
#: (not behind the nose, the near cheek or the head in the source depth). Measured with
#: ``benchmarks/bench_synth.py`` (16 AFLW2000-3D heads): filling more (full at 0.4 or 0.7)
#: makes the detector's error on turned views worse, not better.
OBSERVED_FULL_COSINE = 0.25
OBSERVED_NONE_COSINE = 0.0
#: A vertex is occluded in the source view when it lies this far (world units, about 4 mm)
#: behind every rendered surface within a pixel of its projection.
SOURCE_OCCLUSION_TOLERANCE = 0.01
#: ``fill="mirror"``: where neither side was seen, the colour is the photo's head pixels (those
#: of the source view's head mask, eroded by this fraction of the crop) spread by a push-pull
#: fill and blurred by ``UNSEEN_BLUR`` x the crop side: the low-frequency skin/hair colour of the
#: nearest seen texels, never the backdrop's.
UNSEEN_ERODE = 0.02
UNSEEN_BLUR = 0.02
FillMode = Literal["mirror", "none"]
FILL_MODES: tuple[str, ...] = ("mirror", "none")
#: Below this MediaPipe face probability the crop is rejected as "no face".
MIN_FACE_PROBABILITY = 0.5


# --------------------------------------------------------------------------------------------
# 1. Face mesh
# --------------------------------------------------------------------------------------------


def _upright_crop(
    points: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray, size: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Affine ``crop = A @ p + b`` (continuous pixels) for an eyes-level square crop.

    The crop side is ``scale`` x the long side of the rotated point box (MediaPipe's ROI).
    """
    d = left_eye - right_eye
    angle = math.atan2(d[1], d[0])
    rot = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    upright = points @ rot.T
    low, high = upright.min(0), upright.max(0)
    factor = size / (scale * max(float((high - low).max()), 1e-6))
    A = factor * rot
    b = size / 2 - factor * (low + high) / 2
    return A, b


def predict_face_mesh(
    net: torch.nn.Module,
    image: np.ndarray,
    landmarks: np.ndarray,
    passes: int = 2,
) -> tuple[np.ndarray, float]:
    """Run MediaPipe's face mesh on the face of a crop.

    Args:
        net: :class:`mvface.models.mediapipe_mesh.FaceMeshNet` in eval mode.
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` iBUG landmarks, 0-based integer-centred pixels.
        passes: 1 crops from the landmarks only; 2 (default) crops again around the first mesh.

    Returns:
        ``mesh`` ``(468, 3)`` float64: x, y in *continuous* pixels of ``image`` (pixel ``i``
        spans ``[i, i + 1)``; subtract 0.5 for the landmark convention) and z, MediaPipe's depth
        in the same pixel scale, relative (smaller is nearer), and the face probability of the
        last pass.
    """
    size = int(getattr(getattr(net, "config", None), "input_size", 192))
    scale = float(getattr(getattr(net, "config", None), "crop_scale", 1.5))
    points = np.asarray(landmarks, np.float64) + 0.5
    right_eye, left_eye = points[36], points[45]
    mesh = np.zeros((468, 3))
    probability = 0.0
    for _ in range(max(1, passes)):
        A, b = _upright_crop(points, right_eye, left_eye, size, scale)
        # cv2 works with integer-centred pixels on both sides: x_c = x − 0.5
        M = np.hstack([A, (A @ np.full(2, 0.5) + b - 0.5)[:, None]])
        crop = cv2.warpAffine(
            image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad(), small_network_inference():
            out, logit = net(x)
        crop_mesh = out[0].double().numpy()
        probability = float(torch.sigmoid(logit[0]))
        A_inv = np.linalg.inv(A)
        mesh = np.empty((len(crop_mesh), 3))
        mesh[:, :2] = (crop_mesh[:, :2] - b) @ A_inv.T
        mesh[:, 2] = crop_mesh[:, 2] / math.sqrt(abs(np.linalg.det(A)))
        points = mesh[:, :2]
        right_eye = mesh[list(MP_RIGHT_EYE), :2].mean(0)
        left_eye = mesh[list(MP_LEFT_EYE), :2].mean(0)
    return mesh, probability


# --------------------------------------------------------------------------------------------
# 2-3. Camera and lifting
# --------------------------------------------------------------------------------------------


def lift_face_mesh(
    mesh: np.ndarray, K: np.ndarray, centroid_depth: float, depth_scale: float = 1.0
) -> np.ndarray:
    """Lift a face mesh from pixels to the source camera's frame.

    Vertex ``i`` gets depth ``Z_i = Zc · (1 + s·(z_i − mean z) / f)`` (MediaPipe's relative depth
    in pixels turned into world units at the centroid depth ``Zc``) and keeps its pixel:
    ``X_i = (u_i − cx) Z_i / fx``, ``Y_i = (v_i − cy) Z_i / fy``.

    Args:
        mesh: ``(N, 3)`` continuous pixels and relative depth (see :func:`predict_face_mesh`).
        K: ``(3, 3)`` intrinsics in pixels of the same image.
        centroid_depth: camera-frame depth ``Zc`` of the mesh's mean vertex depth (world units).
        depth_scale: ``s``, MediaPipe depth units per x/y pixel.

    Returns:
        ``(N, 3)`` camera-frame points (OpenCV axes), world units.
    """
    f = float(K[0, 0])
    z = centroid_depth * (1.0 + depth_scale * (mesh[:, 2] - mesh[:, 2].mean()) / f)
    y = (mesh[:, 1] - K[1, 2]) / K[1, 1] * z
    x = (mesh[:, 0] - K[0, 2] - K[0, 1] * y / np.maximum(z, 1e-9)) / K[0, 0] * z
    return np.stack([x, y, z], axis=1)


def _face_keypoints(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right eye centre, left eye centre, mouth centre) of mesh points ``(468, 3)``."""
    return (
        points[list(MP_RIGHT_EYE)].mean(0),
        points[list(MP_LEFT_EYE)].mean(0),
        points[list(MP_MOUTH)].mean(0),
    )


def face_frame(points: np.ndarray, pitch_deg: float = EYE_MOUTH_PITCH_DEG) -> np.ndarray:
    """Axes of the face's own frame (EG3D's world axes) expressed in the points' frame.

    x runs from the subject's right eye to the left eye; y is the mouth-to-eyes direction made
    orthogonal to x and tilted by ``pitch_deg`` about x (EG3D's up leans forward of it by
    7.2°); z = x × y looks out of the face.

    Args:
        points: ``(468, 3)`` face mesh vertices in any right-handed frame (e.g. the camera's).
        pitch_deg: angle from world +y to the mouth-to-eyes direction, degrees (negative: the
            eyes lie behind the mouth).

    Returns:
        ``(3, 3)`` rotation whose columns are the world x, y, z axes in ``points``' frame
        (``p_points = A @ p_world + b``).
    """
    right, left, mouth = _face_keypoints(points)
    x = left - right
    x /= np.linalg.norm(x)
    up = (right + left) / 2 - mouth
    y_em = up - (up @ x) * x
    y_em /= np.linalg.norm(y_em)
    z_em = np.cross(x, y_em)
    # y_em = cos δ · y + sin δ · z  with δ = pitch: solve for the world y and z axes
    delta = math.radians(pitch_deg)
    y = math.cos(delta) * y_em - math.sin(delta) * z_em
    z = math.sin(delta) * y_em + math.cos(delta) * z_em
    return np.stack([x, y, z], axis=1)


def _face_size(points: np.ndarray) -> float:
    """Face size relative to EG3D's canonical face (1.0 for a face of EG3D's scale)."""
    right, left, mouth = _face_keypoints(points)
    eye = np.linalg.norm(left - right) / CANONICAL_EYE_DISTANCE
    eye_mouth = np.linalg.norm((left + right) / 2 - mouth) / CANONICAL_EYE_MOUTH_DISTANCE
    return float(0.5 * (eye + eye_mouth))


def _eg3d_label(cam2world: np.ndarray) -> torch.Tensor:
    K = [EG3D_FOCAL, 0.0, EG3D_CENTER, 0.0, EG3D_FOCAL, EG3D_CENTER, 0.0, 0.0, 1.0]
    return torch.tensor([*cam2world.reshape(-1).tolist(), *K], dtype=torch.float64)


def estimate_source_camera(
    mesh: np.ndarray, size: int, depth_scale: float = MEDIAPIPE_DEPTH_SCALE
) -> torch.Tensor:
    """EG3D camera of a crop from its face mesh (used when the crop's camera is unknown).

    The face is lifted at unit centroid depth, its own frame (:func:`face_frame`) becomes the
    world's axes, the depth is scaled so that the face has EG3D's size (:func:`_face_size`) and
    the mesh centroid is put at :data:`CANONICAL_MESH_CENTROID`. Intrinsics are EG3D's.

    Args:
        mesh: ``(468, 3)`` from :func:`predict_face_mesh` (pixels of a ``size`` crop).
        size: crop side in pixels.
        depth_scale: see :func:`lift_face_mesh`.

    Returns:
        ``(25,)`` float64 EG3D label; the camera may have roll (a tilted face) and sits about
        2.7 from the origin for an FFHQ-aligned crop.
    """
    f, c = EG3D_FOCAL * size, EG3D_CENTER * size
    K = np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])
    unit = lift_face_mesh(mesh, K, 1.0, depth_scale)
    depth = 1.0 / _face_size(unit)
    points = unit * depth
    A = face_frame(points)  # p_cam = A @ p_world + b
    b = points.mean(0) - A @ np.asarray(CANONICAL_MESH_CENTROID, np.float64)
    cam2world = np.eye(4)
    cam2world[:3, :3] = A.T
    cam2world[:3, 3] = -A.T @ b
    return _eg3d_label(cam2world)


# --------------------------------------------------------------------------------------------
# 4. Triangulation
# --------------------------------------------------------------------------------------------


def triangulate_face(points2d: np.ndarray, max_edge_ratio: float = 6.0) -> np.ndarray:
    """Triangulate a face mesh from a frontal 2-D projection of its vertices.

    Delaunay triangulation of ``points2d``, without the triangles that bridge concave parts of
    the outline (any edge longer than ``max_edge_ratio`` x the median edge).

    Args:
        points2d: ``(N, 2)`` vertex positions seen from the front (e.g. world x, y).
        max_edge_ratio: longest edge kept, relative to the median edge length.

    Returns:
        ``(F, 3)`` int32 vertex indices, counter-clockwise in ``points2d`` (x right, y up).
    """
    tri = Delaunay(points2d)
    faces = tri.simplices.astype(np.int32)
    p = points2d[faces]
    edges = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2)
    keep = edges.max(1) <= max_edge_ratio * np.median(edges)
    faces = faces[keep]
    p = points2d[faces]
    area = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (
        p[:, 1, 1] - p[:, 0, 1]
    )
    flip = area < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return faces


# --------------------------------------------------------------------------------------------
# 5. Head proxy
# --------------------------------------------------------------------------------------------


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
#: Around the head (above the chin) the backdrop is inpainted this far beyond the proxy's
#: outline, in proxy half-widths, so that hair standing out of the proxy does not stay behind
#: as a ghost when the head turns.
HAIR_MARGIN = 0.5


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
    cheek_r, cheek_l = face[MP_CHEEKS[0]], face[MP_CHEEKS[1]]
    width = float(np.linalg.norm(cheek_l - cheek_r))
    chin, top = face[MP_CHIN], face[MP_FOREHEAD]
    height = float(top[1] - chin[1])
    if width <= 0 or height <= 0:
        raise BadInputError("face mesh", "degenerate face mesh (no width or height)")
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


def _sphere_grid(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere vertices ``(2 + (n_lat − 1)·n_lon, 3)`` and faces of a lat-long grid.

    Latitude rings run from +y (top) to −y; longitude 0 is +z (the face side).
    """
    theta = np.linspace(0, math.pi, n_lat + 1)[1:-1]
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


def _proxy_surface(
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
    q_face = proxy.normalize(face)
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
    return proxy.denormalize(dirs * rho[:, None]), faces


# --------------------------------------------------------------------------------------------
# 6. Texture
# --------------------------------------------------------------------------------------------


def rim_texture_directions(
    q: np.ndarray, towards: np.ndarray, rim_deg: float = 88.0, min_deg: float = 60.0
) -> np.ndarray:
    """Where the unseen back of the head takes its colours from, on the unit sphere.

    A direction at angle ``β`` from ``towards`` (the source camera seen from the head centre)
    beyond ``rim_deg`` is turned towards it, to angle ``max(2·rim − β, min)``: a reflection
    inwards at the rim, continuous there, so the back of the head repeats the ring of the photo
    between ``min_deg`` and ``rim_deg`` (hair, ears, neck).

    Args:
        q: ``(N, 3)`` unit directions.
        towards: ``(3,)`` unit direction of the source camera.
        rim_deg: where the reflection starts (degrees from ``towards``).
        min_deg: the innermost ring used (degrees).

    Returns:
        ``(N, 3)`` unit directions (unchanged where ``β ≤ rim_deg``).
    """
    cos_beta = np.clip(q @ towards, -1.0, 1.0)
    beta = np.arccos(cos_beta)
    rim, low = math.radians(rim_deg), math.radians(min_deg)
    target = np.where(beta > rim, np.maximum(2 * rim - beta, low), beta)
    side = q - cos_beta[:, None] * towards
    norm = np.linalg.norm(side, axis=1, keepdims=True)
    fallback = np.cross(towards, [0.0, 1.0, 0.0])
    if np.linalg.norm(fallback) < 1e-6:
        fallback = np.cross(towards, [1.0, 0.0, 0.0])
    fallback = fallback / np.linalg.norm(fallback)
    side = np.where(norm > 1e-9, side / np.maximum(norm, 1e-12), fallback)
    return np.cos(target)[:, None] * towards + np.sin(target)[:, None] * side


def _project(points: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(N, 3)`` world -> ``(N, 3)``: continuous pixels and depth."""
    cam = points @ R.T + t
    z = cam[:, 2:3]
    pix = cam @ K.T
    return np.hstack([pix[:, :2] / np.maximum(z, 1e-9), z])


def _vertex_facing(points: np.ndarray, faces: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """Cosine between each vertex normal (area-weighted, out of the face for
    :func:`triangulate_face`'s winding) and the direction to ``eye``; 0 for unused vertices."""
    p = points[faces]
    face_normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normal = np.zeros_like(points)
    for k in range(3):
        np.add.at(normal, faces[:, k], face_normal)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    view = eye - points
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    return np.einsum("ij,ij->i", normal, view)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 at ``edge0``, 1 at ``edge1``, smooth (cubic) in between; either order of edges."""
    s = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return s * s * (3 - 2 * s)


def face_mirror_partners(local: np.ndarray) -> np.ndarray:
    """Left/right partner of every face mesh vertex (MediaPipe's mesh is symmetric).

    The partner of vertex ``i`` is the vertex nearest to ``i`` mirrored across the face's
    sagittal plane (``x = 0`` of the face frame, through the mesh centroid); vertices on the
    mid-line are their own partners.

    Args:
        local: ``(N, 3)`` vertices in the face's own frame (x along the eye line, origin the
            mesh centroid).

    Returns:
        ``(N,)`` int64 partner indices.
    """
    mirrored = local * np.array([-1.0, 1.0, 1.0])
    return np.asarray(cKDTree(local).query(mirrored)[1], np.int64)


def _grid_mirror_partners(n_lat: int, n_lon: int) -> np.ndarray:
    """Partners of :func:`_sphere_grid`'s vertices across ``x = 0`` (longitude ``φ → 2π − φ``)."""
    ring = np.arange((n_lat - 1) * n_lon).reshape(n_lat - 1, n_lon)
    mirrored = ring[:, (n_lon - np.arange(n_lon)) % n_lon].reshape(-1) + 1
    return np.concatenate([[0], mirrored, [(n_lat - 1) * n_lon + 1]]).astype(np.int64)


def _source_unoccluded(
    points: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray, depth: np.ndarray
) -> np.ndarray:
    """``(N,)`` bool: the source view's depth ``(S, S)`` does not hide the world ``points``."""
    p = _project(points, K, R, t)
    visible = landmark_visibility(
        p[None, :, :2] - 0.5, p[None, :, 2], depth[None], SOURCE_OCCLUSION_TOLERANCE
    )[0]
    # points just outside the image (clipped texture) count as unseen
    return np.asarray(visible)


def _face_outline_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """``(S, S)`` bool: the face in the photo by its 68 landmarks, shrunk by 1.5% of the side.

    The polygon of the jaw line (points 0–16) closed over the brows raised by half the
    brow-to-chin distance (the forehead); not convex, so the backdrop beside the nose and mouth
    of a turned face stays outside; shrunk, so that the annotation's slack along the outline
    does too. MediaPipe's mesh often reaches past a turned face's outline, where the photo
    shows the backdrop: those vertices are not observed.
    """
    p = np.asarray(landmarks, np.float64) + 0.5
    brows = p[17:27]
    forehead = brows + 0.5 * (brows.mean(0) - p[8])
    polygon = np.vstack([p[:17], forehead[::-1]]).astype(np.int32)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [polygon], 1)
    shrink = max(3, round(0.015 * size)) | 1
    return cv2.erode(mask, np.ones((shrink, shrink), np.uint8)).astype(bool)


def fill_weights(
    facing: np.ndarray, unoccluded: np.ndarray, partner: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vertex texture weights of the own photo, the mirror side's and the colour model.

    ``observed = smoothstep(OBSERVED_NONE_COSINE, OBSERVED_FULL_COSINE, facing) · unoccluded``;
    the own texture takes ``observed``, the partner's (mirror) texture ``(1 − observed) ·
    observed[partner]`` and the colour model the rest. Weights are per vertex and interpolated
    across triangles, so the seam between observed and filled texture is a smooth blend.

    Args:
        facing: ``(N,)`` cosine between each vertex normal and the direction to the source
            camera.
        unoccluded: ``(N,)`` bool, the source view sees the vertex.
        partner: ``(N,)`` index of each vertex's mirror partner.

    Returns:
        ``(own, mirror, model)``, each ``(N,)`` float64, summing to 1.
    """
    observed = _smoothstep(OBSERVED_NONE_COSINE, OBSERVED_FULL_COSINE, facing)
    observed = observed * np.asarray(unoccluded, np.float64)
    mirror = (1.0 - observed) * observed[partner]
    return observed, mirror, 1.0 - observed - mirror


def _head_colour_texture(image: np.ndarray, head_mask: np.ndarray) -> np.ndarray:
    """The photo's head pixels spread over the whole image and blurred (the colour model).

    Push-pull fill (:func:`_push_pull_fill`) from the pixels inside the eroded head mask, then
    a Gaussian blur of :data:`UNSEEN_BLUR` x the side: every texel is a low-frequency mix of
    the nearest head colours (hair above, skin on the face, neck below), no backdrop.
    """
    size = image.shape[0]
    grow = max(3, round(UNSEEN_ERODE * size)) | 1
    known = cv2.erode(head_mask.astype(np.uint8), np.ones((grow, grow), np.uint8))
    if not known.any():
        known = head_mask.astype(np.uint8)
    work = 128
    small = cv2.resize(image, (work, work), interpolation=cv2.INTER_AREA).astype(np.float32)
    weight = cv2.resize(known.astype(np.float32), (work, work), interpolation=cv2.INTER_AREA)
    filled = _push_pull_fill(small, (weight > 0.99).astype(np.float32))
    filled = cv2.GaussianBlur(filled, (0, 0), UNSEEN_BLUR * work)
    filled = cv2.resize(filled, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(filled + 0.5, 0, 255).astype(np.uint8)


def _texture_atlas(image: np.ndarray, blur: float) -> np.ndarray:
    """``(S, 2S, 3)``: the photo, then a blurred copy (``blur`` x S sigma) for the unseen back."""
    sigma = max(blur * image.shape[0], 0.1)
    return np.ascontiguousarray(np.hstack([image, cv2.GaussianBlur(image, (0, 0), sigma)]))


def _push_pull_fill(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown pixels of ``image`` smoothly from the known ones (push-pull pyramid).

    Known pixels are averaged down a pyramid with their weights, and every level takes the
    coarser level where it has no data: holes get a smooth, defocused continuation of their
    surroundings, without the streaks of edge-propagating inpainting.

    Args:
        image: ``(H, W, C)`` float32.
        known: ``(H, W)`` float32 weights in [0, 1] (1: keep the pixel).

    Returns:
        ``(H, W, C)`` float32 with holes filled (known pixels kept).
    """
    weighted, weight = image * known[..., None], known.copy()
    levels = [(weighted, weight)]
    while min(weight.shape) > 2:
        h, w = (weight.shape[0] + 1) // 2, (weight.shape[1] + 1) // 2
        weighted = cv2.resize(weighted, (w, h), interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_AREA)
        levels.append((weighted.reshape(h, w, -1), weight))
    weighted, weight = levels[-1]
    mean = weighted.reshape(-1, weighted.shape[-1]).sum(0) / max(float(weight.sum()), 1e-6)
    result = np.where(
        weight[..., None] > 1e-6, weighted / np.maximum(weight, 1e-6)[..., None], mean
    )
    for weighted, weight in reversed(levels[:-1]):
        up = cv2.resize(result, (weight.shape[1], weight.shape[0]), interpolation=cv2.INTER_LINEAR)
        up = up.reshape(weighted.shape)
        color = weighted / np.maximum(weight, 1e-6)[..., None]
        alpha = np.clip(weight, 0.0, 1.0)[..., None]
        result = alpha * color + (1 - alpha) * up
    return result.astype(np.float32)


def _inpaint_background(
    image: np.ndarray,
    covered: np.ndarray,
    hair_px: float = 0.0,
    below_row: float = np.inf,
    work_size: int = 128,
) -> np.ndarray:
    """The photo with the head's region filled from its surroundings (blurred).

    The region is ``covered`` (the head's pixels in the source view) grown by a few pixels, and
    by ``hair_px`` above image row ``below_row`` (hair often stands out of the head proxy; the
    neck and shoulders below the chin stay in the backdrop).
    """
    size = image.shape[0]
    grow = max(3, size // 40) | 1
    region = cv2.dilate(covered.astype(np.uint8), np.ones((grow, grow), np.uint8))
    if hair_px >= 1:
        k = 2 * round(hair_px) + 1
        hair = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        rows = np.arange(size)[:, None] < below_row
        region = np.maximum(region, hair * rows.astype(np.uint8))
    small = cv2.resize(image, (work_size, work_size), interpolation=cv2.INTER_AREA)
    small_region = cv2.resize(
        region.astype(np.float32), (work_size, work_size), interpolation=cv2.INTER_AREA
    )
    known = (small_region < 0.01).astype(np.float32)  # pixels with no head in them
    filled = _push_pull_fill(small.astype(np.float32), known)
    filled = cv2.resize(filled, (size, size), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), grow / 2)[..., None]
    out = image.astype(np.float32) * (1 - soft) + filled.astype(np.float32) * soft
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# The head and the backend
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class MeshHead:
    """A textured mesh head (implements :class:`mvface.synth.head.Head`).

    Attributes:
        source_camera: ``(25,)`` float64 EG3D label of the source crop.
        source_size: crop side in pixels.
        mesh: everything drawn (face mesh then head proxy), world units.
        face_vertices: ``(468, 3)`` world positions of the MediaPipe vertices.
        face_faces: ``(F, 3)`` triangles of the face mesh (indices into ``face_vertices``).
        proxy: the head proxy's shape, in the face's own frame.
        face_frame: ``(A, origin)``: the face frame's axes (columns, world coordinates) and
            origin; ``world = local @ Aᵀ + origin``.
        background: ``(S, S, 3)`` uint8 backdrop (the photo, head region inpainted).
        face_probability: MediaPipe's face-presence probability of the crop.
        renderer: the renderer that draws it (a head holds renderer state: build and render it
            in the same process; it does not pickle once it has rendered).
        backend: ``"mesh"``.
        landmark_weights: ``(68, 468)`` weights mapping the face mesh's vertices to iBUG points
            (the ``mediapipe-68`` head), or ``None``: :meth:`surface_landmarks` is then
            ``None``.
    """

    source_camera: torch.Tensor
    source_size: int
    mesh: TexturedMesh
    face_vertices: np.ndarray
    face_faces: np.ndarray
    proxy: HeadProxy
    face_frame: tuple[np.ndarray, np.ndarray]
    background: np.ndarray
    face_probability: float
    renderer: MeshRenderer
    backend: str = "mesh"
    landmark_weights: np.ndarray | None = None
    _scene: PreparedScene | None = field(default=None, repr=False)

    def surface_landmarks(self) -> np.ndarray | None:
        """``(68, 3)`` world points: the face mesh's vertices mapped by ``landmark_weights``.

        The jaw points (0–16) are combinations of the face oval's vertices, so they follow the
        jaw in 3D however the head turns (AFLW2000-3D's convention), not the silhouette.
        """
        if self.landmark_weights is None:
            return None
        return np.asarray(self.landmark_weights @ self.face_vertices, np.float64)

    def render(self, cameras: torch.Tensor | np.ndarray, size: int) -> RenderOutput:
        """Render ``(V, 25)`` EG3D cameras at ``size`` x ``size`` pixels.

        Returns:
            ``rgb`` (head over the backdrop), ``depth`` (camera z of the head, ``inf``
            elsewhere), ``mask`` (head pixels); see :class:`~mvface.synth.head.RenderOutput`.
        """
        if self._scene is None:
            self._scene = self.renderer.prepare(self.mesh, self.background)
        return self._scene.render(cameras, size)

    def release(self) -> None:
        """Free the renderer's copy of the mesh (it is prepared again on the next render)."""
        if self._scene is not None:
            self._scene.release()
            self._scene = None


def _check_camera(camera: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A given source camera as a ``(25,)`` float64 label in front of the canonical face."""
    label = torch.as_tensor(np.asarray(camera), dtype=torch.float64).reshape(-1)
    if label.shape != (25,) or not bool(torch.isfinite(label).all()):
        raise BadInputError("camera", "expected a finite (25,) EG3D label")
    _, R, t = labels_to_cameras(label, 1)
    if float((R[0] @ np.asarray(CANONICAL_MESH_CENTROID) + t[0])[2]) <= 0:
        raise BadInputError("camera", "the face would lie behind the given camera")
    return label


def _check_inputs(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise BadInputError("image", f"expected (S, S, 3) uint8 RGB, got {image.shape}")
    if image.shape[0] != image.shape[1]:
        raise BadInputError("image", f"the crop must be square, got {image.shape[:2]}")
    if image.shape[0] < 32:
        raise BadInputError("image", f"crop too small ({image.shape[0]} px, need >= 32)")
    points = np.asarray(landmarks, np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise BadInputError("landmarks", f"expected finite (68, 2), got {points.shape}")
    size = image.shape[0]
    if (points < -0.5).any() or (points > size - 0.5).any():
        raise BadInputError("landmarks", "landmarks lie outside the crop")
    box = points.max(0) - points.min(0)
    if box.min() < 8:
        raise BadInputError("landmarks", f"face too small in the crop ({box.min():.1f} px)")
    return np.ascontiguousarray(image), points


class MeshHeadBackend:
    """Builds :class:`MeshHead` s (the ``"mesh"`` backend; see the module docstring).

    Args:
        renderer: ``"auto"`` (OpenGL via EGL, else numpy), ``"gl"``, ``"numpy"`` or a renderer.
        samples: MSAA samples of the GL renderer; 1 (default) draws aliased silhouettes, 4
            antialiases them at about 3x the time on Mesa's CPU rasterizer (free on a GPU).
        facemesh: a loaded face mesh network (default: the shipped weights, loaded once).
        passes: face mesh passes (see :func:`predict_face_mesh`).
        depth_scale: MediaPipe depth units per pixel (:data:`MEDIAPIPE_DEPTH_SCALE`).
        grid: ``(n_lat, n_lon)`` resolution of the head proxy.
        rim_deg, rim_min_deg: where the proxy's texture is reflected inwards
            (:func:`rim_texture_directions`), degrees from the source camera's direction.
        rim_blur: Gaussian blur of the reflected texture, sigma in crop widths (``fill="none"``).
        fill: how texture the photo did not see well is made: ``"mirror"`` (default) takes the
            face's other side where that was seen (MediaPipe's left/right vertex pairs; the
            proxy mirrored across the head's sagittal plane), else the head's low-frequency
            colour (:func:`fill_weights`); ``"none"``: the rim-reflected blurred photo only
            (the backend before the fill, kept measurable).
        min_face_probability: below it the crop is rejected (``BadInputError``).
    """

    name = "mesh"

    def __init__(
        self,
        renderer: str | MeshRenderer = "auto",
        samples: int = 1,
        facemesh: torch.nn.Module | None = None,
        passes: int = 2,
        depth_scale: float = MEDIAPIPE_DEPTH_SCALE,
        grid: tuple[int, int] = (48, 96),
        rim_deg: float = 88.0,
        rim_min_deg: float = 50.0,
        rim_blur: float = 0.01,
        min_face_probability: float = MIN_FACE_PROBABILITY,
        fill: FillMode = "mirror",
    ) -> None:
        if fill not in FILL_MODES:
            raise BadInputError("fill", f"unknown fill {fill!r} (mirror, none)")
        self.fill = fill
        if isinstance(renderer, str):
            if renderer not in ("auto", "gl", "numpy"):
                raise BadInputError("renderer", f"unknown renderer {renderer!r}")
            self.renderer: MeshRenderer = create_renderer(renderer, samples=samples)  # type: ignore[arg-type]
        else:
            self.renderer = renderer
        self._facemesh = facemesh
        self._landmark_weights: np.ndarray | None = None
        self.passes = passes
        self.depth_scale = depth_scale
        self.grid = grid
        self.rim_deg = rim_deg
        self.rim_min_deg = rim_min_deg
        self.rim_blur = rim_blur
        self.min_face_probability = min_face_probability

    @property
    def facemesh(self) -> torch.nn.Module:
        """The face mesh network (loaded on first use)."""
        if self._facemesh is None:
            from mvface.models.mediapipe_mesh import load_facemesh

            self._facemesh = load_facemesh()
        return self._facemesh

    @property
    def landmark_weights(self) -> np.ndarray | None:
        """``(68, 468)`` weights of the shipped ``mediapipe-68`` head (loaded on first use), or
        ``None`` when its file is absent."""
        if self._landmark_weights is None:
            from mvface.models.mediapipe_68 import DEFAULT_HEAD_PATH, load_head

            if DEFAULT_HEAD_PATH.is_file():
                head = load_head(DEFAULT_HEAD_PATH)[0]
                self._landmark_weights = head.weight.detach().double().numpy()
        return self._landmark_weights

    def build(
        self,
        image: np.ndarray,
        landmarks: np.ndarray,
        camera: torch.Tensor | None = None,
    ) -> MeshHead:
        """Build the head of one face crop (see :meth:`HeadBackend.build`).

        Args:
            image: ``(S, S, 3)`` uint8 RGB crop.
            landmarks: ``(68, 2)`` 0-based integer-centred pixels of the crop.
            camera: ``(25,)`` EG3D label of the crop, or ``None`` to estimate it.

        Returns:
            The head.

        Raises:
            BadInputError: bad image/landmarks, or no face found by the face mesh.
        """
        image, points = _check_inputs(image, landmarks)
        size = image.shape[0]
        label = None if camera is None else _check_camera(camera)
        mesh_px, probability = predict_face_mesh(self.facemesh, image, points, self.passes)
        if probability < self.min_face_probability:
            raise BadInputError("image", f"no face found (face mesh probability {probability:.2f})")
        if label is None:
            label = estimate_source_camera(mesh_px, size, self.depth_scale)
        K, R, t = (a[0] for a in labels_to_cameras(label, size))
        # depth of the canonical centroid in this camera (exact for an estimated camera)
        centroid_depth = float((R @ np.asarray(CANONICAL_MESH_CENTROID) + t)[2])
        face_cam = lift_face_mesh(mesh_px, K, centroid_depth, self.depth_scale)
        face = (face_cam - t) @ R  # world = Rᵀ (p − t) (rows of R are the camera axes)
        return self._assemble(image, label, K, R, t, face, probability, points)

    def _assemble(
        self,
        image: np.ndarray,
        label: torch.Tensor,
        K: np.ndarray,
        R: np.ndarray,
        t: np.ndarray,
        face: np.ndarray,
        probability: float,
        landmarks: np.ndarray | None = None,
    ) -> MeshHead:
        size = image.shape[0]
        # the face's own frame (for the proxy): local = (world − origin) @ A
        A = face_frame(face)
        origin = face.mean(0)
        local = (face - origin) @ A
        face_faces = triangulate_face(local[:, :2])
        proxy = fit_head_proxy(local)
        head_local, head_faces = _proxy_surface(proxy, local, face_faces, *self.grid)
        head = head_local @ A.T + origin
        vertices = np.vstack([face, head])
        faces = np.vstack([face_faces, head_faces + len(face)])
        # the source view's geometry: which pixels are head, what the photo sees of it
        geometry = TexturedMesh(
            vertices=vertices,
            faces=faces,
            uv=np.zeros((len(vertices), 2)),
            texture=np.zeros((1, 1, 3), np.uint8),
            cull_back_faces=True,
        )
        scene = self.renderer.prepare(geometry)
        source = scene.render(label[None], size)
        scene.release()
        covered = source.mask[0]

        def uv_of(points: np.ndarray, half: int) -> np.ndarray:
            uv = _project(points, K, R, t)[:, :2] / size
            uv = np.clip(uv, 0.5 / size, 1 - 0.5 / size)
            return np.stack([(uv[:, 0] + half) / 2, uv[:, 1]], axis=1)

        cam_center = -R.T @ t
        towards = proxy.normalize(((cam_center - origin) @ A)[None])[0]
        towards /= np.linalg.norm(towards)

        def reflected_uv(points_local: np.ndarray) -> np.ndarray:
            """UVs (second half) of the proxy texture reflected inwards at the rim."""
            q = proxy.normalize(points_local)
            q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            rim_dirs = rim_texture_directions(q, towards, self.rim_deg, self.rim_min_deg)
            return uv_of(proxy.denormalize(rim_dirs) @ A.T + origin, 1)

        # cosine between the surface and the direction to the source camera, per vertex: the
        # face mesh and the proxy each with their own normals (they meet without a seam)
        facing = np.concatenate(
            [
                _vertex_facing(face, face_faces, cam_center),
                _vertex_facing(head, head_faces, cam_center),
            ]
        )
        uv = uv_of(vertices, 0)
        rim_uv = np.vstack([reflected_uv(local), reflected_uv(head_local)])
        if self.fill == "none":
            # the photo by projection, cross-fading where the surface turns away from the
            # source camera to the proxy's blurred, rim-reflected copy of the photo
            atlas = _texture_atlas(image, self.rim_blur)
            blend = _smoothstep(GRAZING_START_COSINE, GRAZING_FULL_COSINE, facing)
            mirror_uv, mirror, filled = uv, np.zeros(len(vertices)), blend
        else:
            # observed texture where the photo saw the surface well; elsewhere the mirror
            # side's where that was seen; elsewhere the head's low-frequency colour
            atlas = np.ascontiguousarray(np.hstack([image, _head_colour_texture(image, covered)]))
            partner = np.concatenate(
                [face_mirror_partners(local), len(face) + _grid_mirror_partners(*self.grid)]
            )
            unoccluded = _source_unoccluded(vertices, K, R, t, source.depth[0])
            if landmarks is not None:  # the face mesh beyond the face's outline shows backdrop
                outline = _face_outline_mask(landmarks, size)
                px = np.clip(uv[: len(face)] * [2 * size, size], 0, size - 1).astype(int)
                unoccluded[: len(face)] &= outline[px[:, 1], px[:, 0]]
            own, mirror, blend = fill_weights(facing, unoccluded, partner)
            mirror_uv = uv[partner]
            filled = 1.0 - own
        mesh = TexturedMesh(
            vertices=vertices,
            faces=faces,
            uv=uv,
            texture=atlas,
            uv2=rim_uv,
            blend=blend,
            uv3=mirror_uv,
            blend3=mirror,
            filled=filled,
            cull_back_faces=True,
        )
        # hair standing out of the proxy would stay in the backdrop: clear a margin around the
        # head above the chin
        half_width_px = proxy.a * K[0, 0] / float((R @ origin + t)[2])
        chin_row = _project(face[MP_CHIN][None], K, R, t)[0, 1]
        background = _inpaint_background(
            image, covered, HAIR_MARGIN * half_width_px, chin_row - 0.1 * half_width_px
        )
        return MeshHead(
            source_camera=label,
            source_size=size,
            mesh=mesh,
            face_vertices=face,
            face_faces=face_faces,
            proxy=proxy,
            face_frame=(A, origin),
            background=background,
            face_probability=probability,
            renderer=self.renderer,
            landmark_weights=self.landmark_weights,
        )


def mesh_backend(**config: Any) -> MeshHeadBackend:
    """Factory of the default CPU backend (``--backend mesh``, registered by
    :mod:`mvface.synth.backends`)."""
    return MeshHeadBackend(**config)
