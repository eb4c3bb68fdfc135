"""Tests of mvface.eval.report and mvface.eval.plots: files, keys, atomic writes, tables."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

import mvface.eval.report as report_module
from mvface.errors import BadInputError
from mvface.eval.plots import plot_ced, plot_nme_by_yaw
from mvface.eval.protocols import aflw2000_3d_protocol, ibug_300w_protocol
from mvface.eval.report import REPORT_FILES, EvalReport, format_table, render_table, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REQUIRED_KEYS = {
    "dataset",
    "model",
    "n",
    "nme_mean",
    "nme_balanced",
    "protocol",
    "auc",
    "failure_rate",
}


def faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gt = rng.uniform(50, 250, (n, 68, 2))
    gt[:, 36] = (100.0, 120.0)
    gt[:, 45] = (160.0, 120.0)
    return gt


def aflw_report(n: int = 12, yaw: np.ndarray | None = None) -> EvalReport:
    gt = faces(n)
    pred = gt + np.random.default_rng(1).normal(0, 3, gt.shape)
    yaw = np.linspace(-89, 89, n) if yaw is None else yaw
    result = aflw2000_3d_protocol(pred, gt, yaw, ground_truth="original", crop="gt box")
    return EvalReport(
        dataset="synthetic AFLW",
        model="noisy-gt",
        result=result,
        names=[f"img{i:03d}.jpg" for i in range(n)],
        predictions=pred,
        extras={
            "ms_per_face": 1.5,
            "device": "cpu",
            "skipped": ["a: bad"],
            "limit": None,
            "array": np.array([1.0, np.nan]),
            "nested": {"scale": np.float32(2.0), "missing": float("nan")},
        },
    )


def strict_json(path: Path) -> Any:
    def no_constants(name: str) -> NoReturn:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=no_constants)


class TestWriteReport:
    def test_writes_all_files(self, tmp_path: Path) -> None:
        rep = aflw_report()
        out = tmp_path / "run" / "nested"
        paths = write_report(rep, out)
        assert set(paths) == set(REPORT_FILES)
        assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)  # no temp files
        metrics = strict_json(out / "metrics.json")
        assert set(metrics) >= REQUIRED_KEYS
        assert set(metrics["nme_bins"]) == {"0-30", "30-60", "60-90"}
        assert metrics["n"] == 12 and metrics["dataset"] == "synthetic AFLW"
        assert metrics["nme_balanced"] == pytest.approx(rep.result.nme_balanced)
        assert metrics["protocol"]["nme_units"] == "percent"
        assert metrics["extras"]["ms_per_face"] == 1.5
        assert metrics["extras"]["array"] == [1.0, None]
        assert metrics["extras"]["nested"] == {"scale": 2.0, "missing": None}
        with open(out / "per_image.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["name", "nme_percent", "yaw_deg", "yaw_bin"]
        assert len(rows) == 12 and rows[0]["name"] == "img000.jpg" and rows[0]["yaw_bin"] == "60-90"
        np.testing.assert_allclose(
            [float(r["nme_percent"]) for r in rows], rep.result.per_image, atol=1e-6
        )
        np.testing.assert_array_equal(np.load(out / "predictions.npy"), rep.predictions)
        png = (out / "ced.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000

    def test_300w_report_has_no_bins(self, tmp_path: Path) -> None:
        gt = faces(5)
        result = ibug_300w_protocol(gt + 1.0, gt, subset="afw")
        rep = EvalReport("300-W afw", "m", result, [str(i) for i in range(5)], gt + 1.0)
        write_report(rep, tmp_path)
        metrics = strict_json(tmp_path / "metrics.json")
        assert set(metrics) >= REQUIRED_KEYS
        assert "nme_bins" not in metrics and metrics["nme_balanced"] is None
        assert metrics["extra"]["auc@10%"] == pytest.approx(1 - 100 * math.sqrt(2) / 60 / 10)
        header = (tmp_path / "per_image.csv").read_text().splitlines()[0]
        assert header == "name,nme_percent"

    def test_nan_becomes_null(self, tmp_path: Path) -> None:
        rep = aflw_report(n=3, yaw=np.array([0.0, 5.0, 10.0]))  # two empty bins
        write_report(rep, tmp_path)
        metrics = strict_json(tmp_path / "metrics.json")
        assert metrics["nme_balanced"] is None
        assert metrics["nme_bins"]["30-60"] is None and metrics["bin_counts"]["30-60"] == 0

    def test_failed_write_leaves_no_temp_and_keeps_old_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        rep = aflw_report()
        write_report(rep, tmp_path)
        old = (tmp_path / "ced.png").read_bytes()

        def broken_plot(curves: Any, out_path: Path, **kwargs: Any) -> NoReturn:
            Path(out_path).write_bytes(b"half a png")
            raise RuntimeError("disk full")

        monkeypatch.setattr(report_module, "plot_ced", broken_plot)
        with pytest.raises(RuntimeError, match="disk full"):
            write_report(rep, tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(REPORT_FILES)
        assert (tmp_path / "ced.png").read_bytes() == old

    def test_rewrite_replaces(self, tmp_path: Path) -> None:
        write_report(aflw_report(n=12), tmp_path)
        write_report(aflw_report(n=6), tmp_path)
        assert strict_json(tmp_path / "metrics.json")["n"] == 6
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(REPORT_FILES)

    def test_mismatched_names(self) -> None:
        rep = aflw_report(n=4)
        with pytest.raises(BadInputError, match="3 names for 4"):
            EvalReport("d", "m", rep.result, ["a", "b", "c"], rep.predictions)


class TestTables:
    def test_table_states_protocol(self) -> None:
        rep = aflw_report()
        table = format_table(rep)
        assert "noisy-gt" in str(table.title) and "synthetic AFLW" in str(table.title)
        caption = str(table.caption)
        for needle in ("sqrt(w*h)", "AFLW2000-3D.pose.npy", "original", "gt box", "percent"):
            assert needle in caption
        text = render_table(rep)
        assert "\x1b[" not in text
        for needle in ("0-30", "30-60", "60-90", "balanced", "AUC@7%", "ms_per_face"):
            assert needle in text
        assert f"{rep.result.nme_balanced:.3f}" in text

    def test_table_300w(self) -> None:
        gt = faces(4)
        result = ibug_300w_protocol(gt + 1.0, gt)
        text = render_table(EvalReport("300-W", "m", result, list("abcd"), gt + 1.0))
        assert "AUC@8%" in text and "AUC@10%" in text and "36, 45" in text
        assert "balanced" not in text


class TestPlots:
    def test_plot_ced_two_methods(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(0)
        out = plot_ced(
            {"A": rng.gamma(2, 1.5, 200), "B": rng.gamma(2, 2.5, 200)},
            tmp_path / "ced.png",
            max_threshold=10.0,
            auc_threshold=7.0,
            title="test",
        )
        assert out.read_bytes().startswith(PNG_MAGIC)

    def test_plot_nme_by_yaw(self, tmp_path: Path) -> None:
        a, b = aflw_report(n=12), aflw_report(n=9)
        out = plot_nme_by_yaw({"A": a.result, "B": b.result}, tmp_path / "yaw.png")
        assert out.read_bytes().startswith(PNG_MAGIC)

    def test_plot_nme_by_yaw_needs_bins(self, tmp_path: Path) -> None:
        gt = faces(3)
        with pytest.raises(BadInputError, match="no yaw bins"):
            plot_nme_by_yaw({"A": ibug_300w_protocol(gt, gt)}, tmp_path / "x.png")

    def test_plot_ced_needs_curves(self, tmp_path: Path) -> None:
        with pytest.raises(BadInputError):
            plot_ced({}, tmp_path / "x.png")
