"""Rasterize textured triangle meshes into RGB, depth and mask images from pinhole cameras.

Two interchangeable renderers, chosen by :func:`create_renderer`:

* :class:`GLRenderer` — OpenGL 3.3 through ``moderngl`` on a headless EGL context (Mesa's
  llvmpipe on a CPU machine, a GPU driver where there is one). No X server is needed. Optional
  multisampling (4x by default) antialiases silhouettes; the default.
* :class:`NumpyRenderer` — a vectorized z-buffer rasterizer in numpy/OpenCV: no system
  libraries at all, slower, no antialiasing. The fallback when EGL or ``moderngl`` is missing.

Both follow the conventions of :mod:`mvface.geometry`: OpenCV camera axes (x right, y down,
looking along +z), world-to-camera ``x_cam = R X + t`` with ``R = c2w[:3, :3]ᵀ`` (EG3D's
transpose), and EG3D pixels ``pixel = (x/z · f + c) · size``, continuous with 0 at the image's
left/top edge: output pixel ``[j, i]`` is the sample at the continuous point ``(i + 0.5, j + 0.5)``
(the centre of pixel ``i`` in EG3D's convention; ``(i, j)`` in the 0-based integer-centred
convention of :class:`mvface.data.FaceSample`).

Cameras are EG3D 25-value labels (16 cam2world values then 9 normalized intrinsics), so one
label renders at any square size. Texture coordinates are normalized continuous image
coordinates: ``uv = (0, 0)`` is the top-left *corner* of the texture image, ``(1, 1)`` its
bottom-right corner, ``v`` down.

Outputs are a :class:`~mvface.synth.head.RenderOutput`: ``rgb`` (V, S, S, 3) uint8 (the mesh
composited over the optional ``background``), ``depth`` (V, S, S) float32 camera-frame ``z`` of
the nearest surface (world units; ``inf`` where no triangle covers the pixel) and ``mask``
(V, S, S) bool.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import torch

from mvface.errors import BadInputError, NotAvailableError
from mvface.synth.head import RenderOutput

__all__ = [
    "GLRenderer",
    "MeshRenderer",
    "NumpyRenderer",
    "PreparedScene",
    "TexturedMesh",
    "create_renderer",
    "labels_to_cameras",
]

_log = logging.getLogger(__name__)

RendererName = Literal["auto", "gl", "numpy"]

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


def _clip_matrices(
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


def _resize_background(background: np.ndarray | None, size: int) -> np.ndarray | None:
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
    """What :func:`create_renderer` returns."""

    name: str

    def prepare(self, mesh: TexturedMesh, background: np.ndarray | None = None) -> PreparedScene:
        """Upload ``mesh`` and the optional ``(H, W, 3)`` uint8 screen-filling background."""
        ...


# --------------------------------------------------------------------------------------------
# numpy rasterizer
# --------------------------------------------------------------------------------------------


def _candidate_pixels(
    xmin: np.ndarray, xmax: np.ndarray, ymin: np.ndarray, ymax: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every integer pixel of each triangle's inclusive box: (triangle index, x, y) arrays."""
    nx = xmax - xmin + 1
    ny = ymax - ymin + 1
    counts = nx * ny
    total = int(counts.sum())
    tri = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    local = np.arange(total) - np.repeat(starts, counts)
    nx_rep = nx[tri]
    return tri, xmin[tri] + local % nx_rep, ymin[tri] + local // nx_rep


