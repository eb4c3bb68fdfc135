"""Tests of mvface.synth.landmarks: lifting, projection, visibility, hidden views.

Against the paper's reference example when ``../shared`` is present: its 3D landmarks and the
reference cameras give its stored per-view 2-D landmarks.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from _shared import SHARED, requires_shared
from mvface.errors import BadInputError
from mvface.geometry import (
    eg3d_label_to_camera,
    project_points,
    projection_matrix,
    triangulate_dlt,
)
from mvface.models.mediapipe_mesh import DEFAULT_WEIGHTS_PATH
from mvface.synth.landmarks import (
    DEFAULT_VISIBILITY_TOLERANCE,
    deepen_jaw,
    depth_at_landmarks,
    head_scale,
    hidden_views,
    landmark_visibility,
    lift_landmarks,
    project_landmarks,
    sample_depth,
    transfer_landmarks,
)
from mvface.synth.rig import grid_rig, paper_rig, random_rig, rig_labels

SYNTHETIC = SHARED / "seed" / "reference_data" / "dataset_synthetic"
EXAMPLE_ID = "468ab0de-ed66-426d-8a59-4f537efbe8a0"
REF_3D = (
    SYNTHETIC
    / "example/lm2d_68_multiview/lm2d_68_multiview_3d"
    / (f"{EXAMPLE_ID}_lm2d_68_multiview_3d.npy")
)
REF_2D = (
    SYNTHETIC
    / "example/lm2d_68_multiview/lm2d_68_multiview_2d"
    / (f"{EXAMPLE_ID}_lm2d_68_multiview_2d.npy")
)
REF_RIG = SYNTHETIC / "cam2world_pose.npy"
have_reference = pytest.mark.skipif(
    not (REF_3D.is_file() and REF_2D.is_file() and REF_RIG.is_file()),
    reason=f"reference example absent under {SYNTHETIC}",
)


def _points(n: int = 68, seed: int = 0) -> torch.Tensor:
    """Face-sized points around the rig's look-at point (world units)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.06 + torch.tensor(
        [0.0, 0.0, 0.2], dtype=torch.float64
    )


class TestProjectLandmarks:
    def test_is_project_points_minus_half(self) -> None:
        X = _points()
        labels = rig_labels(paper_rig(16))
        pixels, depth = project_landmarks(X, labels, 256)
        K, R, t = eg3d_label_to_camera(labels, 256, 256)
        expected = project_points(X.unsqueeze(0), projection_matrix(K, R, t)) - 0.5
        torch.testing.assert_close(pixels, expected, rtol=0, atol=1e-12)
        assert pixels.shape == (16, 68, 2) and depth.shape == (16, 68)
        assert (depth > 2.0).all() and (depth < 3.3).all()

    def test_exact_with_float32_cameras(self) -> None:
        # what a writer stores: float32 cameras.npy reproduces landmarks.npy to < 0.01 px
        X = _points()
        labels = rig_labels(random_rig(64, seed=1))
        pixels, _ = project_landmarks(X, labels, 512)
        again, _ = project_landmarks(X.float().double(), labels.float(), 512)
        assert (again - pixels).abs().max() < 0.01

    def test_triangulation_recovers_points(self) -> None:
        X = _points()
        labels = rig_labels(paper_rig(64))
        pixels, _ = project_landmarks(X, labels, 256)
        K, R, t = eg3d_label_to_camera(labels, 256, 256)
        recovered = triangulate_dlt(projection_matrix(K, R, t), pixels + 0.5)
        torch.testing.assert_close(recovered, X, rtol=0, atol=1e-9)

    def test_rejects_bad_shapes(self) -> None:
        with pytest.raises(BadInputError):
            project_landmarks(np.zeros((68, 2)), rig_labels(paper_rig(4)), 64)
        with pytest.raises(BadInputError):
            project_landmarks(_points(), np.zeros((4, 16)), 64)


