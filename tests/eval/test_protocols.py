"""Tests of mvface.eval.protocols: yaw bins, closed-form NMEs, and the real 3DDFA arrays."""

from __future__ import annotations

import dataclasses
import math
from math import sqrt
from pathlib import Path

import numpy as np
import pytest

from _shared import SHARED
from mvface.errors import BadInputError
from mvface.eval.protocols import (
    YAW_BINS,
    ProtocolResult,
    aflw2000_3d_protocol,
    ibug_300w_protocol,
    load_aflw2000_3d_protocol,
    yaw_bin_index,
)

PROTOCOL_DIR = SHARED / "data" / "aflw2000_3d_dev" / "3ddfa_protocol"
requires_protocol = pytest.mark.skipif(
    not (PROTOCOL_DIR / "AFLW2000-3D.pts68.npy").is_file(),
    reason=f"3DDFA AFLW2000-3D protocol arrays not found at {PROTOCOL_DIR}",
)


def square_faces(n: int, side: float = 50.0) -> np.ndarray:
    """``(n, 68, 3)`` faces whose tight ``(x, y)`` box is ``side x side`` (normalizer ``side``)."""
    rng = np.random.default_rng(n)
    gt = np.zeros((n, 68, 3))
    gt[..., :2] = rng.uniform(100.0, 100.0 + side, (n, 68, 2))
    gt[:, 0, :2] = 100.0
    gt[:, 1, :2] = 100.0 + side
    gt[..., 2] = rng.uniform(-30, 30, (n, 68))
    return gt


class TestYawBins:
    def test_bins_definition(self) -> None:
        assert [b[0] for b in YAW_BINS] == ["0-30", "30-60", "60-90"]

    def test_edges_follow_3ddfa(self) -> None:
        yaw = np.array([0, 29.9, 30, -30, 30.0001, 45, 60, -60, 60.5, 90, -90, 120, -351.2])
        expected = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]
        np.testing.assert_array_equal(yaw_bin_index(yaw), expected)

    def test_matches_3ddfa_expressions(self) -> None:
        yaws = np.random.default_rng(3).uniform(-120, 120, 2000)
        a = np.abs(yaws)  # the benchmark's own expressions
        ind_1 = a <= 30
        ind_2 = np.bitwise_and(a > 30, a <= 60)
        ind_3 = a > 60
        idx = yaw_bin_index(yaws)
        np.testing.assert_array_equal(idx == 0, ind_1)
        np.testing.assert_array_equal(idx == 1, ind_2)
        np.testing.assert_array_equal(idx == 2, ind_3)

    def test_nan_yaw_names_the_sample(self) -> None:
        with pytest.raises(BadInputError, match="sample 1"):
            yaw_bin_index([10.0, math.nan])


