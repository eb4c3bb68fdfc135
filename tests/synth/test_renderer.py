"""Tests of mvface.synth.renderer and its gl_renderer, numpy_renderer and render_types modules.

numpy and OpenGL (EGL) rasterizers, conventions, agreement.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from mvface.errors import BadInputError
from mvface.geometry import eg3d_label_to_camera
from mvface.synth.backends import RenderOutput
from mvface.synth.gl_renderer import GLRenderer, gl_available
from mvface.synth.numpy_renderer import NumpyRenderer
from mvface.synth.render_types import MeshRenderer, TexturedMesh, labels_to_cameras
from mvface.synth.renderer import create_renderer
from mvface.synth.rig import grid_rig, rig_labels

HAVE_GL = gl_available()
requires_gl = pytest.mark.skipif(not HAVE_GL, reason="no headless OpenGL (EGL) context here")
FRONT = rig_labels(grid_rig([0.0], [0.0]))  # camera at (0, 0, 2.7) looking at (0, 0, 0.2)
FOCAL = 4.2647


MakeRenderer = Callable[[], MeshRenderer]


def _renderers() -> list[Any]:
    return [
        pytest.param(lambda: NumpyRenderer(), id="numpy"),
        pytest.param(lambda: GLRenderer(samples=1), id="gl", marks=requires_gl),
    ]


def _checker(size: int = 64, cells: int = 8) -> np.ndarray:
    ij = np.indices((size, size)) // (size // cells)
    on = (ij.sum(0) % 2).astype(bool)
    tex = np.zeros((size, size, 3), np.uint8)
    tex[on] = (230, 200, 40)
    tex[~on] = (20, 60, 200)
    return tex


def _square(half: float = 0.1, z: float = 0.2) -> TexturedMesh:
    """A square in the plane ``z``, facing +z, uv (0,0) at its top-left as seen from +z."""
    v = np.array([[-half, half, z], [half, half, z], [half, -half, z], [-half, -half, z]])
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    faces = np.array([[0, 3, 2], [0, 2, 1]])  # counter-clockwise seen from +z
    return TexturedMesh(v, faces, uv, _checker())


def _sphere(radius: float = 0.2, n_lat: int = 24, n_lon: int = 48) -> TexturedMesh:
    """Closed UV sphere around the rig's look-at point, counter-clockwise seen from outside."""
    theta = np.linspace(0, math.pi, n_lat)
    phi = np.linspace(0, 2 * math.pi, n_lon)
    T, P = np.meshgrid(theta, phi, indexing="ij")
    v = np.stack([np.sin(T) * np.sin(P), np.cos(T), np.sin(T) * np.cos(P)], -1).reshape(-1, 3)
    uv = np.stack([P / (2 * math.pi), T / math.pi], -1).reshape(-1, 2)
    faces = []
    for i in range(n_lat - 1):
        for j in range(n_lon - 1):
            a, b = i * n_lon + j, i * n_lon + j + 1
            c, d = a + n_lon, b + n_lon
            faces += [[a, c, b], [b, c, d]]
    center = np.array([0.0, 0.0, 0.2])
    return TexturedMesh(radius * v + center, np.array(faces), uv, _checker(128, 16))


class TestLabelsToCameras:
    def test_matches_geometry(self) -> None:
        labels = rig_labels(grid_rig(np.radians([-40.0, 10.0]), np.radians([5.0])))
        K, R, t = labels_to_cameras(labels, 96)
        K_ref, R_ref, t_ref = eg3d_label_to_camera(labels, 96, 96)
        np.testing.assert_allclose(K, K_ref.numpy(), atol=1e-12)
        np.testing.assert_allclose(R, R_ref.numpy(), atol=1e-12)
        np.testing.assert_allclose(t, t_ref.numpy(), atol=1e-12)

    def test_rejects_bad_labels(self) -> None:
        with pytest.raises(BadInputError):
            labels_to_cameras(np.zeros((2, 16)), 64)
        with pytest.raises(BadInputError):
            labels_to_cameras(np.full((1, 25), np.nan), 64)


class TestTexturedMesh:
    def test_defaults(self) -> None:
        mesh = _square()
        assert mesh.uv2 is not None and mesh.blend is not None
        np.testing.assert_array_equal(mesh.uv2, mesh.uv)
        assert (mesh.blend == 0).all()

    @pytest.mark.parametrize(
        "change",
        [
            {"vertices": np.zeros((4, 2))},
            {"faces": np.array([[0, 1, 9]])},
            {"uv": np.zeros((3, 2))},
            {"texture": np.zeros((8, 8, 3), np.float32)},
            {"blend": np.zeros(3)},
        ],
    )
    def test_rejects_bad_arrays(self, change: dict[str, Any]) -> None:
        with pytest.raises(BadInputError):
            dataclasses.replace(_square(), **change)