@have_reference
class TestPaperReference:
    def test_reference_landmarks_reproduce(self) -> None:
        lm3d = np.load(REF_3D).astype(np.float64)
        stored = np.load(REF_2D).astype(np.float64)  # continuous pixels of 512 x 512 views
        cameras = rig_labels(torch.from_numpy(np.load(REF_RIG)).double())
        pixels, _ = project_landmarks(lm3d, cameras, 512)
        error = np.linalg.norm(pixels.numpy() + 0.5 - stored, axis=-1)
        assert error.max() < 1.5  # the tolerance
        assert error.max() < 1e-3, error.max()  # measured 2e-4 px (R is the transpose)

    def test_our_rig_reproduces_them_too(self) -> None:
        lm3d = np.load(REF_3D).astype(np.float64)
        stored = np.load(REF_2D).astype(np.float64)
        pixels, _ = project_landmarks(lm3d, rig_labels(paper_rig()), 512)
        error = np.linalg.norm(pixels.numpy() + 0.5 - stored, axis=-1)
        assert error.max() < 1.5, error.max()

    def test_triangulating_the_stored_views(self) -> None:
        lm3d = torch.from_numpy(np.load(REF_3D).astype(np.float64))
        stored = torch.from_numpy(np.load(REF_2D).astype(np.float64))
        labels = rig_labels(torch.from_numpy(np.load(REF_RIG)).double())
        K, R, t = eg3d_label_to_camera(labels, 512, 512)
        recovered = triangulate_dlt(projection_matrix(K, R, t), stored)
        assert (recovered - lm3d).abs().max() < 1e-4


class TestSampleDepth:
    def test_bilinear_on_a_smooth_surface(self) -> None:
        ys, xs = np.mgrid[0:32, 0:32]
        depth = (2.0 + 0.01 * xs + 0.02 * ys).astype(np.float32)
        points = np.array([[3.25, 7.5], [10.0, 10.0], [30.9, 0.1]])
        expected = 2.0 + 0.01 * points[:, 0] + 0.02 * points[:, 1]
        np.testing.assert_allclose(sample_depth(depth, points), expected, atol=1e-5)

    def test_silhouette_takes_the_foreground(self) -> None:
        depth = np.full((16, 16), np.inf, np.float32)
        depth[:, :8] = 2.5  # foreground on the left
        depth[:, 8:12] = 2.9  # a farther surface behind the silhouette
        z = sample_depth(depth, np.array([[7.5, 4.0], [11.5, 4.0], [7.0, 4.0]]))
        np.testing.assert_allclose(z, [2.5, 2.9, 2.5], atol=1e-6)

    def test_off_surface_fallback(self) -> None:
        depth = np.full((16, 16), np.inf, np.float32)
        depth[5, 5] = 2.4
        z = sample_depth(depth, np.array([[7.0, 5.0], [15.0, 15.0]]), search_radius=3)
        assert z[0] == pytest.approx(2.4)
        assert np.isnan(z[1])


