"""Export a trainable landmark model's network to ONNX and check it against PyTorch.

The exported graph is the training view: normalized crops ``(N, 3, S, S)`` → 68 points in crop
pixels ``(N, 68, 2|3)``, with a dynamic batch dimension. Cropping and mapping back to image
pixels stay in Python (they are cheap and depend on the face box). The ONNX file is only ever
loaded with ONNX Runtime. The graph itself is built by :mod:`mvface.models.onnx_graph` (the
inference engine, :mod:`mvface.models.onnx_engine`, uses the same export).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mvface.errors import BadInputError, NotAvailableError
from mvface.models.base import LandmarkModel
from mvface.models.onnx_graph import (
    DecomposedPReLU,
    export_onnx,
    fold_pads_into_convs,
    onnx_ready,
    trainable,
)
from mvface.models.trainable import eval_mode

__all__ = [
    "DecomposedPReLU",
    "export_onnx",
    "fold_pads_into_convs",
    "onnx_parity",
    "onnx_ready",
    "onnx_session",
]


def onnx_session(path: str | Path) -> object:
    """An ONNX Runtime session on the CPU (raises NotAvailableError without onnxruntime)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise NotAvailableError("onnxruntime is not installed: pip install onnxruntime") from None
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "ONNX file does not exist")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise BadInputError(path, f"not a loadable ONNX model ({type(exc).__name__})") from None


def onnx_parity(model: LandmarkModel, path: str | Path, batch: int = 3, seed: int = 0) -> float:
    """Largest absolute difference in crop pixels between ONNX Runtime and PyTorch.

    Inputs are seeded random crops in the network's normalized range, at batch size ``batch``
    (different from the export's example batch, to exercise the dynamic axis).
    """
    tm = trainable(model)
    size = tm.config.input_size
    gen = torch.Generator().manual_seed(seed)
    crops = torch.randint(0, 256, (batch, 3, size, size), generator=gen).float()
    x = tm.normalize(crops)
    # the export is the eval-mode graph (BatchNorm with running statistics)
    with eval_mode(tm.net), torch.no_grad():
        ref = tm.forward_points(x.to(tm.device)).cpu().numpy()
    session = onnx_session(path)
    out = session.run(None, {"crops": x.numpy()})[0]  # type: ignore[attr-defined]
    return float(np.abs(out - ref).max())
