from pathlib import Path

import pytest
import torch
from torch import nn

from mvface.errors import BadInputError, NotAvailableError
from mvface.export import DecomposedPReLU, export_onnx, onnx_parity, onnx_ready, onnx_session
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


class TestOnnxReady:
    @pytest.mark.parametrize("channels,shape", [(4, (2, 4, 5, 3)), (1, (3, 4, 7)), (6, (2, 6))])
    def test_decomposed_prelu_equals_prelu(self, channels: int, shape: tuple[int, ...]) -> None:
        torch.manual_seed(0)
        prelu = nn.PReLU(channels)
        with torch.no_grad():
            prelu.weight.uniform_(-0.5, 1.5)
        x = torch.randn(shape)
        assert torch.allclose(DecomposedPReLU(prelu)(x), prelu(x), atol=1e-6)

    def test_rewrite_leaves_the_original_and_keeps_the_function(self) -> None:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(4), nn.Sequential(nn.PReLU()))
        ready = onnx_ready(net)
        assert not any(isinstance(m, nn.PReLU) for m in ready.modules())
        assert sum(isinstance(m, nn.PReLU) for m in net.modules()) == 2
        x = torch.randn(2, 3, 8, 8)
        assert torch.allclose(ready(x), net(x), atol=1e-6)

    def test_face_mesh_export_has_no_prelu_or_shape_arithmetic(self, tmp_path: Path) -> None:
        onnx = pytest.importorskip("onnx")
        model = create_model("mediapipe-68")
        path = export_onnx(model, tmp_path / "mp.onnx", method="forward_mesh", outputs=("m", "s"))
        ops = [node.op_type for node in onnx.load(str(path)).graph.node]
        assert "PRelu" not in ops
        assert ops.count("Shape") == 1  # the batch size of the final reshape; pads are constant
        session = onnx_session(path)
        x = torch.rand(3, 3, 192, 192)
        mesh = session.run(None, {"crops": x.numpy()})[0]  # type: ignore[attr-defined]
        with torch.no_grad():
            ref = model.net.forward_mesh(x)[0].numpy()
        assert abs(mesh - ref).max() < 1e-3