class TestLift:
    def test_round_trip(self) -> None:
        # a plane at depth 2.5 in a frontal camera: lift then project returns the landmarks
        label = rig_labels(grid_rig([0.0], [0.0]))[0]
        depth = np.full((128, 128), 2.5, np.float32)
        rng = np.random.default_rng(0)
        landmarks = rng.uniform(10, 117, (68, 2))
        X = lift_landmarks(landmarks, depth, label)
        torch.testing.assert_close(X[:, 2], torch.full((68,), 0.2, dtype=torch.float64))
        pixels, z = project_landmarks(X, label[None], 128)
        np.testing.assert_allclose(pixels[0].numpy(), landmarks, atol=1e-9)
        np.testing.assert_allclose(z.numpy(), 2.5, atol=1e-9)

    def test_off_head_landmarks_raise(self) -> None:
        label = rig_labels(grid_rig([0.0], [0.0]))[0]
        depth = np.full((64, 64), np.inf, np.float32)
        depth[20:40, 20:40] = 2.5
        landmarks = np.full((68, 2), 30.0)
        landmarks[3] = (60.0, 2.0)
        with pytest.raises(BadInputError, match=r"\[3\]"):
            lift_landmarks(landmarks, depth, label)
        landmarks[3] = (41.0, 30.0)  # one pixel off the surface: takes its depth
        assert float(lift_landmarks(landmarks, depth, label)[3, 2]) == pytest.approx(0.2)

    def test_rejects_bad_depth(self) -> None:
        with pytest.raises(BadInputError):
            lift_landmarks(np.zeros((68, 2)), np.zeros((8, 9)), paper_rig(1)[0].flatten())

    def test_off_head_landmarks_take_the_fallback(self) -> None:
        label = rig_labels(grid_rig([0.0], [0.0]))[0]
        depth = np.full((64, 64), np.inf, np.float32)
        depth[20:40, 20:40] = 2.5
        landmarks = np.full((68, 2), 30.0)
        landmarks[[3, 7]] = (60.0, 2.0)
        fallback = np.arange(68 * 3, dtype=np.float64).reshape(68, 3)
        z = depth_at_landmarks(landmarks, depth)
        assert np.flatnonzero(np.isnan(z)).tolist() == [3, 7]
        X = lift_landmarks(landmarks, depth, label, fallback=fallback)
        torch.testing.assert_close(X[[3, 7]], torch.from_numpy(fallback[[3, 7]]))
        # the others are lifted as without a fallback
        torch.testing.assert_close(X[:3], lift_landmarks(landmarks[:3], depth, label))


class TestVisibility:
    def test_depth_test(self) -> None:
        depth = np.full((1, 32, 32), np.inf, np.float32)
        depth[0, :, :16] = 2.0  # an occluder over the left half
        pixels = np.array([[[4.0, 4.0], [4.0, 10.0], [28.0, 4.0], [40.0, 4.0], [4.0, 20.0]]])
        point_depth = np.array([[2.5, 2.005, 2.5, 2.5, -1.0]])
        visible = landmark_visibility(pixels, point_depth, depth, tolerance=0.01)
        # behind the occluder; on it; nothing in front; outside the image; behind the camera
        np.testing.assert_array_equal(visible[0], [False, True, True, False, False])

    def test_contour_window(self) -> None:
        depth = np.full((1, 32, 32), np.inf, np.float32)
        depth[0, :, :16] = 2.0
        depth[0, :, 12:16] = 2.3  # the surface turns away towards the outline at column 15.5
        # on the outline at the surface's depth; off the head (nothing near hides it); on the
        # outline but far behind the surface there (the far side of a turned head); one pixel
        # inside at the surface's depth; inside and behind
        pixels = np.array([[[15.0, 8.0], [18.0, 8.0], [15.0, 9.0], [13.0, 8.0], [13.0, 9.0]]])
        point_depth = np.array([[2.305, 2.4, 2.4, 2.3, 2.4]])
        visible = landmark_visibility(pixels, point_depth, depth, tolerance=0.01)
        np.testing.assert_array_equal(visible[0], [True, True, False, True, False])

    def test_background_beside_a_hidden_point_does_not_reveal_it(self) -> None:
        # a point behind the head whose 3x3 window reaches a background pixel next to a thin
        # occluder was marked visible before: the background is not a surface
        depth = np.full((1, 16, 16), 2.0, np.float32)
        depth[0, 7, 9] = np.inf
        visible = landmark_visibility(np.array([[[8.0, 8.0]]]), np.array([[2.5]]), depth, 0.02)
        assert not visible[0, 0]

    def test_hidden_views(self) -> None:
        visibility = np.zeros((3, 68), bool)
        visibility[0] = True
        visibility[1, :40] = True
        visibility[2, :20] = True
        np.testing.assert_array_equal(hidden_views(visibility), [False, False, True])
        np.testing.assert_array_equal(hidden_views(visibility, 0.7), [False, True, True])

    def test_head_scale(self) -> None:
        X = np.array([[1.0, 0, 0], [-1.0, 0, 0]])
        assert head_scale(X) == pytest.approx(1.0)


