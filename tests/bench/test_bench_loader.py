"""benchmarks/bench_loader.py: the trainer's loader timed with 0 and 1 loader processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from _benchmarks import load_benchmark
from train.conftest import write_real, write_synthetic


def test_times_each_worker_count_and_appends_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    synthetic = write_synthetic(tmp_path / "syn", 3, 6, seed=0)
    real = write_real(tmp_path / "real", 4, seed=1)
    table = tmp_path / "bench.md"
    argv = ["bench_loader.py", "--synthetic", str(synthetic), "--real", str(real)]
    argv += ["--model", "mvnet", "--identities", "2", "--views", "3", "--real-per-step", "2"]
    argv += ["--workers", "1", "--steps", "3", "--markdown", str(table)]
    monkeypatch.setattr(sys, "argv", argv)
    load_benchmark("bench_loader").main()
    out = capsys.readouterr().out
    assert " 0 workers:" in out and " 1 workers:" in out
    text = table.read_text()
    assert "## Fine-tuning data loading" in text and "8 crops" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "steps" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "1"]
    assert all(float(row.split("|")[2]) > 0 for row in rows)
