"""A vectorized z-buffer rasterizer in numpy/OpenCV: no system libraries, no antialiasing.

The fallback of :func:`mvface.synth.renderer.create_renderer` where EGL or ``moderngl`` is missing;
conventions are those of :mod:`mvface.synth.renderer`.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from mvface.synth.head import RenderOutput
from mvface.synth.render_types import (
    DEFAULT_FAR,
    DEFAULT_NEAR,
    TexturedMesh,
    labels_to_cameras,
    resize_background,
)

__all__ = [
    "NumpyRenderer",
]


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
    """:class:`~mvface.synth.render_types.PreparedScene` of :class:`NumpyRenderer`."""

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
        """Nothing to free (kept for the
        :class:`~mvface.synth.render_types.PreparedScene` protocol)."""

    def render(self, labels: torch.Tensor | np.ndarray, size: int) -> RenderOutput:
        """Render ``(V, 25)`` EG3D cameras at ``size`` x ``size`` (see the module docstring)."""
        K, R, t = labels_to_cameras(labels, size)
        V = len(K)
        rgb = np.zeros((V, size, size, 3), np.uint8)
        depth = np.full((V, size, size), np.inf, np.float32)
        mask = np.zeros((V, size, size), bool)
        filled = np.zeros((V, size, size), np.float32)
        background = resize_background(self.background, size)
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
            resize_background(background, 1)  # validate
        return _NumpyScene(mesh, background, self.near, self.far)
