"""Tests of mvface.geometry.triangulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _shared import SHARED
from mvface.errors import BadInputError
from mvface.geometry import (
    Triangulation,
    cam2world_to_extrinsics,
    eg3d_intrinsics,
    look_at,
    project_points,
    projection_matrix,
    reproject,
    triangulate_dlt,
    triangulate_dlt_checked,
)
from mvface.geometry.triangulation import _solve_linear

RIG_DIR = SHARED / "seed" / "reference_data" / "dataset_synthetic"


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


def _rig(batch: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """(*batch, 3, 4) EG3D-like cameras (512 px, radius 2.7) looking at the origin, in front."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.randn(*batch, 3, generator=g, dtype=torch.float64)
    direction[..., 2] = direction[..., 2].abs() + 0.7
    direction = direction / direction.norm(dim=-1, keepdim=True)
    c2w = look_at(2.7 * direction, torch.zeros(*batch, 3, dtype=torch.float64))
    K = eg3d_intrinsics(512, 512, dtype=torch.float64)
    return projection_matrix(K, *cam2world_to_extrinsics(c2w)).to(dtype)


def _points(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.15 * torch.randn(*shape, 3, generator=g, dtype=torch.float64)).to(dtype)


def _camera_at(eye: tuple[float, ...], target: tuple[float, ...]) -> torch.Tensor:
    c2w = look_at(torch.tensor(eye, dtype=torch.float64), torch.tensor(target).double())
    K = eg3d_intrinsics(512, 512, dtype=torch.float64)
    return projection_matrix(K, *cam2world_to_extrinsics(c2w))


