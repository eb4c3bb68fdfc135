"""Rasterize textured triangle meshes into RGB, depth and mask images from pinhole cameras.

Two interchangeable renderers, chosen by :func:`create_renderer` (this module: the choice and
the conventions; the renderers live in :mod:`mvface.synth.gl_renderer` and
:mod:`mvface.synth.numpy_renderer`, what they take and give in :mod:`mvface.synth.render_types`):

* :class:`~mvface.synth.gl_renderer.GLRenderer` — OpenGL 3.3 through ``moderngl`` on a
  headless EGL context (Mesa's llvmpipe on a CPU machine, a GPU driver where there is one). No X
  server is needed. Optional multisampling (4x by default) antialiases silhouettes; the default.
* :class:`~mvface.synth.numpy_renderer.NumpyRenderer` — a vectorized z-buffer rasterizer in
  numpy/OpenCV: no system libraries at all, slower, no antialiasing. The fallback when EGL or
  ``moderngl`` is missing.

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
from typing import Any, Literal

from mvface.errors import BadInputError
from mvface.synth.gl_renderer import GLRenderer, gl_available, gl_context
from mvface.synth.numpy_renderer import NumpyRenderer
from mvface.synth.render_types import MeshRenderer

__all__ = ["RendererName", "create_renderer"]

_log = logging.getLogger(__name__)

RendererName = Literal["auto", "gl", "numpy"]

_WARNED = False


def create_renderer(name: RendererName = "auto", **kwargs: Any) -> MeshRenderer:
    """A renderer by name.

    Args:
        name: ``"gl"`` (:class:`~mvface.synth.gl_renderer.GLRenderer`), ``"numpy"``
            (:class:`~mvface.synth.numpy_renderer.NumpyRenderer`) or ``"auto"``: GL when a
            headless EGL context can be created, otherwise numpy (with one warning in the log).
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
        gl_context()
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
