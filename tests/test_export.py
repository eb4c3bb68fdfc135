from pathlib import Path

import pytest
import torch
from torch import nn

from mvface.errors import BadInputError, NotAvailableError
from mvface.export import export_onnx, onnx_parity, onnx_session
from mvface.models import create_model
from mvface.models.base import ModelConfig
from mvface.models.trainable import TorchLandmarkModel

pytest.importorskip("onnxruntime")


class _Tiny(TorchLandmarkModel):
    def __init__(self) -> None:
        torch.manual_seed(0)
        self.config = ModelConfig(name="tiny", input_size=16, output="68x3")
        self.net = nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(196, 204)
        )

    def forward_points(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(-1, 68, 3)


def test_export_and_parity(tmp_path: Path) -> None:
    path = export_onnx(_Tiny(), tmp_path / "tiny.onnx")
    assert path.stat().st_size > 0
    assert onnx_parity(_Tiny(), path, batch=5) < 1e-4


def test_non_trainable_model_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    with pytest.raises(NotAvailableError, match="no PyTorch network"):
        export_onnx(create_model("dlib"), tmp_path / "d.onnx")


def test_garbage_onnx_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    with pytest.raises(BadInputError, match="not a loadable ONNX model"):
        onnx_session(bad)
