"""Export a trainable landmark model's network to ONNX and check it against PyTorch.

The exported graph is the training view: normalized crops ``(N, 3, S, S)`` → 68 points in crop
pixels ``(N, 68, 2|3)``, with a dynamic batch dimension. Cropping and mapping back to image
pixels stay in Python (they are cheap and depend on the face box). The ONNX file is only ever
loaded with ONNX Runtime.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mvface._io import atomic_path
from mvface.errors import BadInputError, NotAvailableError
from mvface.models.base import LandmarkModel
from mvface.models.trainable import TorchLandmarkModel


class _PointsGraph(nn.Module):
    """``forward_points`` of a model as a plain module (what ONNX records)."""

    def __init__(self, model: TorchLandmarkModel) -> None:
        super().__init__()
        self.model = model
        self.net = model.net  # registers the parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_points(x)


def _trainable(model: LandmarkModel) -> TorchLandmarkModel:
    if not isinstance(model, TorchLandmarkModel):
        raise NotAvailableError(
            f"model {model.config.name!r} has no PyTorch network to export (only trainable "
            "families can be exported)"
        )
    return model


def export_onnx(model: LandmarkModel, path: str | Path, opset: int = 17) -> Path:
    """Write ``model``'s network as ONNX (dynamic batch); its config goes into the metadata."""
    tm = _trainable(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = tm.config.input_size
    was_training = tm.net.training
    graph = _PointsGraph(tm).eval()
    example = torch.zeros(2, 3, size, size, device=tm.device)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            graph,
            (example,),
            str(tmp),
            input_names=["crops"],
            output_names=["points"],
            dynamic_axes={"crops": {0: "batch"}, "points": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
        _add_metadata(tmp, tm)
    tm.net.train(was_training)
    return path


def _add_metadata(path: Path, model: TorchLandmarkModel) -> None:
    try:
        import onnx
    except ImportError:  # the file is valid without metadata
        return
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "mvface_config", json.dumps(model.config.to_dict(), default=str)
    onnx.save(proto, str(path))


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
    tm = _trainable(model)
    size = tm.config.input_size
    gen = torch.Generator().manual_seed(seed)
    crops = torch.randint(0, 256, (batch, 3, size, size), generator=gen).float()
    x = tm.normalize(crops)
    was_training = tm.net.training
    tm.net.eval()  # the export is the eval-mode graph (BatchNorm with running statistics)
    try:
        with torch.no_grad():
            ref = tm.forward_points(x.to(tm.device)).cpu().numpy()
    finally:
        tm.net.train(was_training)
    session = onnx_session(path)
    out = session.run(None, {"crops": x.numpy()})[0]  # type: ignore[attr-defined]
    return float(np.abs(out - ref).max())