class TestTriangulateDlt:
    def test_smoke(self) -> None:
        P = _rig((1, 2), torch.float64)
        X = torch.tensor([[[0.1, -0.05, 0.2]]], dtype=torch.float64)
        out = triangulate_dlt(P, reproject(X, P))
        assert out.shape == (1, 1, 3)
        torch.testing.assert_close(out, X)

    @pytest.mark.parametrize("num_views", [2, 3, 8, 64, 512])
    def test_round_trip_noiseless(self, dtype: torch.dtype, num_views: int) -> None:
        P = _rig((2, num_views), dtype)
        X = _points((2, 68), dtype)
        out = triangulate_dlt(P, reproject(X, P))
        atol = 2e-5 if dtype == torch.float32 else 1e-11
        torch.testing.assert_close(out, X, atol=atol, rtol=0)

    def test_round_trip_svd(self, dtype: torch.dtype) -> None:
        P = _rig((2, 5), dtype)
        X = _points((2, 10), dtype)
        out = triangulate_dlt(P, reproject(X, P), method="svd")
        atol = 2e-5 if dtype == torch.float32 else 1e-11
        torch.testing.assert_close(out, X, atol=atol, rtol=0)

    def test_single_point_and_world_offset(self) -> None:
        """N = 1 (Hartley fallback unit) and points far from the origin."""
        P = _rig((4,), torch.float64)
        X = torch.tensor([[0.3, 0.2, -0.1]], dtype=torch.float64)
        torch.testing.assert_close(triangulate_dlt(P, reproject(X, P)), X)

    def test_batch_equals_loop(self, dtype: torch.dtype) -> None:
        P = _rig((3, 4), dtype)
        X = _points((3, 6), dtype)
        g = torch.Generator().manual_seed(3)
        pixels = reproject(X, P) + torch.randn(3, 4, 6, 2, generator=g).to(dtype)
        weights = torch.rand(3, 4, 6, generator=g).to(dtype) + 0.1
        out = triangulate_dlt(P, pixels, weights)
        for b in range(3):
            torch.testing.assert_close(out[b], triangulate_dlt(P[b], pixels[b], weights[b]))

    def test_shared_cameras_broadcast(self) -> None:
        """One rig (V, 3, 4) for a batch of point sets (B, V, N, 2)."""
        P = _rig((5,), torch.float64)
        X = _points((2, 7), torch.float64)
        pixels = reproject(X, P.expand(2, 5, 3, 4))
        torch.testing.assert_close(triangulate_dlt(P, pixels), X)

    def test_weights_per_view_and_scale(self) -> None:
        P = _rig((1, 4), torch.float64)
        X = _points((1, 5), torch.float64)
        pixels = reproject(X, P) + torch.randn(1, 4, 5, 2, dtype=torch.float64)
        per_view = torch.tensor([[1.0, 2.0, 0.5, 3.0]], dtype=torch.float64)
        a = triangulate_dlt(P, pixels, per_view)
        b = triangulate_dlt(P, pixels, per_view[..., None].expand(1, 4, 5))
        c = triangulate_dlt(P, pixels, 10.0 * per_view)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)

    def test_zero_weight_ignores_outliers_and_nan(self) -> None:
        P = _rig((1, 4), torch.float64)
        X = _points((1, 5), torch.float64)
        pixels = reproject(X, P)
        pixels[0, 2] = 1e4  # garbage view
        pixels[0, 3, 1] = math.nan  # missing observation
        weights = torch.ones(1, 4, 5, dtype=torch.float64)
        weights[0, 2] = 0.0
        weights[0, 3, 1] = 0.0
        torch.testing.assert_close(triangulate_dlt(P, pixels, weights), X)

    def test_nan_with_weight_raises(self) -> None:
        P = _rig((1, 3), torch.float64)
        pixels = reproject(_points((1, 2), torch.float64), P)
        pixels[0, 1, 0, 0] = math.nan
        with pytest.raises(BadInputError, match=r"^points: 1 coordinates with positive weight"):
            triangulate_dlt(P, pixels)

    def test_nan_camera_raises(self) -> None:
        P = _rig((1, 3), torch.float32)
        P[0, 2, 0, 0] = math.nan
        with pytest.raises(BadInputError, match=r"^camera: .*NaN"):
            triangulate_dlt(P, torch.zeros(1, 3, 4, 2))

    def test_bad_arguments_raise(self) -> None:
        P = _rig((1, 3), torch.float64)
        pixels = torch.zeros(1, 3, 4, 2, dtype=torch.float64)
        with pytest.raises(BadInputError, match="2 views of points but 3"):
            triangulate_dlt(P, pixels[:, :2])
        with pytest.raises(BadInputError, match="non-negative"):
            triangulate_dlt(P, pixels, -torch.ones(1, 3, dtype=torch.float64))
        with pytest.raises(BadInputError, match=r"\(\*, V, N\) or \(\*, V\)"):
            triangulate_dlt(P, pixels, torch.ones(3, dtype=torch.float64))
        with pytest.raises(BadInputError, match="unknown method"):
            triangulate_dlt(P, pixels, method="qr")  # type: ignore[arg-type]

    def test_gradcheck(self) -> None:
        P = _rig((1, 3), torch.float64)
        X = _points((1, 2), torch.float64)
        g = torch.Generator().manual_seed(5)
        pixels = reproject(X, P) + torch.randn(1, 3, 2, 2, generator=g, dtype=torch.float64)
        weights = torch.rand(1, 3, 2, generator=g, dtype=torch.float64) + 0.5
        args = (P.requires_grad_(), pixels.requires_grad_(), weights.requires_grad_())
        assert torch.autograd.gradcheck(triangulate_dlt, args)

    @pytest.mark.parametrize("rig", ["symmetric", "identical", "many_views"])
    def test_gradient_stable_where_svd_is_not(self, rig: str) -> None:
        """Finite, small gradients where the SVD form's are NaN (float32 symmetric rig: repeated
        singular values) or ~1e4..1e12 (identical views)."""
        if rig == "symmetric":  # four cameras at +-0.5 rad about x and y, point at the centre
            eyes = [(2.7 * math.sin(a), 0.0, 2.7 * math.cos(a)) for a in (-0.5, 0.5)]
            eyes += [(0.0, 2.7 * math.sin(a), 2.7 * math.cos(a)) for a in (-0.5, 0.5)]
            P = torch.stack([_camera_at(eye, (0, 0, 0)) for eye in eyes])[None].float()
            X = torch.zeros(1, 1, 3)
        elif rig == "identical":
            P = _rig((1, 1), torch.float32).expand(1, 5, 3, 4)
            X = torch.zeros(1, 1, 3)
        else:
            P = _rig((1, 512), torch.float32)
            X = _points((1, 68), torch.float32)
        pixels = reproject(X, P).requires_grad_()
        out = triangulate_dlt(P, pixels)
        (grad,) = torch.autograd.grad(out.square().sum() + out.sum(), pixels)
        assert torch.isfinite(grad).all()
        assert grad.abs().max() < 1e-2  # world units per pixel

    @pytest.mark.parametrize("baseline_deg", [60.0, 20.0, 5.0])
    def test_matches_kornia_and_opencv_on_noisy_points(self, baseline_deg: float) -> None:
        """Two views with 1 px noise: same points as kornia / OpenCV up to ~1% of the error."""
        cv2 = pytest.importorskip("cv2")
        epipolar = pytest.importorskip("kornia.geometry.epipolar")
        half = math.radians(baseline_deg) / 2
        P = torch.stack(
            [
                _camera_at((-2.7 * math.sin(half), 0.3, 2.7 * math.cos(half)), (0, 0, 0.2)),
                _camera_at((2.7 * math.sin(half), -0.2, 2.7 * math.cos(half)), (0, 0, 0.2)),
            ]
        )
        X = _points((68,), torch.float64)
        g = torch.Generator().manual_seed(7)
        pixels = reproject(X, P) + torch.randn(2, 68, 2, generator=g, dtype=torch.float64)
        ours = triangulate_dlt(P, pixels)
        k = epipolar.triangulate_points(P[0], P[1], pixels[0], pixels[1])
        h = cv2.triangulatePoints(
            P[0].numpy(), P[1].numpy(), pixels[0].T.numpy().copy(), pixels[1].T.numpy().copy()
        )
        cv = torch.from_numpy((h[:3] / h[3]).T)
        torch.testing.assert_close(k, cv)  # the two references agree
        noise_effect = (cv - X).norm(dim=-1).mean()
        assert (ours - cv).norm(dim=-1).max() < 0.05 * noise_effect
        svd = triangulate_dlt(P, pixels, method="svd")
        assert (svd - cv).norm(dim=-1).max() < 0.05 * noise_effect

        def reprojection(points: torch.Tensor) -> torch.Tensor:
            return (reproject(points, P) - pixels).norm(dim=-1).mean()

        assert reprojection(ours) < 1.001 * reprojection(cv)

    @pytest.mark.shared_data
    def test_reference_example_all_views(self, dtype: torch.dtype) -> None:
        """The stored 2-D landmarks of all 512 views triangulate to the stored 3-D points."""
        files_3d = sorted((RIG_DIR / "example" / "lm2d_68_multiview").glob("*/*_3d.npy"))
        files_2d = sorted((RIG_DIR / "example" / "lm2d_68_multiview").glob("*/*_2d.npy"))
        rig = RIG_DIR / "cam2world_pose.npy"
        if not (rig.exists() and files_3d and files_2d):
            pytest.skip(f"reference example absent: {RIG_DIR}")
        c2w = torch.from_numpy(np.load(rig)).double()
        K = eg3d_intrinsics(512, 512, dtype=torch.float64)
        P = projection_matrix(K, *cam2world_to_extrinsics(c2w)).to(dtype)
        stored_3d = torch.from_numpy(np.load(files_3d[0])).to(dtype)
        stored_2d = torch.from_numpy(np.load(files_2d[0])).to(dtype)
        result = triangulate_dlt_checked(P, stored_2d)
        assert result.valid.all()
        assert (result.points - stored_3d).abs().max() < 1e-5
        assert result.reprojection_error.max() < 1e-3  # pixels