@pytest.mark.parametrize("make", _renderers())
class TestConventions:
    def test_depth_is_camera_z(self, make: MakeRenderer) -> None:
        out = make().prepare(_square(z=0.2)).render(FRONT, 64)
        assert isinstance(out, RenderOutput)
        assert out.rgb.shape == (1, 64, 64, 3) and out.depth.dtype == np.float32
        np.testing.assert_allclose(out.depth[out.mask], 2.5, atol=1e-5)
        assert np.isinf(out.depth[~out.mask]).all()
        assert (out.rgb[0][~out.mask[0]] == 0).all()

    def test_pixel_convention(self, make: MakeRenderer) -> None:
        # the square spans continuous pixels [32 − h, 32 + h] with h = f·S·half/depth; pixel i
        # is sampled at its centre i + 0.5
        size, half, depth = 64, 0.1, 2.5
        edge = FOCAL * size * half / depth  # 10.9 px
        out = make().prepare(_square(half)).render(FRONT, size)
        cols = np.flatnonzero(out.mask[0].any(0))
        rows = np.flatnonzero(out.mask[0].any(1))
        expected = np.flatnonzero(np.abs(np.arange(size) + 0.5 - size / 2) < edge)
        np.testing.assert_array_equal(cols, expected)
        np.testing.assert_array_equal(rows, expected)

    def test_texture_orientation(self, make: MakeRenderer) -> None:
        # uv (0, 0) is the texture's top-left and appears at the image's top-left
        tex = np.zeros((64, 64, 3), np.uint8)
        tex[:32, :32] = (255, 0, 0)
        tex[:32, 32:] = (0, 255, 0)
        tex[32:, :32] = (0, 0, 255)
        tex[32:, 32:] = (255, 255, 255)
        mesh = dataclasses.replace(_square(0.15), texture=tex)
        out = make().prepare(mesh).render(FRONT, 64)
        rgb = out.rgb[0]
        np.testing.assert_array_equal(rgb[24, 24], (255, 0, 0))
        np.testing.assert_array_equal(rgb[24, 40], (0, 255, 0))
        np.testing.assert_array_equal(rgb[40, 24], (0, 0, 255))
        np.testing.assert_array_equal(rgb[40, 40], (255, 255, 255))

    def test_projective_texture_reproduces_image(self, make: MakeRenderer) -> None:
        # uv = the vertices' own pixels in the view: the render is the texture itself
        size = 64
        mesh = _sphere()
        K, R, t = labels_to_cameras(FRONT, size)
        cam = mesh.vertices @ R[0].T + t[0]
        uv = (cam @ K[0].T)[:, :2] / cam[:, 2:3] / size
        image = cv2.GaussianBlur(_checker(size, 4), (0, 0), 2.0)
        mesh = dataclasses.replace(mesh, uv=uv, texture=image)
        out = make().prepare(mesh).render(FRONT, size)
        diff = np.abs(out.rgb[0].astype(int) - image)[out.mask[0]]
        assert diff.mean() < 1.0, diff.mean()

    def test_background(self, make: MakeRenderer) -> None:
        background = np.full((128, 128, 3), 77, np.uint8)
        out = make().prepare(_square(), background).render(FRONT, 64)
        assert (out.rgb[0][~out.mask[0]] == 77).all()
        assert out.mask.any()

    def test_blend(self, make: MakeRenderer) -> None:
        tex = np.zeros((16, 32, 3), np.uint8)
        tex[:, 16:] = 200
        mesh = _square()
        assert mesh.uv is not None
        left = mesh.uv * np.array([0.5, 1.0])
        right = left + np.array([0.5, 0.0])
        for weight, expected in ((0.0, 0), (1.0, 200), (0.5, 100)):
            blended = dataclasses.replace(
                mesh, uv=left, uv2=right, texture=tex, blend=np.full(4, weight)
            )
            out = make().prepare(blended).render(FRONT, 32)
            values = out.rgb[0][out.mask[0]]
            assert np.abs(values.astype(int) - expected).max() <= 1, (weight, values.min())

    def test_third_mapping_and_filled(self, make: MakeRenderer) -> None:
        tex = np.zeros((16, 48, 3), np.uint8)
        tex[:, 16:32] = 120
        tex[:, 32:] = 240
        mesh = _square()
        assert mesh.uv is not None
        first = mesh.uv * np.array([1 / 3, 1.0])
        for w2, w3, expected in ((0.0, 0.0, 0), (0.0, 1.0, 240), (0.25, 0.5, 150), (0.5, 0.5, 180)):
            blended = dataclasses.replace(
                mesh,
                uv=first,
                uv2=first + np.array([1 / 3, 0.0]),
                uv3=first + np.array([2 / 3, 0.0]),
                texture=tex,
                blend=np.full(4, w2),
                blend3=np.full(4, w3),
                filled=np.full(4, w2 + w3),
            )
            out = make().prepare(blended).render(FRONT, 32)
            values = out.rgb[0][out.mask[0]]
            assert np.abs(values.astype(int) - expected).max() <= 1, (w2, w3, values.min())
            assert out.filled is not None
            filled = out.filled[0]
            assert np.abs(filled[out.mask[0]] - (w2 + w3)).max() < 0.01
            assert (filled[~out.mask[0]] == 0).all()

    def test_back_face_culling(self, make: MakeRenderer) -> None:
        mesh = _sphere()
        cameras = rig_labels(grid_rig(np.radians([0.0, 70.0, 180.0]), np.radians([-20.0, 40.0])))
        both = make().prepare(mesh).render(cameras, 48)
        culled = make().prepare(dataclasses.replace(mesh, cull_back_faces=True))
        out = culled.render(cameras, 48)
        np.testing.assert_array_equal(out.mask, both.mask)
        # identical but for a rare silhouette pixel where a back face's sample wins
        close = np.abs(out.depth[out.mask] - both.depth[both.mask]) < 1e-4
        assert close.mean() > 0.998
        # a square seen from behind disappears when culled
        square = dataclasses.replace(_square(), cull_back_faces=True)
        back = rig_labels(grid_rig([math.pi], [0.0]))
        assert make().prepare(square).render(FRONT, 32).mask.any()
        assert not make().prepare(square).render(back, 32).mask.any()

    def test_many_views_and_release(self, make: MakeRenderer) -> None:
        cameras = rig_labels(grid_rig(np.radians(np.linspace(-80, 80, 21)), [0.0]))
        scene = make().prepare(_sphere())
        out = scene.render(cameras, 40)
        assert len(out) == 21 and out.size == 40
        # the sphere around the look-at point is centred in every view
        for mask in out.mask:
            _, xs = np.nonzero(mask)
            assert abs(xs.mean() - 19.5) < 1.0
        single = scene.render(cameras[7:8], 40)
        np.testing.assert_array_equal(single.mask[0], out.mask[7])
        scene.release()


