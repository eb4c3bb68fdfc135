"""Tests of mvface.geometry.rotations, including the AFLW2000-3D Pose_Para convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _shared import SHARED
from mvface.errors import BadInputError
from mvface.geometry import euler_to_rotation, rotation_angle, rotation_to_euler, umeyama

AFLW_DIR = SHARED / "data" / "aflw2000_3d_dev" / "images"
BFM_68 = SHARED / "models" / "3ddfa_v2" / "bfm_68kp.npz"


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


def _angles(n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Random [pitch, yaw, roll] inside the canonical range (|yaw| < 85°)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1
    return (u * torch.tensor([math.pi * 0.99, math.radians(85), math.pi * 0.99])).to(dtype)


def _zhu_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Zhu et al.'s MATLAB RotationMatrix(phi, gamma, theta), written out as published."""
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    cr, sr = math.cos(roll), math.sin(roll)
    R_x = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    R_y = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    R_z = np.array([[cr, sr, 0], [-sr, cr, 0], [0, 0, 1]])
    return R_x @ R_y @ R_z


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


class TestEulerToRotation:
    def test_smoke_matches_zhu_matlab(self) -> None:
        angles = _angles(20, torch.float64)
        R = euler_to_rotation(angles)
        expected = np.stack([_zhu_rotation(*a) for a in angles.tolist()])
        torch.testing.assert_close(R, torch.from_numpy(expected))

    def test_matches_scipy_transposed_xyz(self) -> None:
        transform = pytest.importorskip("scipy.spatial.transform")
        angles = _angles(20, torch.float64)
        expected = transform.Rotation.from_euler("xyz", angles.numpy()).as_matrix()
        torch.testing.assert_close(euler_to_rotation(angles), torch.from_numpy(expected).mT)

    def test_proper_rotation(self, dtype: torch.dtype) -> None:
        R = euler_to_rotation(_angles(50, dtype))
        eye = torch.eye(3, dtype=dtype).expand(50, 3, 3)
        torch.testing.assert_close(R.mT @ R, eye)
        torch.testing.assert_close(torch.linalg.det(R), torch.ones(50, dtype=dtype))

    def test_signs_in_the_image(self) -> None:
        """Model: x right, y up, z toward the camera; image frame before the y flip is y up."""
        nose = torch.tensor([0.0, 0.0, 1.0])
        right = torch.tensor([1.0, 0.0, 0.0])
        assert (euler_to_rotation(torch.tensor([0.3, 0.0, 0.0])) @ nose)[1] > 0  # pitch up
        assert (euler_to_rotation(torch.tensor([0.0, 0.3, 0.0])) @ nose)[0] < 0  # yaw: to left
        # roll > 0: the image-right side goes down (y-up frame), i.e. clockwise as seen
        assert (euler_to_rotation(torch.tensor([0.0, 0.0, 0.3])) @ right)[1] < 0

    def test_batch(self, dtype: torch.dtype) -> None:
        angles = _angles(6, dtype).reshape(2, 3, 3)
        R = euler_to_rotation(angles)
        assert R.shape == (2, 3, 3, 3)
        torch.testing.assert_close(R[1, 2], euler_to_rotation(angles[1, 2]))

    def test_nan_raises(self) -> None:
        with pytest.raises(BadInputError, match=r"^angles: "):
            euler_to_rotation(torch.tensor([0.0, math.nan, 0.0]))

    def test_gradcheck(self) -> None:
        angles = _angles(4, torch.float64).requires_grad_()
        assert torch.autograd.gradcheck(euler_to_rotation, (angles,))