class _NumpyScene:
    """:class:`PreparedScene` of :class:`NumpyRenderer`."""

    def __init__(
        self,
        mesh: TexturedMesh,
        background: np.ndarray | None,
        near: float,
        far: float,
    ) -> None:
        self.mesh = mesh
        self.background = background
        self.near = near
        self.far = far
        self._vertices = mesh.vertices.astype(np.float64)
        scale = np.array([mesh.texture.shape[1], mesh.texture.shape[0]], np.float32)
        assert mesh.uv2 is not None and mesh.blend is not None
        assert mesh.uv3 is not None and mesh.blend3 is not None and mesh.filled is not None
        # per vertex: uv (pixels), uv2 (pixels), blend, uv3 (pixels), blend3, filled
        self._attributes = np.hstack(
            [
                mesh.uv * scale,
                mesh.uv2 * scale,
                mesh.blend[:, None],
                mesh.uv3 * scale,
                mesh.blend3[:, None],
                mesh.filled[:, None],
            ]
        ).astype(np.float64)
        self._blended = bool((mesh.blend > 0).any())
        self._blended3 = bool((mesh.blend3 > 0).any())

    def release(self) -> None:
        """Nothing to free (kept for the :class:`PreparedScene` protocol)."""

    def render(self, labels: torch.Tensor | np.ndarray, size: int) -> RenderOutput:
        """Render ``(V, 25)`` EG3D cameras at ``size`` x ``size`` (see the module docstring)."""
        K, R, t = labels_to_cameras(labels, size)
        V = len(K)
        rgb = np.zeros((V, size, size, 3), np.uint8)
        depth = np.full((V, size, size), np.inf, np.float32)
        mask = np.zeros((V, size, size), bool)
        filled = np.zeros((V, size, size), np.float32)
        background = _resize_background(self.background, size)
        for view in range(V):
            self._render_view(
                K[view], R[view], t[view], size, rgb[view], depth[view], mask[view], filled[view]
            )
            if background is not None:
                rgb[view][~mask[view]] = background[~mask[view]]
        return RenderOutput(rgb=rgb, depth=depth, mask=mask, filled=filled)

    def _render_view(
        self,
        K: np.ndarray,
        R: np.ndarray,
        t: np.ndarray,
        size: int,
        rgb: np.ndarray,
        depth: np.ndarray,
        mask: np.ndarray,
        filled: np.ndarray,
    ) -> None:
        cam = self._vertices @ R.T + t
        z = cam[:, 2]
        safe_z = np.where(z > self.near, z, np.inf)
        u = (K[0, 0] * cam[:, 0] + K[0, 1] * cam[:, 1]) / safe_z + K[0, 2]
        v = K[1, 1] * cam[:, 1] / safe_z + K[1, 2]
        faces = self.mesh.faces
        fz = z[faces]
        keep = (fz > self.near).all(1) & (fz < self.far).all(1)
        faces = faces[keep]
        if len(faces) == 0:
            return
        # continuous pixel coordinates of the sample points are (i + 0.5, j + 0.5): shift the
        # vertices by −0.5 so that samples sit at integers
        fu = u[faces] - 0.5
        fv = v[faces] - 0.5
        xmin = np.clip(np.ceil(fu.min(1)), 0, size).astype(np.int64)
        xmax = np.clip(np.floor(fu.max(1)), -1, size - 1).astype(np.int64)
        ymin = np.clip(np.ceil(fv.min(1)), 0, size).astype(np.int64)
        ymax = np.clip(np.floor(fv.max(1)), -1, size - 1).astype(np.int64)
        # signed area; drop degenerate and off-screen triangles
        area = (fu[:, 1] - fu[:, 0]) * (fv[:, 2] - fv[:, 0]) - (fu[:, 2] - fu[:, 0]) * (
            fv[:, 1] - fv[:, 0]
        )
        ok = (xmax >= xmin) & (ymax >= ymin) & (np.abs(area) > 1e-12)
        if self.mesh.cull_back_faces:
            # seen from the camera (y down on screen), outward counter-clockwise triangles
            # have a negative signed area here
            ok &= area < 0
        if not ok.any():
            return
        faces, fu, fv, area = faces[ok], fu[ok], fv[ok], area[ok]
        tri, px, py = _candidate_pixels(xmin[ok], xmax[ok], ymin[ok], ymax[ok])
        x0, x1, x2 = fu[tri, 0], fu[tri, 1], fu[tri, 2]
        y0, y1, y2 = fv[tri, 0], fv[tri, 1], fv[tri, 2]
        inv_area = 1.0 / area[tri]
        # screen-space barycentrics (edge functions)
        b0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) * inv_area
        b1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) * inv_area
        b2 = 1.0 - b0 - b1
        eps = -1e-9
        inside = (b0 >= eps) & (b1 >= eps) & (b2 >= eps)
        tri, px, py = tri[inside], px[inside], py[inside]
        b = np.stack([b0[inside], b1[inside], b2[inside]], axis=1)
        # perspective-correct interpolation: 1/z is linear in screen space
        inv_z = 1.0 / z[faces[tri]]
        inv_depth = (b * inv_z).sum(1)
        cand_z = 1.0 / inv_depth
        pix = py * size + px
        # z-buffer: per pixel, the nearest candidate (sort by pixel then depth, keep the first)
        order = np.lexsort((cand_z, pix))
        pix_sorted = pix[order]
        first = np.ones(len(order), bool)
        first[1:] = pix_sorted[1:] != pix_sorted[:-1]
        win = order[first]
        wpix = pix[win]
        weights = b[win] * inv_z[win] * cand_z[win, None]
        attributes = np.einsum("nk,nkc->nc", weights, self._attributes[faces[tri[win]]])
        flat_depth = depth.reshape(-1)
        flat_mask = mask.reshape(-1)
        flat_depth[wpix] = cand_z[win]
        flat_mask[wpix] = True
        filled.reshape(-1)[wpix] = attributes[:, 8]
        sampled = self._sample(attributes[:, 0:2], wpix, size)
        if self._blended or self._blended3:
            mixed = np.zeros((size, size, 3), np.float32)
            own = np.ones((size, size, 1), np.float32)
            for uv_col, w_col in ((2, 4), (5, 7)):
                w = np.zeros((size, size, 1), np.float32)
                w.reshape(-1)[wpix] = attributes[:, w_col]
                if w.any():
                    mixed += self._sample(attributes[:, uv_col : uv_col + 2], wpix, size) * w
                    own -= w
            sampled = (sampled * own + mixed + 0.5).clip(0, 255).astype(np.uint8)
        rgb[mask] = sampled[mask]

    def _sample(self, uv: np.ndarray, wpix: np.ndarray, size: int) -> np.ndarray:
        """Bilinear texture samples at continuous texture pixels ``uv`` of pixels ``wpix``."""
        map_x = np.full(size * size, -10.0, np.float32)
        map_y = np.full(size * size, -10.0, np.float32)
        # continuous texture pixel -> integer-centred: − 0.5
        map_x[wpix] = uv[:, 0] - 0.5
        map_y[wpix] = uv[:, 1] - 0.5
        return cv2.remap(
            self.mesh.texture,
            map_x.reshape(size, size),
            map_y.reshape(size, size),
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )


