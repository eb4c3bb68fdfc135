"""Tests of mvface.synth.whole_head: the whole-head backend (cranium, jaw, neck, ears).

Runs without shared data on the drawn cartoon face of ``test_mesh_head`` (MediaPipe's face mesh
finds it); the far-side jaw check runs on real photos when ``../shared`` is present.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from mvface.models.mediapipe_mesh import DEFAULT_WEIGHTS_PATH
from mvface.synth.backends import Head, create_backend, list_backends
from mvface.synth.face_mesh import triangulate_face
from mvface.synth.head_paint import hair_pixels, paint_head_chart
from mvface.synth.head_proxy import fit_head_proxy
from mvface.synth.mesh_head import MeshHead, MeshHeadBackend
from mvface.synth.rig import grid_rig, rig_labels
from mvface.synth.whole_head import (
    PART_EAR,
    Blob,
    WholeHeadBackend,
    WholeHeadShape,
    fit_whole_head,
    ray_exit,
    whole_head_shell,
)

pytestmark = pytest.mark.skipif(
    not DEFAULT_WEIGHTS_PATH.is_file(), reason=f"{DEFAULT_WEIGHTS_PATH} absent"
)

#: Cameras farther than the rig's (2.7) so that a whole profile fits the view.
FAR = 4.5


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    from test_mesh_head import cartoon_face

    return cartoon_face()


@pytest.fixture(scope="module")
def backend() -> WholeHeadBackend:
    return WholeHeadBackend(renderer="numpy")


@pytest.fixture(scope="module")
def head(backend: WholeHeadBackend, face: tuple[np.ndarray, np.ndarray]) -> MeshHead:
    return backend.build(*face)


@pytest.fixture(scope="module")
def local_face(head: MeshHead) -> np.ndarray:
    A, origin = head.face_frame
    return np.asarray((head.face_vertices - origin) @ A)


@pytest.fixture(scope="module")
def shape(local_face: np.ndarray) -> WholeHeadShape:
    return fit_whole_head(local_face)


def _masks(head: MeshHead, yaws_deg: list[float], size: int = 128) -> np.ndarray:
    cameras = rig_labels(grid_rig(np.radians(yaws_deg), [0.0], radius=FAR))
    return head.render(cameras, size).mask


class TestRayExit:
    def test_sphere_from_inside_closed_form(self) -> None:
        rng = np.random.default_rng(0)
        dirs = rng.normal(size=(50, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        origin = np.array([0.1, -0.2, 0.05])
        got = ray_exit(
            lambda p: np.linalg.norm(p, axis=-1) / 0.5, np.tile(origin, (50, 1)), dirs, 2
        )
        # |o + r d| = 0.5  =>  r = −o·d + sqrt((o·d)² − |o|² + 0.25)
        od = dirs @ origin
        expected = -od + np.sqrt(od**2 - origin @ origin + 0.25)
        np.testing.assert_allclose(got, expected, atol=1e-4)

    def test_takes_the_outermost_crossing(self) -> None:
        def two_balls(p: np.ndarray) -> np.ndarray:
            a = np.linalg.norm(p, axis=-1) / 0.2
            b = np.linalg.norm(p - [0.6, 0.0, 0.0], axis=-1) / 0.1
            return np.minimum(a, b)

        got = ray_exit(two_balls, np.zeros((1, 3)), np.array([[1.0, 0.0, 0.0]]), 1.0, steps=100)
        assert got[0] == pytest.approx(0.7, abs=1e-3)


class TestShape:
    def test_blob_surface(self) -> None:
        blob = Blob(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3]), exponent=2.5)
        on = np.array([[1.1, 2.0, 3.0], [1.0, 2.2, 3.0], [1.0, 2.0, 2.7]])
        np.testing.assert_allclose(blob.level(on), 1.0)

    def test_proportions(self, shape: WholeHeadShape, local_face: np.ndarray) -> None:
        from mvface.synth.whole_head import MP_BROWS, MP_NOSE_BASE

        assert shape.level(shape.center[None])[0] < 1.0
        # the neck is narrower than the skull and reaches well below the chin
        assert shape.neck.half_width < 0.75 * shape.cranium.axes[0]
        bottom = shape.neck.top[1] - shape.neck.length * math.cos(shape.neck.lean)
        assert bottom < shape.chin_y - 0.3
        # the ears between the brows and the nose base
        brow_y = local_face[list(MP_BROWS), 1].mean()
        assert local_face[MP_NOSE_BASE, 1] < shape.ear.root[1] < brow_y

    def test_radius_round_trip(self, shape: WholeHeadShape) -> None:
        rng = np.random.default_rng(1)
        q = rng.normal(size=(40, 3))
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        q *= rng.uniform(0.5, 1.2, size=(40, 1))
        p = shape.denormalize(q)
        np.testing.assert_allclose(shape.normalize(p), q, atol=1e-5)
        on = shape.denormalize(q / np.linalg.norm(q, axis=1, keepdims=True))
        np.testing.assert_allclose(shape.level(on), 1.0, atol=1e-3)


class TestShell:
    def test_closed_and_outward(self, shape: WholeHeadShape, local_face: np.ndarray) -> None:
        shell = whole_head_shell(shape, local_face, triangulate_face(local_face[:, :2]))
        faces = shell.faces
        edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert (counts == 2).all()  # every edge between two triangles: no holes
        # each component (head, right ear, left ear) encloses a positive volume
        assert shell.part is not None
        ear = shell.part == PART_EAR
        head_faces = faces[~ear[faces].any(1)]
        ear_faces = faces[ear[faces].all(1)]
        for part in (
            head_faces,
            ear_faces[: len(ear_faces) // 2],
            ear_faces[len(ear_faces) // 2 :],
        ):
            tri = shell.vertices[part]
            volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
            assert volume > 0

    def test_mirror_partners(self, shape: WholeHeadShape, local_face: np.ndarray) -> None:
        shell = whole_head_shell(shape, local_face, triangulate_face(local_face[:, :2]))
        assert (shell.partners[shell.partners] == np.arange(len(shell.partners))).all()
        ear = np.flatnonzero(shell.part == PART_EAR)
        mirrored = shell.vertices[shell.partners[ear]] * [-1, 1, 1]
        mirrored[:, 0] += 2 * shape.ear.mirror_x
        np.testing.assert_allclose(mirrored, shell.vertices[ear], atol=1e-9)

    def test_face_region_on_the_face(self, head: MeshHead, local_face: np.ndarray) -> None:
        """The head surface lies just behind the face mesh, everywhere on it (no step)."""
        from scipy.spatial import cKDTree

        A, origin = head.face_frame
        shell = (head.mesh.vertices[len(local_face) :] - origin) @ A
        dist, _ = cKDTree(shell).query(local_face)
        assert dist.max() < 0.03
        assert np.median(dist) < 0.02  # the recess behind the face

    def test_ears_stand_out_at_the_sides(
        self, shape: WholeHeadShape, local_face: np.ndarray
    ) -> None:
        shell = whole_head_shell(shape, local_face, triangulate_face(local_face[:, :2]))
        ear = shell.vertices[shell.part == PART_EAR]
        right, left = ear[: len(ear) // 2], ear[len(ear) // 2 :]
        half_width = shape.cranium.axes[0]
        assert right[:, 0].min() < shape.ear.mirror_x - 0.9 * half_width
        assert left[:, 0].max() > shape.ear.mirror_x + 0.9 * half_width
        assert np.ptp(right[:, 1]) == pytest.approx(shape.ear.height, rel=0.1)


class TestBackend:
    def test_registered(self, head: MeshHead) -> None:
        assert "head" in list_backends()
        assert isinstance(create_backend("head", renderer="numpy"), WholeHeadBackend)
        assert isinstance(head, Head)
        assert head.backend == "head"

    def test_source_view_reproduces_the_face(
        self, head: MeshHead, face: tuple[np.ndarray, np.ndarray]
    ) -> None:
        image, landmarks = face
        out = head.render(head.source_camera[None], image.shape[0])
        inner = np.zeros(image.shape[:2], np.uint8)
        cv2.fillConvexPoly(inner, cv2.convexHull(landmarks[[36, 45, 48, 54]].astype(np.int32)), 1)
        diff = np.abs(out.rgb[0].astype(int) - image.astype(int))[inner.astype(bool)]
        assert diff.mean() < 12

    @pytest.mark.parametrize("yaw", [-90.0, 90.0])
    def test_profile_is_a_head_on_a_neck(self, head: MeshHead, yaw: float) -> None:
        mask = _masks(head, [yaw])[0]
        # no background shows through: the silhouette has no holes (beyond a single-pixel
        # rasterization crack, which the egg has too at some angles)
        filled = mask.astype(np.uint8).copy()
        cv2.floodFill(filled, None, (0, 0), 2)
        assert (filled == 0).sum() <= 2
        rows = np.flatnonzero(mask.any(1))
        width = mask.sum(1)
        assert rows[-1] == mask.shape[0] - 1  # the neck runs out of the view
        skull = width[: mask.shape[0] // 2].max()
        top = rows[0]
        neck_rows = slice(int(0.85 * mask.shape[0]), mask.shape[0])
        assert width[neck_rows].max() < 0.8 * skull  # a neck, narrower than the skull
        # above the neck, the head is about as tall (crown to chin) as it is long
        widest = int(np.argmax(width[: mask.shape[0] // 2]))
        chin_row = widest + np.flatnonzero(width[widest:] < 0.8 * skull)[0]
        assert 0.8 < (chin_row - top) / skull < 1.6

    def test_egg_has_no_neck(self, face: tuple[np.ndarray, np.ndarray]) -> None:
        """The same check fails for the egg of the ``mesh`` backend (it has no neck)."""
        egg = MeshHeadBackend(renderer="numpy").build(*face)
        mask = _masks(egg, [90.0])[0]
        assert np.flatnonzero(mask.any(1))[-1] < mask.shape[0] - 1

    def test_ears_widen_the_back_view(
        self, backend: WholeHeadBackend, face: tuple[np.ndarray, np.ndarray], head: MeshHead
    ) -> None:
        earless = WholeHeadBackend(renderer="numpy", ears=False).build(*face)
        with_ears, without = _masks(head, [180.0])[0], _masks(earless, [180.0])[0]
        extra = with_ears.sum(1) - without.sum(1)
        assert (with_ears >= without).all()
        assert extra.max() >= 6  # both ears stick out at least 3 px at 128 px
        rows = np.flatnonzero(extra > 0)
        assert np.ptp(rows) < 0.35 * with_ears.shape[0]  # ears, not a wider head

    def test_back_of_the_head_is_painted(
        self, backend: WholeHeadBackend, face: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """Seen from behind: hair above (the photo's dark hair), the darker skin of the neck
        below; nowhere the backdrop."""
        image, landmarks = face
        hairy = image.copy()
        mass = np.zeros(image.shape[:2], np.uint8)
        centre = (int(landmarks[:, 0].mean()), int(landmarks[17:27, 1].mean()))
        cv2.ellipse(mass, (centre, (170, 150), 0.0), 1, -1)
        skin_like = np.linalg.norm(image.astype(float) - [200, 160, 130], axis=-1) < 60
        top = np.arange(image.shape[0])[:, None] < landmarks[17:27, 1].min()
        hairy[(mass > 0) & (~skin_like | top)] = (60, 40, 30)
        head = backend.build(hairy, landmarks)
        out = head.render(rig_labels(grid_rig([math.pi], [0.0], radius=FAR)), 128)
        mask, rgb = out.mask[0], out.rgb[0].astype(float)
        rows = np.flatnonzero(mask.any(1))
        crown = rgb[rows[0] + 3 : rows[0] + 12][mask[rows[0] + 3 : rows[0] + 12]]
        neck = rgb[-10:][mask[-10:]]
        hair, skin = np.array([60, 40, 30]), np.array([200, 160, 130])
        assert np.linalg.norm(np.median(crown, 0) - hair) < 45
        assert np.linalg.norm(np.median(neck, 0) - 0.82 * skin) < 60
        assert out.filled is not None and out.filled[0][mask].mean() > 0.9


class TestPaint:
    def test_chart_regions(self) -> None:
        skin = np.array([200.0, 150.0, 120.0])
        hair = np.full((64, 64, 3), [40, 30, 20], np.float32)
        chart = paint_head_chart(skin, hair, (1.0, 2.0), (2.3, 2.3), 64).astype(float)
        v = lambda polar: int(polar / math.pi * 0.92 * 64)  # noqa: E731  (row of a polar angle)
        assert np.linalg.norm(chart[v(0.5), 0] - [40, 30, 20]) < 15  # hair on the crown
        assert np.linalg.norm(chart[v(1.5), 0] / chart[v(1.5), 0].sum() - skin / skin.sum()) < 0.02
        assert chart[v(2.6), 0].sum() < chart[v(1.5), 0].sum()  # the neck darker
        np.testing.assert_allclose(chart[-1, 5], skin, atol=1)  # the ears' swatch
        bald = paint_head_chart(skin, None, (1.0, 2.0), (2.3, 2.3), 64).astype(float)
        assert np.linalg.norm(bald[v(0.5), 0] / bald[v(0.5), 0].sum() - skin / skin.sum()) < 0.02

    @pytest.mark.parametrize(
        "band, expected", [((50, 30, 20), True), ((200, 150, 120), False), ((90, 90, 90), False)]
    )
    def testhair_pixels(self, band: tuple[int, int, int], expected: bool) -> None:
        """Hair is found where the head's top differs from both skin and backdrop."""
        image = np.full((128, 128, 3), 90, np.uint8)  # grey backdrop
        covered = np.zeros((128, 128), bool)
        covered[20:120, 30:98] = True
        image[covered] = (200, 150, 120)  # skin
        image[20:45, 30:98] = band
        hair = hair_pixels(image, covered, 55.0, np.array([200.0, 150.0, 120.0]))
        assert hair.any() == expected
        if expected:
            assert hair[20:40, 35:93].mean() > 0.9


def test_proxy_is_unchanged_by_the_refactor(local_face: np.ndarray) -> None:
    """``fit_whole_head`` keeps the egg's crown: the cranium's top is the proxy's."""
    proxy = fit_head_proxy(local_face)
    shape = fit_whole_head(local_face, proxy)
    crown = shape.cranium.center[1] + shape.cranium.axes[1]
    assert crown == pytest.approx(proxy.center[1] + proxy.b, abs=1e-9)