class TestAflw2000Protocol:
    def test_self_is_zero(self) -> None:
        gt = square_faces(3)
        r = aflw2000_3d_protocol(gt, gt, [0.0, 45.0, 80.0])
        assert r.nme_mean == 0.0 and r.nme_balanced == 0.0
        assert r.auc == 1.0 and r.failure_rate == 0.0

    def test_345_shift_in_percent(self) -> None:
        gt = square_faces(4, side=50.0)
        pred = gt + np.array([3.0, 4.0, 99.0])  # z is ignored
        r = aflw2000_3d_protocol(pred, gt, [0, 10, 40, 70])
        np.testing.assert_allclose(r.per_image, 100.0 * 5.0 / 50.0)  # 10 %
        assert r.nme_balanced == pytest.approx(10.0)
        assert r.auc == 0.0 and r.failure_rate == 1.0  # 10 % > 7 %

    def test_balanced_vs_plain_mean(self) -> None:
        gt = square_faces(4, side=100.0)
        shifts = np.array([1.0, 3.0, 4.0, 8.0])  # px along x -> percent of 100 px
        pred = gt.copy()
        pred[:, :, 0] += shifts[:, None]
        r = aflw2000_3d_protocol(pred, gt, [5.0, -30.0, 31.0, -89.0])
        np.testing.assert_allclose(r.per_image, shifts)
        assert r.bin_counts == {"0-30": 2, "30-60": 1, "60-90": 1}
        assert r.nme_bins is not None
        assert r.nme_bins == pytest.approx({"0-30": 2.0, "30-60": 4.0, "60-90": 8.0})
        assert r.nme_balanced == pytest.approx(14.0 / 3.0)
        assert r.nme_mean == pytest.approx(4.0)
        # AUC@7 %: mean(max(0, 1 - e/7)) over e = 1, 3, 4, 8
        assert r.auc == pytest.approx((6 / 7 + 4 / 7 + 3 / 7 + 0) / 4)
        assert r.failure_rate == 0.25

    def test_empty_bin_gives_nan_balanced(self) -> None:
        gt = square_faces(2)
        r = aflw2000_3d_protocol(gt, gt, [0.0, 10.0])
        assert r.bin_counts == {"0-30": 2, "30-60": 0, "60-90": 0}
        assert r.nme_balanced is not None and math.isnan(r.nme_balanced)
        d = r.to_dict()
        assert d["nme_balanced"] is None
        assert d["nme_bins"] == {"0-30": 0.0, "30-60": None, "60-90": None}

    def test_protocol_states_every_choice(self) -> None:
        gt = square_faces(2)
        r = aflw2000_3d_protocol(gt, gt, [0.0, 40.0], ground_truth="reannotated", crop="gt box")
        for key in ("normalizer", "dims", "ground_truth", "yaw_file", "yaw_bins", "crop"):
            assert key in r.protocol
        assert r.protocol["nme_units"] == "percent"
        assert r.protocol["ground_truth"] == "reannotated"
        assert r.protocol["yaw_file"] == "AFLW2000-3D.pose.npy"
        assert r.protocol["auc_threshold_percent"] == 7.0

    def test_result_is_frozen_and_readonly(self) -> None:
        gt = square_faces(2)
        r = aflw2000_3d_protocol(gt, gt, [0.0, 40.0])
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.nme_mean = 1.0  # type: ignore[misc]
        with pytest.raises(ValueError):
            r.per_image[0] = 1.0

    def test_3d_predictions_against_2d_ground_truth(self) -> None:
        gt2 = square_faces(2, side=50.0)[..., :2]  # e.g. the re-annotated 2D ground truth
        pred3 = np.concatenate([gt2 + np.array([3.0, 4.0]), np.ones((2, 68, 1))], axis=-1)
        r = aflw2000_3d_protocol(pred3, gt2, [0.0, 70.0])
        np.testing.assert_allclose(r.per_image, 10.0)

    def test_bad_inputs(self) -> None:
        gt = square_faces(3)
        with pytest.raises(BadInputError, match="yaw"):
            aflw2000_3d_protocol(gt, gt, [0.0, 1.0])
        with pytest.raises(BadInputError, match="68"):
            aflw2000_3d_protocol(gt[:, :21], gt[:, :21], [0.0, 1.0, 2.0])
        flat = gt.copy()
        flat[2, :, 0] = 120.0  # zero-width ground-truth box
        with pytest.raises(BadInputError, match="sample 2"):
            aflw2000_3d_protocol(flat, flat, [0.0, 1.0, 2.0])


class TestIbug300wProtocol:
    def test_interocular_closed_form(self) -> None:
        gt = square_faces(3)
        gt[:, 36, :2] = (100.0, 120.0)
        gt[:, 45, :2] = (130.0, 160.0)  # 50 px apart
        pred = gt + np.array([0.6, 0.8, 0.0])  # 1 px -> 2 %
        r = ibug_300w_protocol(pred, gt, subset="test")
        np.testing.assert_allclose(r.per_image, 2.0)
        assert r.nme_balanced is None and r.nme_bins is None and r.bin_counts is None
        assert r.threshold == 8.0
        assert r.auc == pytest.approx(1 - 2 / 8)
        assert r.extra["auc@10%"] == pytest.approx(1 - 2 / 10)
        assert r.failure_rate == 0.0 and r.extra["failure_rate@10%"] == 0.0
        assert "36, 45" in str(r.protocol["normalizer"])
        assert r.protocol["subset"] == "test"


def reference_3ddfa_nme(pts68_fit_all: np.ndarray, pts68_all: np.ndarray) -> np.ndarray:
    """Per-image NME (fraction) written after 3DDFA's ``calc_nme`` on ``(N, 3, 68)`` arrays."""
    out = []
    for fit, gt in zip(pts68_fit_all, pts68_all, strict=True):
        minx, maxx = np.min(gt[0, :]), np.max(gt[0, :])
        miny, maxy = np.min(gt[1, :]), np.max(gt[1, :])
        llength = sqrt((maxx - minx) * (maxy - miny))
        dis = np.sqrt(np.sum((fit[:2, :] - gt[:2, :]) ** 2, 0))
        out.append(np.mean(dis) / llength)
    return np.array(out)


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    """The raw 3DDFA arrays: ``(N, 3, 68)`` 1-based ground truth and ``(N,)`` yaw degrees."""
    raw = np.load(PROTOCOL_DIR / "AFLW2000-3D.pts68.npy").astype(np.float64)
    yaw = np.load(PROTOCOL_DIR / "AFLW2000-3D.pose.npy").astype(np.float64)
    return raw, yaw


