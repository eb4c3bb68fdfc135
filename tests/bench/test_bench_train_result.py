"""benchmarks/bench_train.py: a run's timings become one result with the cost goals checked."""

import argparse
import sys
from pathlib import Path

import pytest

from _scripts import load_benchmark
from mvface.bench.results import read_result, record_run


def test_timings_become_a_train_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_benchmark("bench_train")
    monkeypatch.setattr(sys, "argv", ["bench_train.py", "--model", "mvnet", "--repeats", "3"])
    args = argparse.Namespace(
        model="mvnet", options="{}", repeats=3, warmup=1, device="cpu", identities=4, views=32,
        results=str(tmp_path / "results"), child_memory=False,
    )  # fmt: skip
    timing = {
        "base": 10.0,
        "plugin": 12.0,
        "shape": "12 real + 4 x 32 synthetic at 128 px",
        "images_per_step": 140,
        "loss_compiled": False,
        "loss_only_ms_per_step": 5.0,
    }
    memory = {"peak_mib": 9000.0, "peak_before_step_mib": 400.0}
    path, page = record_run(bench.result(args, timing, memory, None), args.results)
    run = read_result(path)
    assert path.parent.name == "train" and run.variant == "mvnet, plug-in loss eager"
    assert run.command == "python benchmarks/bench_train.py --model mvnet --repeats 3"
    assert run.tables[0].rows[1][1:] == [12.0, 1000 / 12.0, 1.2]  # ms, images/s, ÷ base
    assert [g["met"] for g in run.goals] == [False, False]  # 1.2 > 1.15; 8.8 GiB > 8 GB
    assert "results" not in run.arguments and run.arguments["repeats"] == 3
    assert "## Training cost of the plug-in" in page.read_text()