class NumpyRenderer:
    """Pure numpy/OpenCV z-buffer rasterizer (no antialiasing, nearest-surface depth).

    Samples every pixel at its centre, interpolates depth and texture coordinates
    perspective-correctly and samples the texture bilinearly. Triangles with a vertex nearer
    than ``near`` are dropped (no clipping): fine for heads seen from ~2.5 world units.

    Args:
        near: nearest depth drawn (world units).
        far: farthest depth drawn (world units).
    """

    name = "numpy"

    def __init__(self, near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR) -> None:
        self.near = near
        self.far = far

    def prepare(self, mesh: TexturedMesh, background: np.ndarray | None = None) -> _NumpyScene:
        """Keep ``mesh`` and the optional background for rendering (nothing to upload)."""
        if background is not None:
            _resize_background(background, 1)  # validate
        return _NumpyScene(mesh, background, self.near, self.far)


# --------------------------------------------------------------------------------------------
# OpenGL (moderngl + EGL)
# --------------------------------------------------------------------------------------------

_MESH_VERTEX_SHADER = """
#version 330
uniform mat4 clip_from_world;
in vec3 in_position;
in vec2 in_uv;
in vec2 in_uv2;
in float in_blend;
in vec2 in_uv3;
in float in_blend3;
in float in_filled;
out vec2 v_uv;
out vec2 v_uv2;
out float v_blend;
out vec2 v_uv3;
out float v_blend3;
out float v_filled;
out float v_z;
void main() {
    vec4 clip = clip_from_world * vec4(in_position, 1.0);
    gl_Position = clip;
    v_uv = in_uv;
    v_uv2 = in_uv2;
    v_blend = in_blend;
    v_uv3 = in_uv3;
    v_blend3 = in_blend3;
    v_filled = in_filled;
    v_z = clip.w;  // camera-frame z (the clip matrix's last row is [R_3 | t_3])
}
"""

