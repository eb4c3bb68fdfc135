"""benchmarks/bench_detector.py on two images of one shared set: tables and the JSON record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _benchmarks import load_benchmark
from _shared import SHARED, requires_shared

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
    assert bench_detector.main([*argv, "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*.json")
    record = json.loads(path.read_text())
    rows = record["sets"]["300w-afw"]
    assert set(rows) == set(bench_detector.DETECTORS)
    assert rows["blazeface"]["faces"] == 2 and rows["blazeface"]["images"] == 2
    assert 0.0 <= rows["blazeface"]["recall_iou50"] <= 1.0
    out = capsys.readouterr().out
    assert "blazeface / blazeface-single-scale" in out and "x time" in out
