"""benchmarks/bench_detector.py on two images of one shared set: tables and the JSON record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _scripts import load_benchmark
from _shared import SHARED, requires_shared
from mvface.bench.results import read_result

bench_detector = load_benchmark("bench_detector")


def test_count_duplicates_uses_the_merge_rule() -> None:
    boxes = np.array([[0, 0, 100, 100], [10, 10, 60, 60], [200, 0, 300, 100]], float)
    assert bench_detector.count_duplicates(boxes) == 1  # the box inside a box
    assert bench_detector.count_duplicates(np.zeros((0, 4))) == 0


@pytest.mark.shared_data
@requires_shared("data/300w/afw")
def test_run_writes_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dlib")
    argv = ["--data-root", str(SHARED / "data"), "--sets", "300w-afw", "--limit", "2"]
    assert bench_detector.main([*argv, "--results", str(tmp_path / "results")]) == 0
    (path,) = (tmp_path / "results" / "detector").glob("*.json")
    result = read_result(path)
    (table,) = result.tables
    (row,) = table.rows
    assert row[0] == "300w-afw" and row[1] == 2
    assert all(0.0 <= recall <= 1.0 for recall in row[2:5])
    assert row[7] > 0 and row[8] > 0  # time ratios against the old pair and dlib HOG
    assert (tmp_path / "BENCHMARKS.md").read_text().count("Face detectors") == 1
    out = capsys.readouterr().out
    assert "blazeface / blazeface-single-scale" in out and "x time" in out
