"""What every mesh renderer takes and gives: the textured mesh, EG3D cameras as pixel matrices.

:class:`TexturedMesh` (the input), :func:`labels_to_cameras` and the GL-style clip matrices (the
cameras), the background resize and the :class:`MeshRenderer` / :class:`PreparedScene` protocols
shared by :mod:`mvface.synth.gl_renderer` and :mod:`mvface.synth.numpy_renderer`. Conventions
(camera axes, pixel centres, texture coordinates) are those of :mod:`mvface.synth.renderer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import torch

from mvface.errors import BadInputError
from mvface.synth.head import RenderOutput

__all__ = [
    "DEFAULT_FAR",
    "DEFAULT_NEAR",
    "MeshRenderer",
    "PreparedScene",
    "TexturedMesh",
    "labels_to_cameras",
]


#: Depth range of the rasterizers (world units); the synthetic heads sit ~2.5 from the cameras.
DEFAULT_NEAR = 0.05
DEFAULT_FAR = 100.0


@dataclass(frozen=True)
class TexturedMesh:
    """A triangle mesh with one RGB texture.

    Each vertex may carry a second and a third texture coordinate ``uv2``, ``uv3`` with weights
    ``blend``, ``blend3``: the colour of a surface point is
    ``(1 − w2 − w3)·tex(uv) + w2·tex(uv2) + w3·tex(uv3)`` with the coordinates and weights
    interpolated across the triangle (smooth cross-fades between texture mappings: no seams).
    A per-vertex ``filled`` weight (how much of the colour was *not* observed in the source
    photo) is interpolated the same way and rendered as :attr:`RenderOutput.filled`.

    Attributes:
        vertices: ``(N, 3)`` float32 world coordinates.
        faces: ``(F, 3)`` int32 vertex indices.
        uv: ``(N, 2)`` float32 texture coordinates, normalized continuous image coordinates
            (``(0, 0)`` top-left corner of the texture, ``(1, 1)`` bottom-right, v down).
        texture: ``(Ht, Wt, 3)`` uint8 RGB.
        uv2: ``(N, 2)`` float32 second texture coordinates (default: ``uv``).
        blend: ``(N,)`` float32 weight of ``uv2`` in [0, 1] (default: 0).
        uv3: ``(N, 2)`` float32 third texture coordinates (default: ``uv``).
        blend3: ``(N,)`` float32 weight of ``uv3`` in [0, 1 − blend] (default: 0).
        filled: ``(N,)`` float32 in [0, 1], rendered into ``RenderOutput.filled`` (default:
            0, all observed).
        cull_back_faces: skip triangles seen from behind. Only for meshes whose triangles
            wind counter-clockwise seen from outside (right-hand normal pointing out) and whose
            back sides are never visible (closed surfaces); about halves the work.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    texture: np.ndarray
    uv2: np.ndarray | None = None
    blend: np.ndarray | None = None
    cull_back_faces: bool = False
    uv3: np.ndarray | None = None
    blend3: np.ndarray | None = None
    filled: np.ndarray | None = None

    def __post_init__(self) -> None:
        v = np.ascontiguousarray(self.vertices, dtype=np.float32)
        f = np.ascontiguousarray(self.faces, dtype=np.int32)
        uv = np.ascontiguousarray(self.uv, dtype=np.float32)
        tex = np.ascontiguousarray(self.texture)
        if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
            raise BadInputError("mesh", f"vertices must be finite (N, 3), got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= len(v))):
            raise BadInputError("mesh", "faces must be (F, 3) indices into the vertices")
        if uv.shape != (len(v), 2) or not np.isfinite(uv).all():
            raise BadInputError("mesh", f"uv must be finite (N, 2), got {uv.shape}")
        if tex.dtype != np.uint8 or tex.ndim != 3 or tex.shape[2] != 3:
            raise BadInputError("mesh", f"texture must be (H, W, 3) uint8, got {tex.shape}")
        uv2 = uv if self.uv2 is None else np.ascontiguousarray(self.uv2, dtype=np.float32)
        if uv2.shape != (len(v), 2) or not np.isfinite(uv2).all():
            raise BadInputError("mesh", f"uv2 must be finite (N, 2), got {uv2.shape}")
        blend = (
            np.zeros(len(v), np.float32)
            if self.blend is None
            else np.ascontiguousarray(self.blend, dtype=np.float32)
        )
        if blend.shape != (len(v),) or not np.isfinite(blend).all():
            raise BadInputError("mesh", f"blend must be finite (N,), got {blend.shape}")
        object.__setattr__(self, "vertices", v)
        object.__setattr__(self, "faces", f)
        object.__setattr__(self, "uv", uv)
        object.__setattr__(self, "texture", tex)
        uv3 = uv if self.uv3 is None else np.ascontiguousarray(self.uv3, dtype=np.float32)
        if uv3.shape != (len(v), 2) or not np.isfinite(uv3).all():
            raise BadInputError("mesh", f"uv3 must be finite (N, 2), got {uv3.shape}")
        extra = {}
        for name in ("blend3", "filled"):
            value = getattr(self, name)
            value = (
                np.zeros(len(v), np.float32)
                if value is None
                else np.ascontiguousarray(value, dtype=np.float32)
            )
            if value.shape != (len(v),) or not np.isfinite(value).all():
                raise BadInputError("mesh", f"{name} must be finite (N,), got {value.shape}")
            extra[name] = np.clip(value, 0.0, 1.0)
        blend = np.clip(blend, 0.0, 1.0)
        object.__setattr__(self, "uv2", uv2)
        object.__setattr__(self, "blend", blend)
        object.__setattr__(self, "uv3", uv3)
        object.__setattr__(self, "blend3", np.minimum(extra["blend3"], 1.0 - blend))
        object.__setattr__(self, "filled", extra["filled"])


def labels_to_cameras(
    labels: torch.Tensor | np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel intrinsics and world-to-camera extrinsics of EG3D labels, float64 numpy.

    Same conventions as :func:`mvface.geometry.eg3d_label_to_camera` (``R`` is the transpose of
    the cam2world rotation block).

    Args:
        labels: ``(V, 25)`` EG3D labels (or ``(25,)`` for one view).
        size: side of the square image in pixels.

    Returns:
        ``K`` ``(V, 3, 3)`` pixels, ``R`` ``(V, 3, 3)``, ``t`` ``(V, 3)`` world units.

    Raises:
        BadInputError: wrong shape or non-finite values, size < 1.
    """
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels
    lab = np.asarray(lab, dtype=np.float64)
    if lab.ndim == 1:
        lab = lab[None]
    if lab.ndim != 2 or lab.shape[1] != 25 or not np.isfinite(lab).all():
        raise BadInputError("camera", f"labels must be finite (V, 25), got {lab.shape}")
    if size < 1:
        raise BadInputError("camera", f"image size must be positive, got {size}")
    c2w = lab[:, :16].reshape(-1, 4, 4)
    K = lab[:, 16:].reshape(-1, 3, 3).copy()
    K[:, :2, :] *= size
    R = np.swapaxes(c2w[:, :3, :3], 1, 2)
    t = -np.einsum("vij,vj->vi", R, c2w[:, :3, 3])
    return K, R, t


def clip_matrices(
    K: np.ndarray, R: np.ndarray, t: np.ndarray, size: int, near: float, far: float
) -> np.ndarray:
    """``(V, 4, 4)`` world -> GL clip matrices with ``w = z_cam`` and image rows top-down.

    ``x_ndc = 2u/S − 1``, ``y_ndc = 2v/S − 1`` (so image row 0 is the framebuffer's first row in
    memory), ``z_ndc`` the usual perspective depth between ``near`` and ``far``.
    """
    V = len(K)
    proj = np.zeros((V, 4, 4))
    proj[:, 0, 0] = 2 * K[:, 0, 0] / size
    proj[:, 0, 1] = 2 * K[:, 0, 1] / size
    proj[:, 0, 2] = 2 * K[:, 0, 2] / size - 1
    proj[:, 1, 1] = 2 * K[:, 1, 1] / size
    proj[:, 1, 2] = 2 * K[:, 1, 2] / size - 1
    proj[:, 2, 2] = (far + near) / (far - near)
    proj[:, 2, 3] = -2 * far * near / (far - near)
    proj[:, 3, 2] = 1.0
    world_to_cam = np.zeros((V, 4, 4))
    world_to_cam[:, :3, :3] = R
    world_to_cam[:, :3, 3] = t
    world_to_cam[:, 3, 3] = 1.0
    return proj @ world_to_cam


def resize_background(background: np.ndarray | None, size: int) -> np.ndarray | None:
    if background is None:
        return None
    if background.dtype != np.uint8 or background.ndim != 3 or background.shape[2] != 3:
        raise BadInputError("background", f"must be (H, W, 3) uint8, got {background.shape}")
    if background.shape[:2] == (size, size):
        return background
    shrinking = background.shape[0] > size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(background, (size, size), interpolation=interp)


class PreparedScene(Protocol):
    """A mesh (and background) uploaded once, rendered from many cameras."""

    def render(self, labels: torch.Tensor | np.ndarray, size: int) -> RenderOutput:
        """Render ``(V, 25)`` EG3D cameras at ``size`` x ``size`` pixels."""
        ...

    def release(self) -> None:
        """Free what the scene holds (GPU/GL objects); it cannot render afterwards."""
        ...


class MeshRenderer(Protocol):
    """What :func:`~mvface.synth.renderer.create_renderer` returns."""

    name: str

    def prepare(self, mesh: TexturedMesh, background: np.ndarray | None = None) -> PreparedScene:
        """Upload ``mesh`` and the optional ``(H, W, 3)`` uint8 screen-filling background."""
        ...
