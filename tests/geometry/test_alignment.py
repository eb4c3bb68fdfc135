"""Tests of mvface.geometry.alignment."""

from __future__ import annotations

import math

import pytest
import torch

from mvface.errors import BadInputError
from mvface.geometry import apply_similarity, euler_to_rotation, umeyama


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


def _similarity(
    batch: tuple[int, ...], dtype: torch.dtype, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    angles = torch.randn(*batch, 3, generator=g, dtype=torch.float64)
    scale = torch.rand(batch, generator=g, dtype=torch.float64) * 3 + 0.5
    t = torch.randn(*batch, 3, generator=g, dtype=torch.float64) * 10
    return scale.to(dtype), euler_to_rotation(angles).to(dtype), t.to(dtype)


def _cloud(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def _rotation_2d(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


class TestUmeyama:
    def test_smoke_recovers_similarity(self, dtype: torch.dtype) -> None:
        scale, R, t = _similarity((), dtype)
        src = _cloud((68, 3), dtype)
        s_hat, R_hat, t_hat = umeyama(src, apply_similarity(src, scale, R, t))
        tol = 1e-4 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(s_hat, scale, atol=tol, rtol=tol)
        torch.testing.assert_close(R_hat, R, atol=tol, rtol=tol)
        torch.testing.assert_close(t_hat, t, atol=tol, rtol=tol)

    def test_two_dimensional(self) -> None:
        src = _cloud((10, 2), torch.float64)
        R = _rotation_2d(2.5)
        dst = 0.7 * src @ R.T + torch.tensor([3.0, -1.0], dtype=torch.float64)
        s_hat, R_hat, t_hat = umeyama(src, dst)
        torch.testing.assert_close(s_hat, torch.tensor(0.7, dtype=torch.float64))
        torch.testing.assert_close(R_hat, R)
        torch.testing.assert_close(t_hat, torch.tensor([3.0, -1.0], dtype=torch.float64))

    def test_without_scale_is_rigid(self) -> None:
        _, R, t = _similarity((), torch.float64)
        src = _cloud((20, 3), torch.float64)
        s_hat, R_hat, t_hat = umeyama(src, apply_similarity(src, 1.0, R, t), with_scale=False)
        torch.testing.assert_close(s_hat, torch.tensor(1.0, dtype=torch.float64))
        torch.testing.assert_close(R_hat, R)
        torch.testing.assert_close(t_hat, t)

    def test_reflection_gives_proper_rotation(self, dtype: torch.dtype) -> None:
        src = _cloud((30, 3), dtype)
        mirrored = src * torch.tensor([-1.0, 1.0, 1.0], dtype=dtype)
        _, R_hat, _ = umeyama(src, mirrored)
        torch.testing.assert_close(torch.linalg.det(R_hat), torch.tensor(1.0, dtype=dtype))

    def test_least_squares_optimal_on_noisy_points(self) -> None:
        """No small perturbation of the estimate lowers the squared error."""
        scale, R, t = _similarity((), torch.float64)
        src = _cloud((40, 3), torch.float64)
        dst = apply_similarity(src, scale, R, t) + 0.1 * _cloud((40, 3), torch.float64, seed=2)
        s_hat, R_hat, t_hat = umeyama(src, dst)

        def cost(s: torch.Tensor, rot: torch.Tensor, tr: torch.Tensor) -> float:
            return float((apply_similarity(src, s, rot, tr) - dst).square().sum())

        best = cost(s_hat, R_hat, t_hat)
        for i in range(3):
            delta = torch.zeros(3, dtype=torch.float64)
            delta[i] = 1e-3
            assert cost(s_hat, euler_to_rotation(delta) @ R_hat, t_hat) > best
            assert cost(s_hat, R_hat, t_hat + delta) > best
        assert cost(s_hat * 1.001, R_hat, t_hat) > best and cost(s_hat / 1.001, R_hat, t_hat) > best

    def test_weights_ignore_outliers(self) -> None:
        scale, R, t = _similarity((), torch.float64)
        src = _cloud((25, 3), torch.float64)
        dst = apply_similarity(src, scale, R, t)
        dst[:5] += 50.0
        weights = torch.ones(25, dtype=torch.float64)
        weights[:5] = 0.0
        s_hat, R_hat, t_hat = umeyama(src, dst, weights=weights)
        torch.testing.assert_close((s_hat, R_hat, t_hat), (scale, R, t))
        s2, R2, t2 = umeyama(src, dst, weights=3.0 * weights)  # only ratios matter
        torch.testing.assert_close((s2, R2, t2), (s_hat, R_hat, t_hat))

    def test_batch_equals_loop(self, dtype: torch.dtype) -> None:
        scale, R, t = _similarity((2, 3), dtype)
        src = _cloud((2, 3, 15, 3), dtype)
        dst = apply_similarity(src, scale, R, t) + 0.01 * _cloud((2, 3, 15, 3), dtype, seed=4)
        s_hat, R_hat, t_hat = umeyama(src, dst)
        assert s_hat.shape == (2, 3) and R_hat.shape == (2, 3, 3, 3) and t_hat.shape == (2, 3, 3)
        for i in range(2):
            for j in range(3):
                single = umeyama(src[i, j], dst[i, j])
                torch.testing.assert_close((s_hat[i, j], R_hat[i, j], t_hat[i, j]), single)

    def test_degenerate_source_is_finite(self) -> None:
        src = torch.ones(6, 3)
        s_hat, R_hat, t_hat = umeyama(src, _cloud((6, 3), torch.float32))
        assert all(torch.isfinite(x).all() for x in (s_hat, R_hat, t_hat))

    def test_bad_inputs_raise(self) -> None:
        with pytest.raises(BadInputError, match="do not correspond"):
            umeyama(torch.zeros(5, 3), torch.zeros(4, 3))
        with pytest.raises(BadInputError, match=r"^points: .*NaN"):
            umeyama(torch.full((5, 3), math.nan), torch.zeros(5, 3))
        with pytest.raises(BadInputError, match="all weights are zero"):
            umeyama(torch.rand(5, 3), torch.rand(5, 3), weights=torch.zeros(5))
        with pytest.raises(BadInputError, match="non-negative"):
            umeyama(torch.rand(5, 3), torch.rand(5, 3), weights=-torch.ones(5))

    def test_gradcheck(self) -> None:
        scale, R, t = _similarity((2,), torch.float64)
        src = _cloud((2, 6, 3), torch.float64)
        dst = apply_similarity(src, scale, R, t) + 0.1 * _cloud((2, 6, 3), torch.float64, seed=3)
        weights = torch.rand(2, 6, dtype=torch.float64) + 0.5

        def fn(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return umeyama(a, b, weights=w)

        args = (src.requires_grad_(), dst.requires_grad_(), weights.requires_grad_())
        assert torch.autograd.gradcheck(fn, args)


class TestApplySimilarity:
    def test_smoke(self) -> None:
        R = _rotation_2d(math.pi / 2)
        out = apply_similarity(torch.tensor([[1.0, 0.0]]).double(), 2.0, R, torch.ones(2).double())
        torch.testing.assert_close(out, torch.tensor([[1.0, 3.0]], dtype=torch.float64))

    def test_batch(self, dtype: torch.dtype) -> None:
        scale, R, t = _similarity((4,), dtype)
        points = _cloud((4, 7, 3), dtype)
        out = apply_similarity(points, scale, R, t)
        torch.testing.assert_close(out[2], apply_similarity(points[2], scale[2], R[2], t[2]))

    def test_round_trip_inverse(self, dtype: torch.dtype) -> None:
        scale, R, t = _similarity((3,), dtype)
        points = _cloud((3, 9, 3), dtype)
        moved = apply_similarity(points, scale, R, t)
        inverse_t = -(R.transpose(-1, -2) @ t.unsqueeze(-1)).squeeze(-1) / scale[:, None]
        back = apply_similarity(moved, 1 / scale, R.transpose(-1, -2), inverse_t)
        torch.testing.assert_close(
            back, points, atol=1e-4 if dtype == torch.float32 else 1e-12, rtol=0
        )

    def test_gradcheck(self) -> None:
        scale, R, t = _similarity((2,), torch.float64)
        points = _cloud((2, 4, 3), torch.float64)
        args = tuple(x.requires_grad_() for x in (points, scale, R, t))
        assert torch.autograd.gradcheck(apply_similarity, args)
