"""Tests of mvface.geometry.cameras (and the package surface and the input checks)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import mvface.geometry as geometry
from _shared import SHARED
from mvface.errors import BadInputError
from mvface.geometry import (
    EG3D_CENTER,
    EG3D_FOCAL,
    cam2world_to_extrinsics,
    camera_centers,
    camera_to_eg3d_label,
    camera_yaw_pitch,
    check_finite,
    check_shape,
    eg3d_intrinsics,
    eg3d_label_to_camera,
    extrinsics_to_cam2world,
    intrinsics_matrix,
    look_at,
    normalized_to_pixel_intrinsics,
    pixel_to_normalized_intrinsics,
    project_points,
    projection_matrix,
    rotation_angle,
    value_checks_disabled,
)

RIG_DIR = SHARED / "seed" / "reference_data" / "dataset_synthetic"
RIG_TARGET = (0.0, 0.0, 0.2)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


def _tol(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float32 else 1e-12


def _random_c2w(batch: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Cameras on a sphere of radius 2.7 around the rig target, looking at it."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.randn(*batch, 3, generator=g, dtype=torch.float64)
    direction[..., 2] = direction[..., 2].abs() + 0.5  # in front of the face, away from +-y
    direction = direction / direction.norm(dim=-1, keepdim=True)
    target = torch.tensor(RIG_TARGET, dtype=torch.float64)
    return look_at(target + 2.7 * direction, target.expand(*batch, 3)).to(dtype)


def _reference_rig() -> torch.Tensor:
    path = RIG_DIR / "cam2world_pose.npy"
    if not path.exists():
        pytest.skip(f"reference rig absent: {path}")
    return torch.from_numpy(np.load(path)).double()


class TestPublicApi:
    def test_all_is_the_surface(self) -> None:
        expected = {
            "EG3D_CENTER", "EG3D_FOCAL", "EG3D_LABEL_SIZE", "Triangulation", "apply_similarity",
            "cam2world_to_extrinsics", "camera_centers", "camera_to_eg3d_label", "camera_yaw_pitch",
            "check_finite", "check_shape", "eg3d_intrinsics", "eg3d_label_to_camera",
            "euler_to_rotation",
            "extrinsics_to_cam2world", "intrinsics_matrix", "look_at",
            "normalized_to_pixel_intrinsics", "pixel_to_normalized_intrinsics", "project_points",
            "project_points_with_depth", "projection_matrix", "reproject", "rotation_angle",
            "rotation_to_euler", "transform_points", "triangulate_dlt", "triangulate_dlt_checked",
            "umeyama", "unproject_points", "value_checks_disabled",
        }  # fmt: skip
        assert set(geometry.__all__) == expected
        assert all(hasattr(geometry, name) for name in geometry.__all__)

    def test_constants(self) -> None:
        assert EG3D_FOCAL == 4.2647
        assert EG3D_CENTER == 0.5


class TestChecks:
    def test_check_finite_message_is_one_line(self) -> None:
        x = torch.ones(4, 4)
        x[1, 2] = math.nan
        with pytest.raises(BadInputError, match=r"^camera: 1 of 16 values are NaN or infinite$"):
            check_finite(x, "camera")

    def test_check_shape(self) -> None:
        check_shape(torch.zeros(2, 5, 3, 4), ["*", "3", "4"], "camera")
        check_shape(torch.zeros(3, 4), ["*", "3", "4"], "camera")
        with pytest.raises(BadInputError, match=r"expected shape \(\*, 3, 4\), got \(3, 3\)"):
            check_shape(torch.zeros(3, 3), ["*", "3", "4"], "camera")
        with pytest.raises(BadInputError, match="expected shape"):
            check_shape(torch.zeros(2, 3, 4), ["3", "4"], "camera")
        with pytest.raises(BadInputError, match=r"torch\.Tensor"):
            check_shape(np.zeros((3, 4)), ["3", "4"], "camera")  # type: ignore[arg-type]

    def test_value_checks_can_be_disabled(self) -> None:
        c2w = torch.eye(4)
        c2w[0, 3] = math.nan
        with pytest.raises(BadInputError):
            cam2world_to_extrinsics(c2w)
        with value_checks_disabled():
            _, t = cam2world_to_extrinsics(c2w)
        assert torch.isnan(t).any()
        with pytest.raises(BadInputError):  # re-enabled after the block
            cam2world_to_extrinsics(c2w)


class TestIntrinsicsMatrix:
    def test_smoke(self) -> None:
        K = intrinsics_matrix(500.0, 400.0, 256.0, 128.0)
        expected = torch.tensor([[500.0, 0.0, 256.0], [0.0, 400.0, 128.0], [0.0, 0.0, 1.0]])
        assert K.dtype == torch.get_default_dtype()
        torch.testing.assert_close(K, expected)

    def test_batch_broadcasts(self, dtype: torch.dtype) -> None:
        fx = torch.tensor([100.0, 200.0], dtype=dtype)
        K = intrinsics_matrix(fx[:, None], 300.0, torch.zeros(1, 3, dtype=dtype), 5)
        assert K.shape == (2, 3, 3, 3)
        assert K.dtype == dtype
        torch.testing.assert_close(K[1, 2], intrinsics_matrix(200.0, 300.0, 0.0, 5.0).to(dtype))

    def test_gradcheck(self) -> None:
        fx = torch.rand(2, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda f: intrinsics_matrix(f, 2 * f, f + 1, 3.0), (fx,))


class TestEg3dIntrinsics:
    def test_smoke(self) -> None:
        K = eg3d_intrinsics(512, 512, dtype=torch.float64)
        expected = [[4.2647 * 512, 0, 256], [0, 4.2647 * 512, 256], [0, 0, 1]]
        torch.testing.assert_close(K, torch.tensor(expected, dtype=torch.float64))

    def test_formula_holds_exactly(self) -> None:
        """pixel = (x/z * 4.2647 + 0.5) * resolution, the EG3D convention, non-square too."""
        X = torch.tensor([[0.1, -0.2, 2.5], [-0.3, 0.05, 3.0]], dtype=torch.float64)
        P = torch.cat([eg3d_intrinsics(640, 480, dtype=torch.float64), torch.zeros(3, 1)], 1)
        pixels = project_points(X, P)
        expected_u = (X[:, 0] / X[:, 2] * 4.2647 + 0.5) * 640
        expected_v = (X[:, 1] / X[:, 2] * 4.2647 + 0.5) * 480
        torch.testing.assert_close(pixels, torch.stack([expected_u, expected_v], -1))


class TestNormalizedToPixelIntrinsics:
    def test_smoke_scales_rows(self) -> None:
        Kn = torch.tensor([[2.0, 0.1, 0.5], [0.0, 3.0, 0.25], [0.0, 0.0, 1.0]])
        K = normalized_to_pixel_intrinsics(Kn, 100, 50)
        expected = torch.tensor([[200.0, 10.0, 50.0], [0.0, 150.0, 12.5], [0.0, 0.0, 1.0]])
        torch.testing.assert_close(K, expected)

    def test_batch_sizes(self, dtype: torch.dtype) -> None:
        Kn = eg3d_intrinsics(1, 1, dtype=dtype).expand(3, 3, 3)
        sizes = torch.tensor([64.0, 256.0, 512.0], dtype=dtype)
        K = normalized_to_pixel_intrinsics(Kn, sizes, sizes)
        for i, size in enumerate(sizes.tolist()):
            torch.testing.assert_close(K[i], eg3d_intrinsics(size, size, dtype=dtype))

    def test_round_trip(self, dtype: torch.dtype) -> None:
        Kn = intrinsics_matrix(torch.rand(5, dtype=dtype) + 1, 2.0, 0.5, 0.4)
        K = normalized_to_pixel_intrinsics(Kn, 640, 480)
        torch.testing.assert_close(pixel_to_normalized_intrinsics(K, 640, 480), Kn)

    def test_singular_raises(self) -> None:
        Kn = eg3d_intrinsics(1, 1)
        Kn[1, 1] = 0.0
        with pytest.raises(BadInputError, match="camera: singular intrinsics"):
            normalized_to_pixel_intrinsics(Kn, 512, 512)

    def test_nan_and_bad_size_raise(self) -> None:
        Kn = eg3d_intrinsics(1, 1)
        with pytest.raises(BadInputError, match="width and height"):
            normalized_to_pixel_intrinsics(Kn, 0, 512)
        Kn[0, 2] = math.nan
        with pytest.raises(BadInputError, match="NaN"):
            normalized_to_pixel_intrinsics(Kn, 512, 512)

    def test_gradcheck(self) -> None:
        Kn = intrinsics_matrix(4.0, 4.0, 0.5, 0.5).double().requires_grad_()
        assert torch.autograd.gradcheck(lambda k: normalized_to_pixel_intrinsics(k, 3, 2), (Kn,))


class TestPixelToNormalizedIntrinsics:
    def test_smoke(self) -> None:
        Kn = pixel_to_normalized_intrinsics(
            eg3d_intrinsics(512, 256, dtype=torch.float64), 512, 256
        )
        torch.testing.assert_close(Kn, eg3d_intrinsics(1, 1, dtype=torch.float64))


class TestCam2worldToExtrinsics:
    def test_smoke_identity(self) -> None:
        R, t = cam2world_to_extrinsics(torch.eye(4))
        torch.testing.assert_close(R, torch.eye(3))
        torch.testing.assert_close(t, torch.zeros(3))

    def test_camera_position_maps_to_origin(self, dtype: torch.dtype) -> None:
        c2w = _random_c2w((4,), dtype)
        R, t = cam2world_to_extrinsics(c2w)
        x_cam = (R @ c2w[:, :3, 3:4]).squeeze(-1) + t
        torch.testing.assert_close(x_cam, torch.zeros_like(x_cam), atol=_tol(dtype) * 10, rtol=0)
        # the target lies on the optical axis, 2.5 in front
        target = torch.tensor(RIG_TARGET, dtype=dtype)
        z = (R @ target).squeeze(-1) + t
        torch.testing.assert_close(z, torch.tensor([0.0, 0.0, 2.7], dtype=dtype).expand(4, 3))

    def test_batch_equals_loop(self, dtype: torch.dtype) -> None:
        c2w = _random_c2w((2, 3), dtype)
        R, t = cam2world_to_extrinsics(c2w)
        for i in range(2):
            for j in range(3):
                Ri, ti = cam2world_to_extrinsics(c2w[i, j])
                torch.testing.assert_close(R[i, j], Ri)
                torch.testing.assert_close(t[i, j], ti)

    def test_round_trip(self, dtype: torch.dtype) -> None:
        c2w = _random_c2w((6,), dtype)
        torch.testing.assert_close(extrinsics_to_cam2world(*cam2world_to_extrinsics(c2w)), c2w)

    def test_nan_camera_raises(self) -> None:
        c2w = _random_c2w((3,), torch.float32)
        c2w[1, 0, 0] = math.nan
        with pytest.raises(BadInputError, match=r"^camera: .*NaN"):
            cam2world_to_extrinsics(c2w)

    def test_degenerate_rotation_raises(self) -> None:
        mirrored = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
        with pytest.raises(BadInputError, match="not a proper rotation"):
            cam2world_to_extrinsics(mirrored)
        with pytest.raises(BadInputError, match="not a proper rotation"):
            cam2world_to_extrinsics(torch.zeros(4, 4))

    def test_wrong_shape_raises(self) -> None:
        with pytest.raises(BadInputError, match=r"expected shape \(\*, 4, 4\)"):
            cam2world_to_extrinsics(torch.eye(3))

    def test_gradcheck(self) -> None:
        c2w = _random_c2w((2,), torch.float64).requires_grad_()
        assert torch.autograd.gradcheck(cam2world_to_extrinsics, (c2w,))


class TestExtrinsicsToCam2world:
    def test_smoke_is_rigid_inverse(self, dtype: torch.dtype) -> None:
        R, t = cam2world_to_extrinsics(_random_c2w((5,), dtype))
        world2cam = torch.eye(4, dtype=dtype).repeat(5, 1, 1)
        world2cam[:, :3, :3], world2cam[:, :3, 3] = R, t
        c2w = extrinsics_to_cam2world(R, t)
        torch.testing.assert_close(c2w, torch.linalg.inv(world2cam), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c2w[:, 3], torch.tensor([0, 0, 0, 1], dtype=dtype).expand(5, 4))

    def test_round_trip_reduced_precision(self) -> None:
        """Rotations stored at reduced precision (not orthonormal) still round-trip exactly."""
        c2w = _random_c2w((8,), torch.float64)
        c2w[:, :3, :3] = c2w[:, :3, :3].half().double() + 3e-4  # |R^T R - I| ~ 1e-3
        R, t = cam2world_to_extrinsics(c2w)
        torch.testing.assert_close(extrinsics_to_cam2world(R, t), c2w, atol=1e-14, rtol=0)

    def test_batch_broadcasts_r_and_t(self) -> None:
        R = torch.eye(3)
        t = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
        c2w = extrinsics_to_cam2world(R, t)
        assert c2w.shape == (2, 4, 4)
        torch.testing.assert_close(c2w[:, 2, 3], torch.tensor([-1.0, -2.0]))


class TestProjectionMatrix:
    def test_smoke(self) -> None:
        K = eg3d_intrinsics(512, 512, dtype=torch.float64)
        R, t = cam2world_to_extrinsics(_random_c2w((), torch.float64))
        P = projection_matrix(K, R, t)
        torch.testing.assert_close(P, K @ torch.cat([R, t[:, None]], 1))

    def test_batch_broadcast(self, dtype: torch.dtype) -> None:
        K = eg3d_intrinsics(512, 512, dtype=dtype)
        R, t = cam2world_to_extrinsics(_random_c2w((2, 4), dtype))
        P = projection_matrix(K, R, t)
        assert P.shape == (2, 4, 3, 4)
        torch.testing.assert_close(P[1, 3], projection_matrix(K, R[1, 3], t[1, 3]))

    def test_singular_k_raises(self) -> None:
        K = torch.zeros(3, 3)
        with pytest.raises(BadInputError, match=r"^camera: singular intrinsics"):
            projection_matrix(K, torch.eye(3), torch.zeros(3))

    def test_nan_translation_raises(self) -> None:
        with pytest.raises(BadInputError, match=r"^camera: "):
            projection_matrix(eg3d_intrinsics(1, 1), torch.eye(3), torch.tensor([0, math.nan, 1]))

    def test_gradcheck(self) -> None:
        K = eg3d_intrinsics(8, 8, dtype=torch.float64).requires_grad_()
        R, t = cam2world_to_extrinsics(_random_c2w((), torch.float64))
        assert torch.autograd.gradcheck(projection_matrix, (K, R.requires_grad_(), t))


class TestCameraCenters:
    def test_smoke(self, dtype: torch.dtype) -> None:
        c2w = _random_c2w((3,), dtype)
        R, t = cam2world_to_extrinsics(c2w)
        torch.testing.assert_close(camera_centers(R, t), c2w[:, :3, 3])

    def test_batch_broadcast(self) -> None:
        centers = camera_centers(torch.eye(3), torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]))
        torch.testing.assert_close(centers, torch.tensor([[-1.0, -2.0, -3.0], [0.0, 0.0, -1.0]]))


class TestCameraYawPitch:
    def test_smoke_axes(self, dtype: torch.dtype) -> None:
        """+z is frontal, +x is yaw +90°, above the head is pitch +90° (the rig's convention)."""
        eyes = torch.tensor([[0, 0, 2.7], [2.7, 0, 0], [-2.7, 0, 0], [0, 2.7, 0.1]], dtype=dtype)
        up = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)
        c2w = look_at(eyes, torch.zeros(3, dtype=dtype), torch.stack([up, up, up, up.roll(1)]))
        yaw, pitch = camera_yaw_pitch(c2w).rad2deg().unbind(-1)
        torch.testing.assert_close(yaw[:3], torch.tensor([0.0, 90.0, -90.0], dtype=dtype))
        torch.testing.assert_close(pitch[:3], torch.zeros(3, dtype=dtype))
        assert float(pitch[3]) == pytest.approx(90.0, abs=3.0)

    def test_round_trip_of_spherical_positions(self) -> None:
        yaw = torch.linspace(-1.2, 1.2, 7, dtype=torch.float64)
        pitch = torch.linspace(-0.5, 0.6, 7, dtype=torch.float64)
        eyes = 2.7 * torch.stack(
            [pitch.cos() * yaw.sin(), pitch.sin(), pitch.cos() * yaw.cos()], dim=-1
        )
        angles = camera_yaw_pitch(look_at(eyes, torch.zeros(3, dtype=torch.float64)))
        torch.testing.assert_close(angles, torch.stack([yaw, pitch], dim=-1))

    def test_batch_equals_loop(self) -> None:
        c2w = _random_c2w((2, 3), torch.float64)
        angles = camera_yaw_pitch(c2w)
        assert angles.shape == (2, 3, 2)
        for i in range(2):
            torch.testing.assert_close(angles[i], camera_yaw_pitch(c2w[i]))