class TestRotationToEuler:
    def test_round_trip(self, dtype: torch.dtype) -> None:
        angles = _angles(200, dtype)
        atol = 1e-4 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(
            rotation_to_euler(euler_to_rotation(angles)), angles, atol=atol, rtol=0
        )

    def test_equivalent_angles_give_same_rotation(self) -> None:
        """(p, y, r) and (p + π, π − y, r + π) are one rotation; the canonical |yaw| <= π/2."""
        angles = torch.tensor([[2.72, -1.37, -2.74]], dtype=torch.float64)
        other = angles + torch.tensor([[math.pi, 0, math.pi]], dtype=torch.float64)
        other[:, 1] = math.pi - angles[:, 1]
        R = euler_to_rotation(other)
        torch.testing.assert_close(R, euler_to_rotation(angles))
        torch.testing.assert_close(_wrap(rotation_to_euler(R)), angles)

    @pytest.mark.parametrize("yaw", [math.pi / 2, -math.pi / 2])
    def test_gimbal_lock_finite(self, dtype: torch.dtype, yaw: float) -> None:
        angles = torch.tensor([[0.4, yaw, -0.3], [0.0, yaw, 0.0], [1.0, yaw, 1.0]], dtype=dtype)
        R = euler_to_rotation(angles).requires_grad_()
        recovered = rotation_to_euler(R)
        assert torch.isfinite(recovered).all()
        torch.testing.assert_close(euler_to_rotation(recovered), R.detach(), atol=1e-5, rtol=0)
        torch.testing.assert_close(recovered[:, 1], torch.full((3,), yaw, dtype=dtype))
        (grad,) = torch.autograd.grad(recovered.sum(), R)
        assert torch.isfinite(grad).all()

    def test_identity(self) -> None:
        torch.testing.assert_close(rotation_to_euler(torch.eye(3)), torch.zeros(3))

    def test_batch(self, dtype: torch.dtype) -> None:
        R = euler_to_rotation(_angles(12, dtype)).reshape(3, 4, 3, 3)
        out = rotation_to_euler(R)
        assert out.shape == (3, 4, 3)
        torch.testing.assert_close(out[2, 1], rotation_to_euler(R[2, 1]))

    def test_gradcheck(self) -> None:
        R = euler_to_rotation(_angles(3, torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(rotation_to_euler, (R,))

    @pytest.mark.shared_data
    def test_aflw2000_pose_para(self) -> None:
        """Aligning the BFM mean shape to pt3d_68 recovers Pose_Para[:3] (first 50 images).

        pt3d_68 = s·R·v + t with the y axis flipped to image rows; undoing the flip (y -> -y,
        the row offset H + 1 only moves t) and Umeyama-aligning the 68-point BFM mean shape gives
        R. Measured on these 50 images: median geodesic error 1.30°, per-angle medians 1.45°
        (pitch), 0.30° (yaw), 0.60° (roll); the transposed convention gives 53°. The residual is
        the subject's own shape and expression, which the mean shape lacks; pitch suffers most
        (the mean shape's depth profile differs most). Tolerances: 2.5° on the medians.
        """
        scipy_io = pytest.importorskip("scipy.io")
        files = sorted(AFLW_DIR.glob("*.mat"))[:50]
        if len(files) < 50 or not BFM_68.exists():
            pytest.skip(f"AFLW2000-3D dev images or BFM 68-point model absent under {SHARED}")
        mean_shape = torch.from_numpy(np.load(BFM_68)["u_base"].reshape(68, 3)).double()
        targets, poses = [], []
        for path in files:
            mat = scipy_io.loadmat(path)
            pt3d = torch.from_numpy(mat["pt3d_68"].T.astype(np.float64)).clone()  # (68, 3)
            pt3d[:, 1] = -pt3d[:, 1]  # image rows -> y up
            targets.append(pt3d)
            poses.append(torch.from_numpy(mat["Pose_Para"][0, :3].astype(np.float64)))
        pose = torch.stack(poses)
        _, R, _ = umeyama(mean_shape, torch.stack(targets))
        error_deg = torch.rad2deg(_wrap(rotation_to_euler(R) - pose)).abs()  # (50, 3)
        geodesic_deg = torch.rad2deg(rotation_angle(R, euler_to_rotation(pose)))
        transposed_deg = torch.rad2deg(rotation_angle(R, euler_to_rotation(pose).mT))
        assert (error_deg.median(0).values < 2.5).all(), error_deg.median(0).values
        assert geodesic_deg.median() < 2.5, geodesic_deg.median()
        assert transposed_deg.median() > 20, transposed_deg.median()
        assert (geodesic_deg < 10).all(), geodesic_deg.max()


class TestRotationAngle:
    def test_smoke(self, dtype: torch.dtype) -> None:
        R = euler_to_rotation(torch.tensor([[0.0, 0.0, 0.7], [0.0, 3.0, 0.0]], dtype=dtype))
        angle = rotation_angle(torch.eye(3, dtype=dtype), R)
        torch.testing.assert_close(angle, torch.tensor([0.7, 3.0], dtype=dtype))

    def test_small_angles_accurate(self) -> None:
        R = euler_to_rotation(torch.tensor([1e-9, 0.0, 0.0], dtype=torch.float64))
        angle = rotation_angle(torch.eye(3, dtype=torch.float64), R)
        torch.testing.assert_close(
            angle, torch.tensor(1e-9, dtype=torch.float64), rtol=1e-6, atol=0
        )

    def test_symmetric_and_batched(self, dtype: torch.dtype) -> None:
        R1 = euler_to_rotation(_angles(8, dtype, seed=1)).reshape(2, 4, 3, 3)
        R2 = euler_to_rotation(_angles(8, dtype, seed=2)).reshape(2, 4, 3, 3)
        torch.testing.assert_close(rotation_angle(R1, R2), rotation_angle(R2, R1))
        assert rotation_angle(R1, R2).shape == (2, 4)

    def test_gradcheck(self) -> None:
        R1 = euler_to_rotation(_angles(2, torch.float64, seed=1)).requires_grad_()
        R2 = euler_to_rotation(_angles(2, torch.float64, seed=2))
        assert torch.autograd.gradcheck(rotation_angle, (R1, R2))