_MESH_FRAGMENT_SHADER = """
#version 330
uniform sampler2D tex;
in vec2 v_uv;
in vec2 v_uv2;
in float v_blend;
in vec2 v_uv3;
in float v_blend3;
in float v_filled;
in float v_z;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_depth;
void main() {
    vec3 color = texture(tex, v_uv).rgb;
    if (v_blend > 0.0 || v_blend3 > 0.0) {
        color = color * (1.0 - v_blend - v_blend3) + texture(tex, v_uv2).rgb * v_blend
            + texture(tex, v_uv3).rgb * v_blend3;
    }
    out_color = vec4(color, v_filled);  // alpha: the filled weight (background: 0)
    out_depth = vec2(v_z, 1.0);  // (z, coverage): resolves to (mean z·coverage, coverage)
}
"""

_BACKGROUND_VERTEX_SHADER = """
#version 330
in vec2 in_corner;
out vec2 v_uv;
void main() {
    gl_Position = vec4(in_corner, 1.0, 1.0);
    v_uv = in_corner * 0.5 + 0.5;  // y_ndc = -1 is image row 0 (see _clip_matrices)
}
"""

_BACKGROUND_FRAGMENT_SHADER = """
#version 330
uniform sampler2D tex;
in vec2 v_uv;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_depth;
void main() {
    out_color = vec4(texture(tex, v_uv).rgb, 0.0);
    out_depth = vec2(0.0, 0.0);
}
"""

_RESOLVE_VERTEX_SHADER = """
#version 330
in vec2 in_corner;
void main() {
    gl_Position = vec4(in_corner, 0.0, 1.0);
}
"""

# Custom multisample resolve: colour is the mean of the samples; depth is the *nearest* covered
# sample's z (a pixel on a silhouette takes the foreground's depth, never a blend of two
# surfaces) and the second channel the covered fraction.
_RESOLVE_FRAGMENT_SHADER = """
#version 330
uniform sampler2DMS color_ms;
uniform sampler2DMS depth_ms;
uniform int samples;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_depth;
void main() {
    ivec2 pixel = ivec2(gl_FragCoord.xy);
    vec4 color = vec4(0.0);
    float nearest = 1e30;
    float covered = 0.0;
    for (int i = 0; i < samples; ++i) {
        color += texelFetch(color_ms, pixel, i);
        vec2 zc = texelFetch(depth_ms, pixel, i).xy;
        if (zc.y > 0.5) {
            covered += 1.0;
            nearest = min(nearest, zc.x);
        }
    }
    out_color = color / float(samples);
    out_depth = vec2(covered > 0.0 ? nearest : 0.0, covered / float(samples));
}
"""

_CONTEXT_LOCK = threading.Lock()
_CONTEXTS: dict[tuple[int, int], Any] = {}


def _gl_context() -> Any:
    """One headless EGL context per process and thread (created on first use).

    Keyed by process id too, so that a forked worker never reuses its parent's context.
    """
    try:
        import moderngl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise NotAvailableError("moderngl is not installed (pip install moderngl)") from exc
    key = (os.getpid(), threading.get_ident())
    with _CONTEXT_LOCK:
        ctx = _CONTEXTS.get(key)
        if ctx is None:
            try:
                options: dict[str, Any] = {"backend": "egl", "require": 330}
                ctx = moderngl.create_standalone_context(**options)
            except Exception as exc:  # pragma: no cover - depends on the environment
                raise NotAvailableError(
                    f"no headless OpenGL 3.3 context through EGL ({exc}); install Mesa's EGL "
                    "(Debian: libegl1 libegl-mesa0 libgl1-mesa-dri) or use the numpy renderer"
                ) from exc
            _CONTEXTS[key] = ctx
    return ctx


def _upload_texture(ctx: Any, image: np.ndarray, mipmaps: bool) -> Any:
    import moderngl

    h, w = image.shape[:2]
    tex = ctx.texture((w, h), 3, data=np.ascontiguousarray(image).tobytes(), alignment=1)
    tex.repeat_x = False
    tex.repeat_y = False
    if mipmaps:
        tex.build_mipmaps()
        tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
    else:
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
    return tex


def _tiles(image: np.ndarray, rows: int, cols: int, size: int) -> np.ndarray:
    """``(rows·S, cols·S, C)`` -> ``(rows·cols, S, S, C)``, row-major tile order."""
    channels = image.shape[-1]
    tiles = image.reshape(rows, size, cols, size, channels).transpose(0, 2, 1, 3, 4)
    return tiles.reshape(rows * cols, size, size, channels)


