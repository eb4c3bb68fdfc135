"""Running a TFLite model in the reference interpreter (ai-edge-litert), for parity tests.

The interpreter pulls protobuf/ml_dtypes versions the project venv does not want, so it may live
in another Python: ``MVFACE_LITERT_PYTHON`` names it. Each test passes a small script that reads
``(tflite_path, inputs.npy, outputs.npz)`` from ``sys.argv``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

LITERT_PYTHON_ENV = "MVFACE_LITERT_PYTHON"


def litert_python() -> str | None:
    """A Python that can run the TFLite interpreter, or ``None``."""
    if importlib.util.find_spec("ai_edge_litert") is not None:
        return sys.executable
    return os.environ.get(LITERT_PYTHON_ENV) or None


def run_litert_script(
    script: str, tflite_path: Path, inputs: np.ndarray, python: str
) -> dict[str, np.ndarray]:
    """Run ``script`` in a subprocess of ``python`` on float32 ``inputs``; its saved arrays."""
    with tempfile.TemporaryDirectory() as tmp:
        in_path, out_path = Path(tmp) / "inputs.npy", Path(tmp) / "outputs.npz"
        np.save(in_path, np.asarray(inputs, dtype=np.float32))
        done = subprocess.run(
            [python, "-c", script, str(tflite_path), str(in_path), str(out_path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"TFLite interpreter failed in {python}:\n{done.stderr}")
        with np.load(out_path) as out:
            return {k: out[k] for k in out.files}
