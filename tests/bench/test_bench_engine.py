"""benchmarks/bench_engine.py: measured rows become one ``engine`` result with its four goals."""

import argparse
import sys
from pathlib import Path

import pytest

from _scripts import load_benchmark
from mvface.bench.results import read_result, record_run


def _args(tmp_path: Path) -> argparse.Namespace:
    return argparse.Namespace(
        shared=tmp_path, images=tmp_path, limit=None, rounds=1, repeats=5, warmup=1, faces=4,
        batch_repeats=2, skip_detect=False, results=str(tmp_path / "results"),
    )  # fmt: skip


def test_rows_become_an_engine_result_with_goals(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bench = load_benchmark("bench_engine")
    monkeypatch.setattr(sys, "argv", ["bench_engine.py", "--limit", "4"])
    load_rows = [
        {"model": "fast", "engine": "onnx", "ms_per_face": 2.0, "faces_per_s": 900.0},
        {"model": "fast (torch)", "engine": "torch", "ms_per_face": 8.0, "faces_per_s": 200.0},
        {"model": "3ddfa-v2", "engine": "onnx", "ms_per_face": 2.5, "faces_per_s": 700.0},
        {"model": "dlib", "engine": "native", "ms_per_face": 3.0, "faces_per_s": 400.0},
    ]
    detect_rows = [
        {"command": "mvface detect (default)", "seconds": 10.0, "images_per_s": 33.0,
         "startup_s": 5.0, "steady_images_per_s": 65.8, "exit": 0},
        {"command": "--model dlib --detector dlib-hog", "seconds": 40.0, "images_per_s": 8.25,
         "startup_s": 5.0, "steady_images_per_s": 9.4, "exit": 0},
        {"command": "--engine torch", "seconds": 12.0, "images_per_s": 27.5,
         "startup_s": 5.0, "steady_images_per_s": 47.0, "exit": 0},
    ]  # fmt: skip
    run = bench.result(_args(tmp_path), load_rows, detect_rows, "4 faces", 330, {}, ["a note"])
    path, page = record_run(run, tmp_path / "results")
    again = read_result(path)
    assert (
        path.parent.name == "engine"
        and again.command == "python benchmarks/bench_engine.py --limit 4"
    )
    assert [g["met"] for g in again.goals] == [True, True, True, False]  # 27.5 * 1.5 > 33
    assert "ratio 0.80" in again.goals[0]["measured"]  # 2.0 / 2.5 ms
    assert again.tables[0].rows[0][3] == pytest.approx(0.8)  # ÷ 3ddfa-v2
    assert again.tables[1].rows[1][3] == pytest.approx(4.0)  # default ÷ dlib's command
    assert "results" not in again.arguments and "a note" in again.notes
    assert "The speed users get" in page.read_text()


def test_a_peer_not_measured_leaves_its_goal_open(tmp_path: Path) -> None:
    bench = load_benchmark("bench_engine")
    rows = [{"model": "fast", "engine": "onnx", "ms_per_face": 2.0, "faces_per_s": 900.0}]
    goals = bench.goals(rows, [])
    assert [g["met"] for g in goals] == [None, None, None, None]


def test_limit_links_the_first_images(tmp_path: Path) -> None:
    bench = load_benchmark("bench_engine")
    root = tmp_path / "root"
    root.mkdir()
    for name in ("b.jpg", "a.jpg", "a.pts", "c.png"):
        (root / name).write_bytes(b"x")
    (tmp_path / "work").mkdir()
    folder, count = bench.image_folder(root, 2, tmp_path / "work")
    assert count == 2 and sorted(p.name for p in folder.iterdir()) == ["a.jpg", "b.jpg"]
    assert bench.image_folder(root, None, tmp_path / "work") == (root, 3)
