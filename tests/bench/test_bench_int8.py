"""benchmarks/bench_int8.py: int8 vs float32 face mesh network on a few real faces."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mvface.bench.inference import default_shared_root

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_int8.py"
HELEN = default_shared_root() / "data" / "300w" / "helen_testset"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_int8", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not HELEN.is_dir(), reason=f"needs the 300-W HELEN test set in {HELEN}")
def test_quantizes_fast_and_times_both_batch_sizes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime.quantization")
    argv = ["bench_int8.py", "--model", "fast", "--faces", "2", "--calibration", "2"]
    argv += ["--batch", "3", "--repeats", "2", "--warmup", "0"]
    monkeypatch.setattr(sys, "argv", argv)
    _script().main()
    out = capsys.readouterr().out
    moved = re.search(r"fast: int8 vs float32 points on 2 faces: mean ([0-9.]+) px", out)
    assert moved is not None and 0.0 < float(moved.group(1)) < 20.0  # quantized, still a face
    assert "network, batch 1, 1 thread" in out and "network, batch 3, 1 thread" in out


def test_rejects_a_model_outside_the_face_mesh_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["bench_int8.py", "--model", "mvnet"])
    with pytest.raises(SystemExit) as exit_info:
        _script().main()
    assert exit_info.value.code == 2
