"""Tests of mvface.eval.metrics against hand-computed closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvface.errors import BadInputError
from mvface.eval.metrics import (
    auc,
    bbox_normalizer,
    box_normalizer,
    ced_curve,
    failure_rate,
    image_size_normalizer,
    interocular_normalizer,
    nme,
    point_errors,
)


def rect_face(n: int = 2, w: float = 40.0, h: float = 10.0, dims: int = 2) -> np.ndarray:
    """``(n, 68, dims)`` points inside the box ``[5, 7] - [5 + w, 7 + h]``, touching all sides."""
    rng = np.random.default_rng(0)
    pts = np.zeros((n, 68, dims))
    pts[..., 0] = rng.uniform(5.0, 5.0 + w, (n, 68))
    pts[..., 1] = rng.uniform(7.0, 7.0 + h, (n, 68))
    pts[:, 0, :2] = (5.0, 7.0)
    pts[:, 1, :2] = (5.0 + w, 7.0 + h)
    if dims == 3:
        pts[..., 2] = rng.uniform(-50, 50, (n, 68))
    return pts


class TestPointErrors:
    def test_345_shift_is_5(self) -> None:
        gt = rect_face()
        err = point_errors(gt + np.array([3.0, 4.0]), gt)
        assert err.shape == (2, 68)
        np.testing.assert_allclose(err, 5.0, rtol=0, atol=1e-12)

    def test_dims_2_ignores_z_and_dims_3_uses_it(self) -> None:
        gt = rect_face(dims=3)
        pred = gt + np.array([0.0, 0.0, 7.0])
        np.testing.assert_allclose(point_errors(pred, gt, dims=2), 0.0, atol=1e-12)
        pred = gt + np.array([1.0, 2.0, 2.0])  # |(1, 2, 2)| = 3
        np.testing.assert_allclose(point_errors(pred, gt, dims=3), 3.0, atol=1e-12)

    def test_dims_3_needs_three_coordinates(self) -> None:
        gt = rect_face()
        with pytest.raises(BadInputError, match="D>=3"):
            point_errors(gt, gt, dims=3)

    def test_shape_mismatch(self) -> None:
        with pytest.raises(BadInputError, match="differs"):
            point_errors(rect_face(n=2), rect_face(n=3))

    def test_nan_names_the_sample(self) -> None:
        gt = rect_face(n=3)
        pred = gt.copy()
        pred[2, 10, 0] = np.nan
        with pytest.raises(BadInputError, match="sample 2"):
            point_errors(pred, gt)

    def test_accepts_torch(self) -> None:
        gt = rect_face()
        err = point_errors(torch.from_numpy(gt + np.array([3.0, 4.0])), torch.from_numpy(gt))
        assert isinstance(err, np.ndarray)
        np.testing.assert_allclose(err, 5.0)


class TestNormalizers:
    def test_bbox_is_sqrt_w_h(self) -> None:
        np.testing.assert_allclose(bbox_normalizer(rect_face(w=40, h=10)), [20.0, 20.0])

    def test_bbox_uses_only_xy(self) -> None:
        np.testing.assert_allclose(bbox_normalizer(rect_face(w=9, h=16, dims=3)), [12.0, 12.0])

    def test_box_normalizer(self) -> None:
        boxes = np.array([[0.0, 0.0, 16.0, 4.0], [10.0, 10.0, 19.0, 35.0]])
        np.testing.assert_allclose(box_normalizer(boxes), [8.0, 15.0])

    def test_box_without_area_names_the_sample(self) -> None:
        boxes = np.array([[0.0, 0.0, 16.0, 4.0], [10.0, 10.0, 5.0, 5.0]])  # inverted box
        with pytest.raises(BadInputError, match="sample 1"):
            box_normalizer(boxes)

    def test_interocular(self) -> None:
        gt = rect_face(n=1)
        gt[0, 36] = (10.0, 20.0)
        gt[0, 45] = (40.0, 60.0)
        np.testing.assert_allclose(interocular_normalizer(gt), [50.0])

    def test_interocular_coinciding_corners(self) -> None:
        gt = rect_face(n=2)
        gt[1, 45] = gt[1, 36]
        with pytest.raises(BadInputError, match="sample 1"):
            interocular_normalizer(gt)

    def test_image_size(self) -> None:
        np.testing.assert_allclose(image_size_normalizer(640, 360), [480.0])
        np.testing.assert_allclose(image_size_normalizer([100, 400], [100, 100]), [100.0, 200.0])
        with pytest.raises(BadInputError, match="sample 0"):
            image_size_normalizer(0, 100)

    def test_degenerate_gt_box_names_the_sample(self) -> None:
        gt = rect_face(n=3)
        gt[1, :, 1] = 12.0  # all points on one horizontal line: h = 0
        with pytest.raises(BadInputError, match=r"sample 1.*bounding-box"):
            bbox_normalizer(gt)


class TestNme:
    def test_345_shift_closed_form(self) -> None:
        gt = rect_face(w=40, h=10)  # normalizer 20
        out = nme(gt + np.array([3.0, 4.0]), gt, bbox_normalizer(gt))
        np.testing.assert_allclose(out, [5.0 / 20.0, 5.0 / 20.0], rtol=1e-12)

    def test_mean_over_points(self) -> None:
        gt = rect_face(n=1)
        pred = gt.copy()
        pred[0, :34, 0] += 2.0  # half the points off by 2, the rest exact: mean 1
        np.testing.assert_allclose(nme(pred, gt, 4.0), [0.25])

    def test_mask_keeps_only_visible_points(self) -> None:
        gt = rect_face(n=2)
        pred = gt.copy()
        pred[:, :10, 0] += 100.0  # huge error on points 0..9 only
        mask = np.ones((2, 68), dtype=bool)
        mask[:, :10] = False
        np.testing.assert_allclose(nme(pred, gt, [10.0, 10.0], mask=mask), [0.0, 0.0])
        mask[1] = False
        mask[1, 0] = True
        np.testing.assert_allclose(nme(pred, gt, [10.0, 10.0], mask=mask)[1], 10.0)

    def test_empty_mask_names_the_sample(self) -> None:
        gt = rect_face(n=2)
        mask = np.ones((2, 68), dtype=bool)
        mask[1] = False
        with pytest.raises(BadInputError, match="sample 1"):
            nme(gt, gt, 1.0, mask=mask)

    @pytest.mark.parametrize("bad", [0.0, math.nan, -3.0, math.inf])
    def test_bad_normalizer_names_the_sample(self, bad: float) -> None:
        gt = rect_face(n=3)
        with pytest.raises(BadInputError, match="sample 2"):
            nme(gt, gt, np.array([1.0, 2.0, bad]))

    def test_normalizer_shape(self) -> None:
        gt = rect_face(n=3)
        with pytest.raises(BadInputError, match="normalizer"):
            nme(gt, gt, np.ones(2))

    def test_3d_nme(self) -> None:
        gt = rect_face(n=1, w=16, h=4, dims=3)  # normalizer 8
        out = nme(gt + np.array([2.0, 3.0, 6.0]), gt, bbox_normalizer(gt), dims=3)
        np.testing.assert_allclose(out, [7.0 / 8.0])  # |(2, 3, 6)| = 7

    @settings(max_examples=30, deadline=None)
    @given(
        st.floats(-500, 500),
        st.floats(-500, 500),
        st.floats(0.1, 10),
        st.integers(0, 2**32 - 1),
    )
    def test_bbox_nme_invariant_to_shift_and_scale(
        self, dx: float, dy: float, scale: float, seed: int
    ) -> None:
        rng = np.random.default_rng(seed)
        gt = rng.uniform(0, 200, (2, 68, 2))
        pred = gt + rng.normal(0, 3, gt.shape)
        ref = nme(pred, gt, bbox_normalizer(gt))
        off = np.array([dx, dy])
        moved = nme(scale * pred + off, scale * gt + off, bbox_normalizer(scale * gt + off))
        np.testing.assert_allclose(moved, ref, rtol=1e-9, atol=1e-12)


class TestAucFailureCed:
    def test_auc_all_zero_is_one(self) -> None:
        assert auc(np.zeros(10), 0.07) == 1.0
        assert auc(np.zeros(10), 0.07, step=1e-4) == pytest.approx(1.0)

    def test_auc_all_above_threshold_is_zero(self) -> None:
        assert auc(np.full(10, 0.2), 0.07) == 0.0
        assert auc(np.full(10, 0.2), 0.07, step=1e-4) == 0.0

    def test_auc_closed_form(self) -> None:
        # CED integral / T = mean(max(0, 1 - e / T)) = (1 + 0.5 + 0 + 0) / 4
        errors = np.array([0.0, 0.04, 0.08, 0.16])
        assert auc(errors, 0.08) == pytest.approx(0.375, abs=1e-12)

    def test_numeric_auc_agrees_with_exact(self) -> None:
        errors = np.random.default_rng(1).uniform(0, 0.12, 500)
        exact = auc(errors, 0.08)
        assert auc(errors, 0.08, step=1e-4) == pytest.approx(exact, abs=2e-3)

    def test_auc_units_follow_threshold(self) -> None:
        errors = np.array([1.0, 3.0, 9.0])  # percent
        assert auc(errors, 8.0) == pytest.approx(((1 - 1 / 8) + (1 - 3 / 8)) / 3)

    def test_failure_rate_is_strictly_above(self) -> None:
        errors = np.array([0.05, 0.07, 0.08, 0.1])
        assert failure_rate(errors, 0.07) == 0.5
        assert failure_rate(errors, 0.2) == 0.0

    def test_ced_curve(self) -> None:
        errors = np.array([0.0, 0.01, 0.02, 0.02, 0.5])
        x, frac = ced_curve(errors, 0.04, num=5)  # thresholds 0, .01, .02, .03, .04
        np.testing.assert_allclose(x, [0.0, 0.01, 0.02, 0.03, 0.04])
        np.testing.assert_allclose(frac, [0.2, 0.4, 0.8, 0.8, 0.8])

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.floats(0, 20, allow_nan=False), min_size=1, max_size=200))
    def test_ced_monotone_and_bounded(self, errors: list[float]) -> None:
        e = np.asarray(errors)
        _, frac = ced_curve(e, 10.0, num=200)
        assert np.all(np.diff(frac) >= 0)
        assert frac.min() >= 0 and frac.max() <= 1
        assert frac[-1] == pytest.approx(1.0 - failure_rate(e, 10.0))
        assert 0.0 <= auc(e, 10.0) <= 1.0

    @pytest.mark.parametrize("bad", [[], [0.1, -0.01], [0.1, math.nan]])
    def test_bad_errors(self, bad: list[float]) -> None:
        with pytest.raises(BadInputError):
            auc(np.asarray(bad), 0.07)

    def test_bad_threshold(self) -> None:
        with pytest.raises(BadInputError, match="threshold"):
            failure_rate(np.zeros(3), 0.0)


def test_public_api() -> None:
    """Renaming or removing a public name of mvface.eval must be a conscious decision."""
    import mvface.eval

    assert set(mvface.eval.__all__) == {
        "AFLW2000_3D_AUC_THRESHOLD",
        "DEFAULT_AUC_THRESHOLD",
        "IBUG_300W_THRESHOLDS",
        "REPORT_FILES",
        "YAW_BINS",
        "Aflw2000Protocol",
        "EvalReport",
        "ProtocolResult",
        "aflw2000_3d_protocol",
        "auc",
        "bbox_normalizer",
        "box_normalizer",
        "ced_curve",
        "failure_rate",
        "format_table",
        "ibug_300w_protocol",
        "image_size_normalizer",
        "interocular_normalizer",
        "load_aflw2000_3d_protocol",
        "multiview_consistency_error",
        "nme",
        "plot_ced",
        "plot_nme_by_yaw",
        "point_errors",
        "render_table",
        "reprojection_distances",
        "write_report",
        "yaw_bin_index",
    }
    for name in mvface.eval.__all__:
        assert hasattr(mvface.eval, name), name
