"""Tests of mvface.eval.consistency with cameras and projections built here in numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mvface.errors import BadInputError
from mvface.eval.consistency import multiview_consistency_error, reprojection_distances

pytest.importorskip("mvface.geometry.triangulation", reason="mvface.geometry not built yet")

IMAGE = 512.0


def look_at_projection(center: np.ndarray, focal: float = 600.0) -> np.ndarray:
    """``(3, 4)`` OpenCV-style ``K [R | t]`` of a camera at ``center`` looking at the origin."""
    z = -center / np.linalg.norm(center)
    x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    t = -R @ center
    K = np.array([[focal, 0, IMAGE / 2], [0, focal, IMAGE / 2], [0, 0, 1.0]])
    return K @ np.concatenate([R, t[:, None]], axis=1)


def rig(num_ids: int, num_views: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random cameras `(B, V, 3, 4)` around random 68-point sets; exact pixels `(B, V, 68, 2)`."""
    rng = np.random.default_rng(seed)
    P = np.empty((num_ids, num_views, 3, 4))
    pix = np.empty((num_ids, num_views, 68, 2))
    for b in range(num_ids):
        X = rng.uniform(-0.3, 0.3, (68, 3))
        for v in range(num_views):
            yaw, pitch = np.radians(rng.uniform(-50, 50)), np.radians(rng.uniform(-25, 25))
            center = 3.0 * np.array(
                [math.sin(yaw) * math.cos(pitch), math.sin(pitch), -math.cos(yaw) * math.cos(pitch)]
            )
            P[b, v] = look_at_projection(center)
            h = np.concatenate([X, np.ones((68, 1))], axis=1) @ P[b, v].T
            pix[b, v] = h[:, :2] / h[:, 2:]
    return P, pix


class TestMultiviewConsistencyError:
    def test_consistent_predictions_score_zero(self) -> None:
        P, pix = rig(6, 4)
        assert np.all((pix > 0) & (pix < IMAGE))  # the faces are in view
        err = multiview_consistency_error(P, pix, (IMAGE, IMAGE))
        assert err.shape == (6,)
        np.testing.assert_allclose(err, 0.0, atol=1e-9)

    def test_grows_with_noise(self) -> None:
        P, pix = rig(8, 4, seed=1)
        rng = np.random.default_rng(2)
        noise = rng.normal(0.0, 1.0, pix.shape)
        means = []
        for sigma in (0.5, 2.0, 8.0):
            err = multiview_consistency_error(P, pix + sigma * noise, IMAGE)
            assert np.all(err > 0)
            means.append(float(err.mean()))
            # least-squares residual of 2D noise over 4 views: about sigma px on average
            assert 0.4 * sigma < means[-1] * IMAGE < 1.6 * sigma
        assert means[0] < means[1] < means[2]

    def test_rectified_pair_closed_form(self) -> None:
        # Two identical cameras 1 unit apart along x (rectified stereo): a vertical disagreement
        # of d px cannot be explained by depth and splits evenly, d/2 per view; a horizontal one
        # moves the point along the epipolar line and is invisible to the metric.
        K = np.array([[500.0, 0, 256], [0, 500, 256], [0, 0, 1]])
        P = np.stack([K @ np.hstack([np.eye(3), [[dx], [0.0], [3.0]]]) for dx in (-0.5, 0.5)])
        X = np.random.default_rng(7).uniform(-0.2, 0.2, (68, 3))
        h = np.concatenate([X, np.ones((68, 1))], axis=1) @ P.transpose(0, 2, 1)
        pix = h[..., :2] / h[..., 2:]
        down = pix.copy()
        down[0, :, 1] += 4.0
        err = multiview_consistency_error(P[None], down[None], (512, 512))
        assert err[0] * 512 == pytest.approx(2.0, rel=2e-3)
        right = pix.copy()
        right[0, :, 0] += 4.0
        assert multiview_consistency_error(P[None], right[None], 512)[0] < 1e-9

    def test_image_size_forms(self) -> None:
        P, pix = rig(2, 3, seed=3)
        noisy = pix + np.random.default_rng(0).normal(0, 2.0, pix.shape)
        by_side = multiview_consistency_error(P, noisy, 256.0)
        np.testing.assert_allclose(multiview_consistency_error(P, noisy, (256, 256)), by_side)
        np.testing.assert_allclose(multiview_consistency_error(P, noisy, (512, 128)), by_side)
        np.testing.assert_allclose(
            multiview_consistency_error(P, noisy, 512.0), by_side / 2.0, rtol=1e-12
        )
        dist = reprojection_distances(P, noisy)
        np.testing.assert_allclose(dist.mean(axis=(1, 2)) / 256.0, by_side, rtol=1e-12)

    def test_zero_weight_removes_a_bad_view(self) -> None:
        P, pix = rig(2, 4, seed=4)
        bad = pix.copy()
        bad[0, 1] += 50.0  # identity 0, view 1 is off by (50, 50) px
        bad[0, 1, :5] = np.nan  # ... and partly missing
        w = np.ones(pix.shape[:3])
        w[0, 1] = 0.0
        err = multiview_consistency_error(P, bad, IMAGE, weights=w)
        np.testing.assert_allclose(err, 0.0, atol=1e-9)
        per_view = np.ones(pix.shape[:2])
        per_view[0, 1] = 0.0
        np.testing.assert_allclose(
            multiview_consistency_error(P, bad, IMAGE, weights=per_view), 0.0, atol=1e-9
        )
        bad[0, 1, :5] = 0.0
        assert multiview_consistency_error(P, bad, IMAGE)[0] * IMAGE > 10.0

    def test_accepts_torch(self) -> None:
        P, pix = rig(2, 3, seed=5)
        noisy = pix + 1.0
        ref = multiview_consistency_error(P, noisy, IMAGE)
        out = multiview_consistency_error(
            torch.from_numpy(P).float(), torch.from_numpy(noisy).float(), IMAGE
        )
        assert isinstance(out, np.ndarray)
        np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-6)

    def test_bad_inputs(self) -> None:
        P, pix = rig(3, 3, seed=6)
        with pytest.raises(BadInputError, match="2 views"):
            multiview_consistency_error(P[:, :1], pix[:, :1], IMAGE)
        with pytest.raises(BadInputError, match="points"):
            multiview_consistency_error(P, pix[:, :2], IMAGE)
        nan = pix.copy()
        nan[2, 0, 3, 1] = np.nan
        with pytest.raises(BadInputError, match="identity 2"):
            multiview_consistency_error(P, nan, IMAGE)
        with pytest.raises(BadInputError, match="image_size"):
            multiview_consistency_error(P, pix, (0, 512))
        w = np.ones(pix.shape[:3])
        w[1] = 0.0
        with pytest.raises(BadInputError, match="identity 1"):
            multiview_consistency_error(P, pix, IMAGE, weights=w)
        with pytest.raises(BadInputError, match="weights"):
            multiview_consistency_error(P, pix, IMAGE, weights=-w)