@requires_gl
class TestGLAgainstNumpy:
    def test_same_images(self) -> None:
        mesh = _sphere()
        cameras = rig_labels(grid_rig(np.radians([-60.0, 0.0, 35.0]), np.radians([-10.0, 25.0])))
        a = NumpyRenderer().prepare(mesh).render(cameras, 96)
        b = GLRenderer(samples=1).prepare(mesh).render(cameras, 96)
        assert (a.mask != b.mask).mean() < 1e-3
        both = a.mask & b.mask
        np.testing.assert_allclose(a.depth[both], b.depth[both], atol=1e-3)
        assert np.abs(a.rgb.astype(int) - b.rgb)[both].mean() < 2.0

    def test_multisampling(self) -> None:
        mesh = _sphere()
        one = GLRenderer(samples=1).prepare(mesh).render(FRONT, 64)
        four = GLRenderer(samples=4).prepare(mesh).render(FRONT, 64)
        assert (one.mask != four.mask).mean() < 0.02
        inner = cv2.erode(one.mask[0].astype(np.uint8), np.ones((3, 3))) > 0
        # the resolved depth is the nearest covered sample's: within a pixel's depth change
        np.testing.assert_allclose(four.depth[0][inner], one.depth[0][inner], atol=0.01)
        # edges get intermediate colours (antialiasing), the sphere's inside is unchanged
        assert np.abs(four.rgb[0].astype(int) - one.rgb[0])[inner].mean() < 8

    def test_large_views_get_their_own_framebuffer(self) -> None:
        renderer = GLRenderer(samples=1, max_framebuffer=64)
        out = renderer.prepare(_square()).render(torch.cat([FRONT, FRONT]), 96)
        assert out.mask.shape == (2, 96, 96)
        np.testing.assert_array_equal(out.mask[0], out.mask[1])


class TestCreateRenderer:
    def test_names(self) -> None:
        assert isinstance(create_renderer("numpy"), NumpyRenderer)
        assert create_renderer("auto").name in ("gl", "numpy")
        with pytest.raises(BadInputError):
            create_renderer("vulkan")  # type: ignore[arg-type]

    @requires_gl
    def test_gl(self) -> None:
        renderer = create_renderer("gl", samples=2)
        assert isinstance(renderer, GLRenderer) and renderer.samples == 2
        with pytest.raises(BadInputError):
            GLRenderer(samples=0)