class _GLScene:
    """:class:`PreparedScene` of :class:`GLRenderer`."""

    def __init__(
        self,
        renderer: GLRenderer,
        mesh: TexturedMesh,
        background: np.ndarray | None,
    ) -> None:
        self.renderer = renderer
        self.ctx = _gl_context()
        ctx = self.ctx
        self._programs = renderer._programs(ctx)
        mesh_prog, bg_prog = self._programs
        self._objects: list[Any] = []
        assert mesh.uv2 is not None and mesh.blend is not None
        assert mesh.uv3 is not None and mesh.blend3 is not None and mesh.filled is not None
        interleaved = np.hstack(
            [
                mesh.vertices,
                mesh.uv,
                mesh.uv2,
                mesh.blend[:, None],
                mesh.uv3,
                mesh.blend3[:, None],
                mesh.filled[:, None],
            ]
        )
        vbo = ctx.buffer(interleaved.astype(np.float32).tobytes())
        ibo = ctx.buffer(mesh.faces.astype(np.int32).tobytes())
        names = ("in_position", "in_uv", "in_uv2", "in_blend", "in_uv3", "in_blend3", "in_filled")
        self._vao = ctx.vertex_array(
            mesh_prog, [(vbo, "3f 2f 2f 1f 2f 1f 1f", *names)], index_buffer=ibo
        )
        self._texture = _upload_texture(ctx, mesh.texture, mipmaps=False)
        self._cull = mesh.cull_back_faces
        self._objects += [vbo, ibo, self._vao, self._texture]
        self._background = background
        self._bg_vao = None
        self._bg_texture = None
        if background is not None:
            _resize_background(background, 1)  # validate
            corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
            bg_vbo = ctx.buffer(corners.tobytes())
            self._bg_vao = ctx.vertex_array(bg_prog, [(bg_vbo, "2f", "in_corner")])
            self._objects += [bg_vbo, self._bg_vao]
        self._bg_size = -1
        self._fbos: dict[tuple[int, int], tuple[Any, Any, list[Any]]] = {}
        self._ms_textures: dict[tuple[int, int], tuple[Any, Any]] = {}
        corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        quad = ctx.buffer(corners.tobytes())
        resolve = renderer._resolve_program(ctx)
        self._resolve_vao = ctx.vertex_array(resolve, [(quad, "2f", "in_corner")])
        self._objects += [quad, self._resolve_vao]

    def _background_texture(self, size: int) -> Any | None:
        if self._background is None:
            return None
        if self._bg_size != size:
            if self._bg_texture is not None:
                self._bg_texture.release()
            resized = _resize_background(self._background, size)
            assert resized is not None
            self._bg_texture = _upload_texture(self.ctx, resized, mipmaps=False)
            self._bg_size = size
        return self._bg_texture

    def _framebuffers(self, width: int, height: int) -> tuple[Any, Any]:
        """(draw framebuffer, single-sample read framebuffer) of ``width`` x ``height``."""
        key = (width, height)
        if key not in self._fbos:
            for _, _, old in self._fbos.values():  # keep one set: sizes rarely change
                for obj in reversed(old):
                    obj.release()
            self._fbos.clear()
            self._ms_textures.clear()
            ctx = self.ctx
            samples = self.renderer.samples
            objs: list[Any] = []
            read_color = ctx.renderbuffer(key, 4, dtype="f1")
            read_depth = ctx.renderbuffer(key, 2, dtype="f4")
            objs += [read_color, read_depth]
            if samples > 1:
                color = ctx.texture(key, 4, samples=samples, dtype="f1")
                zbuf = ctx.texture(key, 2, samples=samples, dtype="f4")
                depth = ctx.depth_renderbuffer(key, samples=samples)
                draw = ctx.framebuffer([color, zbuf], depth)
                read = ctx.framebuffer([read_color, read_depth])
                objs += [color, zbuf, depth, draw, read]
                self._ms_textures[key] = (color, zbuf)
            else:
                depth = ctx.depth_renderbuffer(key)
                draw = ctx.framebuffer([read_color, read_depth], depth)
                read = draw
                objs += [depth, draw]
            self._fbos[key] = (draw, read, objs)
        draw, read, _ = self._fbos[key]
        return draw, read

    def render(self, labels: torch.Tensor | np.ndarray, size: int) -> RenderOutput:
        """Render ``(V, 25)`` EG3D cameras at ``size`` x ``size`` (see the module docstring).

        Views are drawn side by side into one framebuffer of up to
        ``renderer.max_framebuffer`` pixels a side (one tile per view, one viewport each) and
        read back together, which saves most of the per-view synchronization.
        """
        import moderngl

        K, R, t = labels_to_cameras(labels, size)
        clip = _clip_matrices(K, R, t, size, self.renderer.near, self.renderer.far)
        clip_bytes = [c.T.astype(np.float32).tobytes() for c in clip]
        V = len(K)
        rgb = np.empty((V, size, size, 3), np.uint8)
        depth = np.empty((V, size, size), np.float32)
        mask = np.empty((V, size, size), bool)
        filled = np.empty((V, size, size), np.float32)
        ctx = self.ctx
        per_side = max(1, self.renderer.max_framebuffer // size)
        cols = min(per_side, V)
        rows = min(per_side, -(-V // cols))
        width, height = cols * size, rows * size
        draw, read = self._framebuffers(width, height)
        bg_texture = self._background_texture(size)
        mesh_prog, bg_prog = self._programs
        mesh_prog["tex"].value = 0
        bg_prog["tex"].value = 0
        multisampled = draw is not read
        for start in range(0, V, cols * rows):
            batch = range(start, min(start + cols * rows, V))
            draw.use()
            ctx.viewport = (0, 0, width, height)
            draw.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            ctx.disable(moderngl.BLEND)
            # image rows run down the framebuffer (see _clip_matrices), which mirrors the
            # winding: outward counter-clockwise triangles arrive clockwise
            ctx.front_face = "cw"
            ctx.cull_face = "back"
            for slot, view in enumerate(batch):
                # tile (row, col); framebuffer row 0 is image row 0 (see _clip_matrices)
                ctx.viewport = ((slot % cols) * size, (slot // cols) * size, size, size)
                if bg_texture is not None and self._bg_vao is not None:
                    ctx.disable(moderngl.DEPTH_TEST)
                    bg_texture.use(0)
                    self._bg_vao.render(moderngl.TRIANGLE_STRIP)
                ctx.enable(moderngl.DEPTH_TEST)
                if self._cull:
                    ctx.enable(moderngl.CULL_FACE)
                self._texture.use(0)
                mesh_prog["clip_from_world"].write(clip_bytes[view])
                self._vao.render(moderngl.TRIANGLES)
                ctx.disable(moderngl.CULL_FACE)
            if multisampled:
                ctx.viewport = (0, 0, width, height)
                self._resolve(read, (width, height))
            n = len(batch)
            color = np.frombuffer(read.read(components=4, attachment=0), np.uint8)
            color = _tiles(color.reshape(height, width, 4), rows, cols, size)[:n]
            zc = np.frombuffer(read.read(components=2, attachment=1, dtype="f4"), np.float32)
            zc = _tiles(zc.reshape(height, width, 2), rows, cols, size)[:n]
            rgb[batch.start : batch.stop] = color[..., :3]
            covered = zc[..., 1] > 0.5
            mask[batch.start : batch.stop] = covered
            depth[batch.start : batch.stop] = np.where(covered, zc[..., 0], np.inf)
            # alpha holds the filled weight of head fragments (0 for the background)
            alpha = color[..., 3].astype(np.float32) / 255.0
            filled[batch.start : batch.stop] = np.where(covered, alpha, 0.0)
        return RenderOutput(rgb=rgb, depth=depth, mask=mask, filled=filled)

    def _resolve(self, read: Any, key: tuple[int, int]) -> None:
        """Resolve the multisampled targets into ``read`` (see the resolve shader)."""
        import moderngl

        color_ms, depth_ms = self._ms_textures[key]
        program = self.renderer._resolve_program(self.ctx)
        read.use()
        self.ctx.disable(moderngl.DEPTH_TEST)
        color_ms.use(0)
        depth_ms.use(1)
        program["color_ms"].value = 0
        program["depth_ms"].value = 1
        program["samples"].value = self.renderer.samples
        self._resolve_vao.render(moderngl.TRIANGLE_STRIP)

    def release(self) -> None:
        """Free the GL buffers, textures and framebuffers of this scene."""
        for obj in self._objects:
            obj.release()
        if self._bg_texture is not None:
            self._bg_texture.release()
        for _, _, objs in self._fbos.values():
            for obj in reversed(objs):
                obj.release()
        self._objects = []
        self._fbos = {}
        self._bg_texture = None


class GLRenderer:
    """OpenGL renderer through ``moderngl`` on a headless EGL context (no X server).

    Draws the mesh with perspective-correct, mipmapped, bilinear texturing and writes the
    camera-frame ``z`` of each fragment into a float target; with ``samples > 1`` colour and
    depth are multisampled and resolved by a shader (colour: mean of the samples, antialiased;
    ``depth``: the nearest covered sample's ``z``; ``mask``: more than half of the samples
    covered).

    Args:
        samples: MSAA samples per pixel (1 turns antialiasing off; then ``depth``/``mask``
            match :class:`NumpyRenderer` exactly up to float precision).
        near: nearest depth drawn (world units).
        far: farthest depth drawn (world units).
        max_framebuffer: side of the framebuffer that batches of views are tiled into (views
            larger than it get a framebuffer of their own size).

    Raises:
        NotAvailableError: (on :meth:`prepare`) ``moderngl`` or EGL is missing.
    """

    name = "gl"

    def __init__(
        self,
        samples: int = 4,
        near: float = DEFAULT_NEAR,
        far: float = DEFAULT_FAR,
        max_framebuffer: int = 1024,
    ) -> None:
        if samples < 1:
            raise BadInputError("renderer", f"samples must be >= 1, got {samples}")
        self.samples = samples
        self.max_framebuffer = max_framebuffer
        self.near = near
        self.far = far
        self._program_cache: dict[int, tuple[Any, Any]] = {}
        self._resolve_cache: dict[int, Any] = {}

    def _programs(self, ctx: Any) -> tuple[Any, Any]:
        key = id(ctx)
        if key not in self._program_cache:
            mesh = ctx.program(
                vertex_shader=_MESH_VERTEX_SHADER, fragment_shader=_MESH_FRAGMENT_SHADER
            )
            bg = ctx.program(
                vertex_shader=_BACKGROUND_VERTEX_SHADER,
                fragment_shader=_BACKGROUND_FRAGMENT_SHADER,
            )
            self._program_cache[key] = (mesh, bg)
        return self._program_cache[key]

    def _resolve_program(self, ctx: Any) -> Any:
        key = id(ctx)
        if key not in self._resolve_cache:
            self._resolve_cache[key] = ctx.program(
                vertex_shader=_RESOLVE_VERTEX_SHADER, fragment_shader=_RESOLVE_FRAGMENT_SHADER
            )
        return self._resolve_cache[key]

    def prepare(self, mesh: TexturedMesh, background: np.ndarray | None = None) -> _GLScene:
        """Upload ``mesh`` and the optional background; raises NotAvailableError without EGL."""
        return _GLScene(self, mesh, background)


def gl_available() -> bool:
    """Whether :class:`GLRenderer` can create its EGL context here."""
    try:
        _gl_context()
    except NotAvailableError:
        return False
    return True


_WARNED = False


def create_renderer(name: RendererName = "auto", **kwargs: Any) -> MeshRenderer:
    """A renderer by name.

    Args:
        name: ``"gl"`` (:class:`GLRenderer`), ``"numpy"`` (:class:`NumpyRenderer`) or
            ``"auto"``: GL when a headless EGL context can be created, otherwise numpy (with
            one warning in the log).
        **kwargs: passed to the renderer (``samples`` is ignored by numpy).

    Returns:
        The renderer.

    Raises:
        BadInputError: an unknown name.
        NotAvailableError: ``"gl"`` asked for where it cannot run.
    """
    global _WARNED
    if name == "numpy":
        kwargs.pop("samples", None)
        return NumpyRenderer(**kwargs)
    if name == "gl":
        _gl_context()
        return GLRenderer(**kwargs)
    if name == "auto":
        if gl_available():
            return GLRenderer(**kwargs)
        if not _WARNED:
            _log.warning("OpenGL/EGL not available: using the slower numpy renderer")
            _WARNED = True
        kwargs.pop("samples", None)
        return NumpyRenderer(**kwargs)
    raise BadInputError("renderer", f"unknown renderer {name!r} (auto, gl, numpy)")