def _label(c2w: torch.Tensor) -> torch.Tensor:
    Kn = eg3d_intrinsics(1, 1, dtype=c2w.dtype).expand(*c2w.shape[:-2], 3, 3)
    return torch.cat([c2w.flatten(-2), Kn.flatten(-2)], -1)


class TestEg3dLabelToCamera:
    def test_smoke(self, dtype: torch.dtype) -> None:
        c2w = _random_c2w((), dtype)
        K, R, t = eg3d_label_to_camera(_label(c2w), 512, 512)
        torch.testing.assert_close(K, eg3d_intrinsics(512, 512, dtype=dtype))
        torch.testing.assert_close((R, t), cam2world_to_extrinsics(c2w))

    def test_batch(self, dtype: torch.dtype) -> None:
        labels = _label(_random_c2w((2, 5), dtype))
        K, R, t = eg3d_label_to_camera(labels, 512, 512)
        assert (K.shape, R.shape, t.shape) == ((2, 5, 3, 3), (2, 5, 3, 3), (2, 5, 3))
        K1, R1, t1 = eg3d_label_to_camera(labels[1, 4], 512, 512)
        torch.testing.assert_close((K[1, 4], R[1, 4], t[1, 4]), (K1, R1, t1))

    def test_round_trip(self, dtype: torch.dtype) -> None:
        labels = _label(_random_c2w((7,), dtype))
        K, R, t = eg3d_label_to_camera(labels, 512, 384)
        torch.testing.assert_close(camera_to_eg3d_label(K, R, t, 512, 384), labels)

    @pytest.mark.shared_data
    def test_reference_label(self) -> None:
        """The 25-value label of the example's dataset.json reproduces its camera."""
        path = RIG_DIR / "example" / "realign1500" / "cropped_images" / "dataset.json"
        if not path.exists():
            pytest.skip(f"reference example absent: {path}")
        label = torch.tensor(json.loads(path.read_text())["labels"][0][1], dtype=torch.float64)
        K, R, t = eg3d_label_to_camera(label, 512, 512)
        torch.testing.assert_close(K, eg3d_intrinsics(512, 512, dtype=torch.float64))
        torch.testing.assert_close(camera_centers(R, t), label[[3, 7, 11]])
        torch.testing.assert_close(camera_to_eg3d_label(K, R, t, 512, 512), label)

    def test_bad_labels_raise(self) -> None:
        with pytest.raises(BadInputError, match=r"expected shape \(\*, 25\)"):
            eg3d_label_to_camera(torch.zeros(16), 512, 512)
        label = _label(_random_c2w((), torch.float32))
        label[20] = math.nan
        with pytest.raises(BadInputError, match=r"^camera: 1 of 25 values are NaN"):
            eg3d_label_to_camera(label, 512, 512)

    def test_gradcheck(self) -> None:
        label = _label(_random_c2w((2,), torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(lambda x: eg3d_label_to_camera(x, 4, 3), (label,))


class TestCameraToEg3dLabel:
    def test_round_trip(self, dtype: torch.dtype) -> None:
        R, t = cam2world_to_extrinsics(_random_c2w((3,), dtype))
        K = intrinsics_matrix(torch.rand(3, dtype=dtype) * 1000 + 500, 900.0, 320.0, 240.0)
        K2, R2, t2 = eg3d_label_to_camera(camera_to_eg3d_label(K, R, t, 640, 480), 640, 480)
        atol = 1e-3 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close((K2, R2, t2), (K, R, t), atol=atol, rtol=1e-5)

    def test_batch_broadcast(self) -> None:
        R, t = cam2world_to_extrinsics(_random_c2w((4,), torch.float64))
        label = camera_to_eg3d_label(eg3d_intrinsics(8, 8, dtype=torch.float64), R, t, 8, 8)
        assert label.shape == (4, 25)


class TestLookAt:
    def test_smoke_frontal(self) -> None:
        c2w = look_at(torch.tensor([0.0, 0.0, 2.7]), torch.tensor(RIG_TARGET))
        expected = torch.tensor(
            [[1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, -1.0, 2.7], [0, 0, 0, 1.0]]
        )
        torch.testing.assert_close(c2w, expected)

    def test_proper_rotations(self, dtype: torch.dtype) -> None:
        R = _random_c2w((50,), dtype)[:, :3, :3]
        eye = torch.eye(3, dtype=dtype).expand(50, 3, 3)
        torch.testing.assert_close(R.transpose(1, 2) @ R, eye, atol=_tol(dtype) * 10, rtol=0)
        torch.testing.assert_close(torch.linalg.det(R), torch.ones(50, dtype=dtype))

    def test_face_is_upright(self, dtype: torch.dtype) -> None:
        """World +y (up) is up in the image, world +x is image right for a camera in front."""
        c2w = _random_c2w((20,), dtype)
        P = projection_matrix(eg3d_intrinsics(512, 512, dtype=dtype), *cam2world_to_extrinsics(c2w))
        target = torch.tensor(RIG_TARGET, dtype=dtype)
        points = target + torch.tensor([[0, 0, 0], [0, 0.1, 0], [0.1, 0, 0]], dtype=dtype)
        pixels = project_points(points, P)  # (20, 3, 2)
        torch.testing.assert_close(pixels[:, 0], torch.full((20, 2), 256.0, dtype=dtype))
        assert (pixels[:, 1, 1] < pixels[:, 0, 1]).all()  # above the target -> smaller row
        assert (pixels[:, 2, 0] > pixels[:, 0, 0]).all()  # +x -> to the right

    def test_batch_equals_loop(self) -> None:
        eyes = torch.randn(3, 4, 3, dtype=torch.float64) + torch.tensor([0, 0, 3.0]).double()
        target = torch.zeros(3, dtype=torch.float64)
        c2w = look_at(eyes, target)
        for i in range(3):
            for j in range(4):
                torch.testing.assert_close(c2w[i, j], look_at(eyes[i, j], target))

    def test_degenerate_raises(self) -> None:
        with pytest.raises(BadInputError, match="coincide"):
            look_at(torch.ones(3), torch.ones(3))
        with pytest.raises(BadInputError, match="parallel to up"):
            look_at(torch.tensor([0.0, 2.0, 0.0]), torch.zeros(3))
        with pytest.raises(BadInputError, match="NaN"):
            look_at(torch.tensor([0.0, math.nan, 2.0]), torch.zeros(3))

    def test_gradcheck(self) -> None:
        eye = torch.tensor([[0.3, 0.2, 2.5], [-1.0, 0.4, 2.0]], dtype=torch.float64)
        target = torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(look_at, (eye.requires_grad_(), target))

    @pytest.mark.shared_data
    def test_reproduces_reference_rig(self) -> None:
        """up = (0, 1, 0) reproduces the 512 reference rotations (0.03° max); (0, -1, 0): 180°."""
        c2w = _reference_rig()
        target = torch.tensor(RIG_TARGET, dtype=torch.float64).expand(512, 3)
        stored = c2w[:, :3, :3]
        ours = look_at(c2w[:, :3, 3], target)
        angles = torch.rad2deg(rotation_angle(ours[:, :3, :3], stored))
        assert angles.max() < 0.1, angles.max()
        torch.testing.assert_close(ours[:, :3, 3], c2w[:, :3, 3])
        flipped = look_at(c2w[:, :3, 3], target, torch.tensor([0, -1.0, 0], dtype=torch.float64))
        assert torch.rad2deg(rotation_angle(flipped[:, :3, :3], stored)).min() > 170

    @pytest.mark.shared_data
    def test_reference_rig_facts(self) -> None:
        """Radius 2.7, target on every optical axis, view 390 near-frontal (README facts)."""
        c2w = _reference_rig()
        R, t = cam2world_to_extrinsics(c2w)
        centers = camera_centers(R, t)
        torch.testing.assert_close(
            centers.norm(dim=-1), torch.full((512,), 2.7, dtype=torch.float64), atol=2e-3, rtol=0
        )
        target_cam = (R @ torch.tensor(RIG_TARGET, dtype=torch.float64)) + t
        assert target_cam[:, :2].abs().max() < 2e-3  # on the optical axis
        assert (target_cam[:, 2] > 2.4).all()
        azimuth = math.degrees(math.atan2(centers[390, 0].item(), centers[390, 2].item()))
        assert abs(azimuth) < 0.5