@requires_protocol
@pytest.mark.shared_data
class TestRealAflw2000Arrays:
    def test_loader_converts_to_0_based(self, arrays: tuple[np.ndarray, np.ndarray]) -> None:
        raw, yaw = arrays
        proto = load_aflw2000_3d_protocol(PROTOCOL_DIR)
        assert proto.gt.shape == (raw.shape[0], 68, 3)
        np.testing.assert_allclose(proto.gt[..., :2], raw[:, :2].transpose(0, 2, 1) - 1.0)
        np.testing.assert_allclose(proto.gt[..., 2], raw[:, 2])
        np.testing.assert_array_equal(proto.yaw_deg, yaw)
        assert proto.names is not None and len(proto.names) == raw.shape[0]
        assert proto.yaw_file == "AFLW2000-3D.pose.npy"
        re = load_aflw2000_3d_protocol(PROTOCOL_DIR, ground_truth="reannotated")
        assert re.gt.shape == (raw.shape[0], 68, 2)

    def test_gt_against_itself_is_zero(self) -> None:
        proto = load_aflw2000_3d_protocol(PROTOCOL_DIR)
        r = aflw2000_3d_protocol(proto.gt, proto.gt, proto.yaw_deg)
        assert r.nme_mean == 0.0 and r.nme_balanced == 0.0
        assert sum((r.bin_counts or {}).values()) == proto.gt.shape[0]

    def test_shift_matches_closed_form_and_3ddfa(
        self, arrays: tuple[np.ndarray, np.ndarray]
    ) -> None:
        raw, yaw = arrays
        proto = load_aflw2000_3d_protocol(PROTOCOL_DIR)
        r = aflw2000_3d_protocol(proto.gt + np.array([3.0, 4.0, 0.0]), proto.gt, proto.yaw_deg)
        # closed form: every point is 5 px off -> 5 / sqrt(w * h) of the raw GT box
        w = raw[:, 0].max(1) - raw[:, 0].min(1)
        h = raw[:, 1].max(1) - raw[:, 1].min(1)
        np.testing.assert_allclose(r.per_image, 500.0 / np.sqrt(w * h), rtol=1e-9)
        # 3DDFA's ana(): bins on |yaw|, headline = mean of the three bin means
        a = np.abs(yaw)
        masks = [a <= 30, np.bitwise_and(a > 30, a <= 60), a > 60]
        expected_bins = [float(np.mean(r.per_image[m])) for m in masks]
        assert r.bin_counts == {
            name: int(m.sum()) for (name, _, _), m in zip(YAW_BINS, masks, strict=True)
        }
        assert r.nme_bins is not None
        assert list(r.nme_bins.values()) == pytest.approx(expected_bins)
        assert r.nme_balanced == pytest.approx(float(np.mean(expected_bins)))
        # a noisy prediction, scored on the raw 1-based arrays by the 3DDFA-style loop
        rng = np.random.default_rng(0)
        fit = raw.copy()
        fit[:, :2] += rng.normal(0, 4, raw[:, :2].shape)
        ref = 100.0 * reference_3ddfa_nme(fit, raw)
        pred0 = fit[:, :2].transpose(0, 2, 1) - 1.0  # to 0-based, like a model's output
        r2 = aflw2000_3d_protocol(pred0, proto.gt, proto.yaw_deg)
        np.testing.assert_allclose(r2.per_image, ref, rtol=1e-9)

    def test_to_dict_is_json_ready(self) -> None:
        proto = load_aflw2000_3d_protocol(PROTOCOL_DIR)
        r = aflw2000_3d_protocol(proto.gt, proto.gt, proto.yaw_deg, ground_truth=proto.ground_truth)
        d = r.to_dict(per_image=True)
        assert isinstance(r, ProtocolResult)
        assert len(d["per_image"]) == proto.gt.shape[0]
        assert "AFLW2000-3D.pts68.npy" in d["protocol"]["ground_truth"]


def test_loader_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        load_aflw2000_3d_protocol(tmp_path)
    with pytest.raises(BadInputError, match="ground_truth"):
        load_aflw2000_3d_protocol(tmp_path, ground_truth="fitted")
