import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from mvface.errors import BadInputError, NotAvailableError
from mvface.export import (
    DecomposedPReLU,
    export_onnx,
    fold_pads_into_convs,
    onnx_parity,
    onnx_ready,
    onnx_session,
)
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

    @pytest.mark.parametrize("high", [1.0, 1.5])
    def test_decomposed_prelu_on_maps_with_slopes_up_to_one_or_above(self, high: float) -> None:
        # slopes <= 1 take the relu((1 - a) x) form, any slope above 1 the signed form
        torch.manual_seed(1)
        prelu = nn.PReLU(5)
        with torch.no_grad():
            prelu.weight.uniform_(-1.5, high)
        x = torch.randn(3, 5, 6, 4)
        assert torch.allclose(DecomposedPReLU(prelu)(x), prelu(x), atol=1e-6)

    @pytest.mark.parametrize("slopes", [(-0.5, 0.0, 0.25, 1.0), (-0.5, 0.0, 1.5, 1.0)])
    def test_the_relu_gets_a_convolution_of_its_own(
        self, tmp_path: Path, slopes: tuple[float, ...]
    ) -> None:
        # ONNX Runtime fuses a Relu into the convolution before it, not into an Add
        onnx = pytest.importorskip("onnx")
        net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.PReLU(4))
        with torch.no_grad():
            net[1].weight.copy_(torch.tensor(slopes))
        x = torch.randn(2, 3, 5, 5)
        assert torch.allclose(onnx_ready(net)(x), net(x), atol=1e-6)
        path = tmp_path / "prelu.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(onnx_ready(net), (torch.zeros(1, 3, 4, 4),), str(path), dynamo=False)
        nodes = onnx.load(str(path)).graph.node
        producer = {out: node.op_type for node in nodes for out in node.output}
        relus = [node for node in nodes if node.op_type == "Relu"]
        assert len(relus) == 1 and producer[relus[0].input[0]] == "Conv"
        # ... a convolution of its own: its output feeds nothing else, so the two can fuse
        readers = [node for node in nodes if relus[0].input[0] in node.input]
        assert readers == [relus[0]]

    def test_rewrite_leaves_the_original_and_keeps_the_function(self) -> None:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(4), nn.Sequential(nn.PReLU()))
        ready = onnx_ready(net)
        assert not any(isinstance(m, nn.PReLU) for m in ready.modules())
        assert sum(isinstance(m, nn.PReLU) for m in net.modules()) == 2
        x = torch.randn(2, 3, 8, 8)
        assert torch.allclose(ready(x), net(x), atol=1e-6)

    @pytest.mark.parametrize(("name", "size"), [("mediapipe-68", 192), ("fast", 128)])
    def test_face_mesh_export_has_no_prelu_shape_arithmetic_or_conv_pads(
        self, tmp_path: Path, name: str, size: int
    ) -> None:
        onnx = pytest.importorskip("onnx")
        model = create_model(name)
        path = export_onnx(model, tmp_path / "mp.onnx", method="forward_mesh", outputs=("m", "s"))
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
        assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
        graph = proto.graph
        ops = [node.op_type for node in graph.node]
        assert "PRelu" not in ops and "Shape" not in ops
        # every TF-"SAME" stride-2 pad went into its convolution; the pads left widen the
        # channels of the residual shortcuts (3 in the backbone)
        padded = {node.output[0] for node in graph.node if node.op_type == "Pad"}
        assert not any(n.op_type == "Conv" and n.input[0] in padded for n in graph.node)
        assert len(padded) == 3
        session = onnx_session(path)
        for batch in (1, 3):
            x = torch.rand(batch, 3, size, size)
            mesh = session.run(None, {"crops": x.numpy()})[0]  # type: ignore[attr-defined]
            with torch.no_grad():
                ref = model.net.forward_mesh(x)[0].numpy()
            assert abs(mesh - ref).max() < 1e-3


def test_fold_pads_into_convs_keeps_the_function(tmp_path: Path) -> None:
    """A zero Pad before a Conv (asymmetric, as TF-"SAME" stride 2) is merged into the Conv."""
    onnx = pytest.importorskip("onnx")

    class PadConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(nn.functional.pad(x, (0, 1, 2, 1)))

    torch.manual_seed(0)
    net = PadConv().eval()
    x = torch.randn(2, 3, 10, 10)
    path = tmp_path / "pc.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["crops"], dynamo=False)
    assert fold_pads_into_convs(path) == 1
    (conv,) = onnx.load(str(path)).graph.node
    assert conv.op_type == "Conv"
    assert next(list(a.ints) for a in conv.attribute if a.name == "pads") == [2, 0, 1, 1]
    out = onnx_session(path).run(None, {"crops": x.numpy()})[0]  # type: ignore[attr-defined]
    with torch.no_grad():
        assert abs(out - net(x).numpy()).max() < 1e-5
