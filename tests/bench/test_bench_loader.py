"""benchmarks/bench_loader.py: the trainer's loader timed with 0 and 1 loader processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from _scripts import load_benchmark
from mvface.bench.results import read_result
from train.conftest import write_real, write_synthetic


def test_times_each_worker_count_and_writes_a_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    synthetic = write_synthetic(tmp_path / "syn", 3, 6, seed=0)
    real = write_real(tmp_path / "real", 4, seed=1)
    results = tmp_path / "results"
    argv = ["bench_loader.py", "--synthetic", str(synthetic), "--real", str(real)]
    argv += ["--model", "mvnet", "--identities", "2", "--views", "3", "--real-per-step", "2"]
    argv += ["--workers", "1", "--steps", "3", "--results", str(results)]
    monkeypatch.setattr(sys, "argv", argv)
    load_benchmark("bench_loader").main()
    out = capsys.readouterr().out
    assert " 0 workers:" in out and " 1 workers:" in out
    (path,) = (results / "loader").glob("*.json")
    run = read_result(path)
    assert run.title == "Fine-tuning data loading" and "8 crops" in run.tables[0].name
    assert [row[0] for row in run.tables[0].rows] == [0, 1]
    assert all(row[1] > 0 for row in run.tables[0].rows)  # steps/s
    assert "## Fine-tuning data loading" in (tmp_path / "BENCHMARKS.md").read_text()