class TestTransferLandmarks:
    def test_without_depth(self) -> None:
        X = _points()
        out = transfer_landmarks(X, rig_labels(paper_rig(8)), 128)
        assert out.points.shape == (8, 68, 2) and out.visible.all() and not out.hidden.any()
        np.testing.assert_array_equal(out.landmarks3d, X.numpy())

    def test_rejects_mismatched_depth(self) -> None:
        with pytest.raises(BadInputError):
            transfer_landmarks(_points(), rig_labels(paper_rig(8)), 64, np.zeros((8, 32, 32)))

    @pytest.mark.skipif(not DEFAULT_WEIGHTS_PATH.is_file(), reason="face mesh weights absent")
    def test_on_a_head(self) -> None:
        from test_mesh_head import cartoon_face

        from mvface.synth.mesh_head import MeshHeadBackend

        image, landmarks = cartoon_face(128)
        head = MeshHeadBackend(renderer="numpy").build(image, landmarks)
        source = head.render(head.source_camera[None], 128)
        lm3d = lift_landmarks(landmarks, source.depth[0], head.source_camera)
        yaws = np.radians([0.0, 30.0, 75.0, -75.0, 180.0])
        cameras = rig_labels(grid_rig(yaws, [0.0]))
        views = head.render(cameras, 96)
        out = transfer_landmarks(lm3d, cameras, 96, views.depth)
        tolerance = DEFAULT_VISIBILITY_TOLERANCE * head_scale(lm3d.numpy())
        assert 0.01 < tolerance < 0.04
        # frontal: every landmark visible; the inner face stays visible at 30°
        assert out.visible[0].all()
        assert out.visible[1, 17:].all()
        # at ±75° the far half of the jaw line is hidden, the near half is not
        # (positive yaw: the camera is at the subject's left, iBUG points 9–16)
        assert not out.visible[2, 1:5].any() and out.visible[2, 12:16].all()
        assert not out.visible[3, 12:16].any() and out.visible[3, 1:5].all()
        # from behind, the face is hidden
        assert out.visible[4].mean() < 0.1
        np.testing.assert_array_equal(out.hidden, [False, False, False, False, True])
        # visible landmarks project onto the rendered head (contour ones onto its outline)
        for v in range(4):
            px = np.rint(out.points[v][out.visible[v]]).astype(int)
            grown = cv2.dilate(views.mask[v].astype(np.uint8), np.ones((3, 3), np.uint8))
            assert grown[px[:, 1], px[:, 0]].all()
        # the source view gives back the crop's landmarks
        back, _ = project_landmarks(lm3d, head.source_camera[None], 128)
        np.testing.assert_allclose(back[0].numpy(), landmarks, atol=1e-6)
        assert math.isfinite(float(out.depth.max()))


def _flat_face() -> torch.Tensor:
    """68 points on the plane z = 0 (eyes at y = 0, mouth at y = 1), nose tip at z = +0.5."""
    p = torch.zeros(68, 3, dtype=torch.float64)
    p[:17, 0] = torch.linspace(-1.2, 1.2, 17)
    p[:17, 1] = 0.6
    p[36:42, 0], p[42:48, 0] = -0.5, 0.5
    p[48:68, 1] = 1.0
    p[30] = torch.tensor([0.0, 0.6, 0.5], dtype=torch.float64)
    return p


