"""The face mesh of one photo, lifted into EG3D's world.

Steps 1–4 of :mod:`mvface.synth.mesh_head`: MediaPipe's 468-point mesh on an eyes-level crop
(:func:`predict_face_mesh`), the source camera when none is given
(:func:`estimate_source_camera`: the face's own frame, scaled to EG3D's heads), every vertex
lifted along its pixel's ray (:func:`lift_face_mesh`) and the mesh triangulated on its frontal
projection (:func:`triangulate_face`). Units are EG3D's world units; pixels follow
:mod:`mvface.synth.head`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from scipy.spatial import Delaunay

from mvface.geometry.cameras import EG3D_CENTER, EG3D_FOCAL
from mvface.models.mediapipe_mesh import small_network_inference
from mvface.synth.rig import PAPER_LOOKAT

__all__ = [
    "CANONICAL_EYE_DISTANCE",
    "CANONICAL_EYE_MOUTH_DISTANCE",
    "EYE_MOUTH_PITCH_DEG",
    "MEDIAPIPE_DEPTH_SCALE",
    "estimate_source_camera",
    "face_frame",
    "lift_face_mesh",
    "predict_face_mesh",
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


#: Below this MediaPipe face probability the crop is rejected as "no face".
MIN_FACE_PROBABILITY = 0.5


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
