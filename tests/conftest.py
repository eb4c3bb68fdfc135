"""Settings every test run shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _scripts import load_tool
from mvface.models.mediapipe_mesh import DEFAULT_WEIGHTS_PATH, FaceMeshNet, load_facemesh

# ONNX graphs the inference engine exports (mvface.models.onnx_engine) go to the repository's
# pytest cache, never to the user's ~/.cache; kept between runs (the key covers the weights).
os.environ.setdefault(
    "MVFACE_CACHE", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "mvface-onnx")
)


@pytest.fixture(scope="module")
def facemesh() -> FaceMeshNet:
    """The shipped face mesh network (skipped when its weights are absent)."""
    if not DEFAULT_WEIGHTS_PATH.is_file():
        pytest.skip(f"{DEFAULT_WEIGHTS_PATH} absent")
    return load_facemesh()


@pytest.fixture(scope="module")
def tflite_path() -> Path:
    """MediaPipe's ``face_landmark.tflite`` (skipped when it cannot be found)."""
    path = load_tool("convert_facemesh").find_mediapipe_tflite()
    if path is None:
        pytest.skip("face_landmark.tflite not found (set MVFACE_FACEMESH_TFLITE)")
    return Path(path)