class TestDeepenJaw:
    def test_closed_form(self) -> None:
        p = _flat_face()
        out = deepen_jaw(p, 0.2, taper=3)
        # eye-to-mouth distance 1, the nose in front (+z): the jaw goes to -z
        expected_z = -0.2 * torch.clamp((torch.arange(17.0) - 8).abs() / 3, max=1).double()
        assert torch.allclose(out[:17, 2], expected_z)
        assert torch.equal(out[:17, :2], p[:17, :2]) and torch.equal(out[17:], p[17:])
        assert torch.equal(p, _flat_face())  # input untouched

    def test_follows_pose_and_scale(self) -> None:
        p = _flat_face()
        R = torch.from_numpy(cv2.Rodrigues(np.array([0.3, -1.1, 0.4]))[0])
        moved = 2.5 * p @ R.T + torch.tensor([0.1, -3.0, 7.0], dtype=torch.float64)
        expected = 2.5 * deepen_jaw(p, 0.15) @ R.T + torch.tensor([0.1, -3.0, 7.0]).double()
        assert torch.allclose(deepen_jaw(moved, 0.15), expected, atol=1e-12)

    def test_nose_decides_the_side(self) -> None:
        p = _flat_face()
        p[30, 2] = -0.5  # nose towards -z: the head lies towards +z
        assert (deepen_jaw(p, 0.2)[[0, 16], 2] > 0.19).all()

    def test_zero_depth_is_identity(self) -> None:
        assert torch.equal(deepen_jaw(_flat_face(), 0.0), _flat_face())

    def test_bad_input(self) -> None:
        with pytest.raises(BadInputError, match="68 points"):
            deepen_jaw(torch.zeros(5, 3), 0.2)
        with pytest.raises(BadInputError, match="span a plane"):
            deepen_jaw(torch.ones(68, 3), 0.2)


@requires_shared("data/samples/breakingbad.pts")
@pytest.mark.skipif(not DEFAULT_WEIGHTS_PATH.is_file(), reason="face mesh weights absent")
@pytest.mark.parametrize("backend_name", ["mesh", "head"])
def test_far_side_jaw_hidden_on_turned_views(backend_name: str) -> None:
    """Views at |yaw| >= 60 degrees mark at most 3 of the far-side jaw points (0-7 for a camera
    at the subject's left, positive yaw; 9-16 otherwise) visible, on heads built from real
    photos (a frontal one and a turned one whose unseen side the far views show), for the egg
    (``mesh``) and the whole head (``head``)."""
    from mvface.data.image import load_image
    from mvface.data.readers import read_dataset
    from mvface.synth.backends import create_backend
    from mvface.synth.identity import align_crop, source_landmarks3d
    from mvface.synth.rig import camera_yaw_pitch

    backend = create_backend(backend_name)
    yaws = np.radians([-90.0, -75.0, -60.0, 60.0, 75.0, 90.0])
    cameras = rig_labels(grid_rig(yaws, np.radians([-15.0, 0.0, 15.0])))
    c2w = torch.as_tensor(cameras[:, :16]).reshape(-1, 4, 4).double()
    yaw = camera_yaw_pitch(c2w)[:, 0].numpy()
    samples = read_dataset("pts", SHARED / "data" / "samples").samples
    for sample in [s for s in samples if s.name in ("breakingbad", "einstein")]:
        crop, crop_lm, _ = align_crop(load_image(sample.image), sample.landmarks, 256)
        head = backend.build(crop, crop_lm)
        source = head.render(head.source_camera[None], 256)
        lm3d, _ = source_landmarks3d(head, crop_lm, source.depth[0], head.source_camera)
        views = head.render(cameras, 256)
        head.release()
        out = transfer_landmarks(lm3d, cameras, 256, views.depth)
        far = np.where(yaw[:, None] > 0, out.visible[:, 0:8], out.visible[:, 9:17]).sum(1)
        near = np.where(yaw[:, None] > 0, out.visible[:, 9:17], out.visible[:, 0:8]).sum(1)
        assert far.max() <= 3, (sample.name, far.tolist())
        assert near.min() >= 6, (sample.name, near.tolist())  # the near side stays visible