class TestTriangulateDltChecked:
    def test_smoke_valid(self, dtype: torch.dtype) -> None:
        P = _rig((2, 6), dtype)
        X = _points((2, 9), dtype)
        result = triangulate_dlt_checked(P, reproject(X, P))
        assert isinstance(result, Triangulation)
        assert result.valid.shape == result.condition.shape == (2, 9)
        assert result.valid.all()
        assert (result.condition < 1e3).all()
        assert result.reprojection_error.max() < (1e-2 if dtype == torch.float32 else 1e-8)
        torch.testing.assert_close(result.points, triangulate_dlt(P, reproject(X, P)))

    def test_reprojection_error_in_pixels(self) -> None:
        P = _rig((1, 40), torch.float64)
        X = _points((1, 20), torch.float64)
        g = torch.Generator().manual_seed(2)
        noise = torch.randn(1, 40, 20, 2, generator=g, dtype=torch.float64)
        result = triangulate_dlt_checked(P, reproject(X, P) + noise)
        # E|n| for 2-D unit Gaussian noise is sqrt(pi/2) = 1.25 px, minus the fitted part
        assert 1.0 < result.reprojection_error.mean() < 1.3

    def test_identical_views_invalid_and_finite(self, dtype: torch.dtype) -> None:
        P = _rig((1, 1), dtype).expand(1, 5, 3, 4)
        X = _points((1, 4), dtype)
        result = triangulate_dlt_checked(P, reproject(X, P))
        assert not result.valid.any()
        assert torch.isfinite(result.points).all()
        assert (result.condition > 1e5).all()
        assert torch.isfinite(triangulate_dlt(P, reproject(X, P), method="svd")).all()

    @pytest.mark.parametrize(("baseline_deg", "valid"), [(2.0, True), (0.1, False)])
    def test_small_baseline(self, baseline_deg: float, valid: bool) -> None:
        half = math.radians(baseline_deg) / 2
        P = torch.stack(
            [
                _camera_at((-2.7 * math.sin(half), 0, 2.7 * math.cos(half)), (0, 0, 0)),
                _camera_at((2.7 * math.sin(half), 0, 2.7 * math.cos(half)), (0, 0, 0)),
            ]
        )
        X = _points((5,), torch.float64)
        result = triangulate_dlt_checked(P, reproject(X, P))
        assert bool(result.valid.all()) is valid
        expected = 4 / math.radians(baseline_deg) ** 2  # two views: cond ≈ 4/θ²
        assert (result.condition / expected - 1).abs().max() < 0.2

    def test_point_behind_camera_invalid(self) -> None:
        front_a = _camera_at((1.0, 0.0, 2.5), (0, 0, 0))
        front_b = _camera_at((-1.0, 0.2, 2.5), (0, 0, 0))
        away = _camera_at((0.3, 0.1, 1.0), (0.3, 0.1, 5.0))  # the face is behind it
        P = torch.stack([front_a, front_b, away])
        X = _points((3,), torch.float64)
        pixels = reproject(X, P)
        result = triangulate_dlt_checked(P, pixels)
        torch.testing.assert_close(result.points, X)  # consistent, but behind a camera
        assert not result.valid.any()
        weights = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
        assert triangulate_dlt_checked(P, pixels, weights).valid.all()

    def test_sign_of_projection_does_not_matter(self) -> None:
        P = _rig((3,), torch.float64)
        flipped = P.clone()
        flipped[1] = -flipped[1]
        X = _points((4,), torch.float64)
        result = triangulate_dlt_checked(flipped, reproject(X, P))
        assert result.valid.all()
        torch.testing.assert_close(result.points, X)

    def test_too_few_views_invalid(self) -> None:
        P = _rig((3,), torch.float64)
        X = _points((4,), torch.float64)
        weights = torch.zeros(3, 4, dtype=torch.float64)
        weights[0, :2] = 1.0  # points 0, 1: one view
        weights[:, 2] = 1.0  # point 2: three views; point 3: none
        result = triangulate_dlt_checked(P, reproject(X, P), weights)
        assert result.valid.tolist() == [False, False, True, False]
        assert torch.isfinite(result.points).all()
        assert math.isinf(result.reprojection_error[3].item())
        assert torch.isfinite(result.reprojection_error[:3]).all()
        assert math.isinf(result.condition[3].item())

    def test_batch_equals_loop(self) -> None:
        P = _rig((2, 3), torch.float64)
        pixels = reproject(_points((2, 5), torch.float64), P)
        result = triangulate_dlt_checked(P, pixels)
        for b in range(2):
            single = triangulate_dlt_checked(P[b], pixels[b])
            for field, value in zip(result, single, strict=True):
                torch.testing.assert_close(field[b], value)

    def test_points_are_differentiable(self) -> None:
        P = _rig((3,), torch.float64)
        pixels = reproject(_points((4,), torch.float64), P).requires_grad_()
        result = triangulate_dlt_checked(P, pixels)
        assert not result.condition.requires_grad
        (grad,) = torch.autograd.grad(result.points.sum(), pixels)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


