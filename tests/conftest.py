"""Settings every test run shares."""

from __future__ import annotations

import os
from pathlib import Path

# ONNX graphs the inference engine exports (mvface.models.onnx_engine) go to the repository's
# pytest cache, never to the user's ~/.cache; kept between runs (the key covers the weights).
os.environ.setdefault(
    "MVFACE_CACHE", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "mvface-onnx")
)
