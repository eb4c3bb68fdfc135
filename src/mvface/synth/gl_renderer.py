"""The OpenGL 3.3 renderer: ``moderngl`` on a headless EGL context, optional multisampling.

Mesa's llvmpipe on a CPU machine, a GPU driver where there is one; no X server. The default of
:func:`mvface.synth.renderer.create_renderer`; conventions are those of
:mod:`mvface.synth.renderer`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import torch

from mvface.errors import BadInputError, NotAvailableError
from mvface.synth.head import RenderOutput
from mvface.synth.render_types import (
    DEFAULT_FAR,
    DEFAULT_NEAR,
    TexturedMesh,
    clip_matrices,
    labels_to_cameras,
    resize_background,
)

__all__ = [
    "GLRenderer",
    "gl_available",
]


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
    v_uv = in_corner * 0.5 + 0.5;  // y_ndc = -1 is image row 0 (see clip_matrices)
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


def gl_context() -> Any:
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
    """:class:`~mvface.synth.render_types.PreparedScene` of :class:`GLRenderer`."""

    def __init__(
        self,
        renderer: GLRenderer,
        mesh: TexturedMesh,
        background: np.ndarray | None,
    ) -> None:
        self.renderer = renderer
        self.ctx = gl_context()
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
            resize_background(background, 1)  # validate
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
            resized = resize_background(self._background, size)
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
        clip = clip_matrices(K, R, t, size, self.renderer.near, self.renderer.far)
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
            # image rows run down the framebuffer (see clip_matrices), which mirrors the
            # winding: outward counter-clockwise triangles arrive clockwise
            ctx.front_face = "cw"
            ctx.cull_face = "back"
            for slot, view in enumerate(batch):
                # tile (row, col); framebuffer row 0 is image row 0 (see clip_matrices)
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
            match :class:`~mvface.synth.numpy_renderer.NumpyRenderer` exactly up to float
            precision).
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
        gl_context()
    except NotAvailableError:
        return False
    return True
