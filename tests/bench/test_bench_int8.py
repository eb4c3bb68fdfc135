"""benchmarks/bench_int8.py: int8 vs float32 face mesh network on a few real faces."""

from __future__ import annotations

import re
import sys

import pytest

from _scripts import load_benchmark
from _shared import requires_shared


@requires_shared("data/300w/helen_testset")
def test_quantizes_fast_and_times_both_batch_sizes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime.quantization")
    argv = ["bench_int8.py", "--model", "fast", "--faces", "2", "--calibration", "2"]
    argv += ["--batch", "3", "--repeats", "2", "--warmup", "0"]
    monkeypatch.setattr(sys, "argv", argv)
    load_benchmark("bench_int8").main()
    out = capsys.readouterr().out
    moved = re.search(r"fast: int8 vs float32 points on 2 faces: mean ([0-9.]+) px", out)
    assert moved is not None and 0.0 < float(moved.group(1)) < 20.0  # quantized, still a face
    assert "network, batch 1, 1 thread" in out and "network, batch 3, 1 thread" in out


def test_rejects_a_model_outside_the_face_mesh_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["bench_int8.py", "--model", "mvnet"])
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark("bench_int8").main()
    assert exit_info.value.code == 2