class TestSolveLinear:
    """The closed-form 3x3 Cholesky solve against LAPACK's LU on the same ridged systems."""

    @staticmethod
    def _systems(cond: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(int(math.log10(cond)))
        Q, _ = torch.linalg.qr(torch.randn(200, 3, 3, generator=gen, dtype=torch.float64))
        eigenvalues = torch.tensor([1.0, math.sqrt(cond), cond], dtype=torch.float64)
        M = (Q * eigenvalues) @ Q.transpose(-1, -2)
        return M.to(dtype), torch.randn(200, 3, generator=gen, dtype=torch.float64).to(dtype)

    @staticmethod
    def _reference(M: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """float64 LU solve of the same system, ridge of ``M``'s dtype included."""
        ridge = torch.finfo(M.dtype).eps * (M.diagonal(dim1=-2, dim2=-1).sum(-1) + 1.0)
        A = M.double() + ridge.double()[:, None, None] * torch.eye(3, dtype=torch.float64)
        return torch.linalg.solve(A, r.double())

    @pytest.mark.parametrize("cond", [1e1, 1e3, 1e5])
    def test_matches_lu(self, dtype: torch.dtype, cond: float) -> None:
        M, r = self._systems(cond, dtype)
        X = _solve_linear(M, r)
        assert X.dtype == dtype
        ref = self._reference(M, r)
        error = (X.double() - ref).norm(dim=-1) / ref.norm(dim=-1)
        # forward error of a backward-stable solve: about cond x machine epsilon at most
        assert float(error.max()) < 10 * cond * torch.finfo(dtype).eps

    def test_singular_stays_finite(self, dtype: torch.dtype) -> None:
        M = torch.zeros(2, 3, 3, dtype=dtype)
        M[1] = torch.ones(3, 3, dtype=dtype)  # rank 1
        X = _solve_linear(M, torch.ones(2, 3, dtype=dtype))
        assert torch.isfinite(X).all()

    def test_gradcheck(self) -> None:
        M, r = self._systems(1e2, torch.float64)
        M, r = M[:3].requires_grad_(True), r[:3].requires_grad_(True)
        assert torch.autograd.gradcheck(_solve_linear, (M, r))


class TestReproject:
    def test_smoke(self) -> None:
        P = _rig((2, 3), torch.float64)
        X = _points((2, 5), torch.float64)
        pixels = reproject(X, P)
        assert pixels.shape == (2, 3, 5, 2)
        torch.testing.assert_close(pixels[1, 2], project_points(X[1], P[1, 2]))

    def test_gradcheck(self) -> None:
        P = _rig((1, 2), torch.float64).requires_grad_()
        X = _points((1, 3), torch.float64).requires_grad_()
        assert torch.autograd.gradcheck(reproject, (X, P))
