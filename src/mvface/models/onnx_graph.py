"""A trainable model's network as an ONNX graph: the rewrite ONNX Runtime runs fastest, the export.

The exported graph takes normalized crops ``(batch, 3, S, S)`` (dynamic batch, fixed ``S``) and
returns what one network method returns: the training view ``forward_points`` (68 points in crop
pixels) for ``mvface export onnx``, or the method a family's ``predict`` calls
(:mod:`mvface.models.onnx_engine`). Cropping and mapping back to image pixels stay in Python.
:mod:`mvface.export` is the user-facing module (it adds the parity check of a written file).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mvface._io import atomic_path
from mvface.errors import NotAvailableError
from mvface.models.base import LandmarkModel
from mvface.models.trainable import TorchLandmarkModel

__all__ = [
    "DecomposedPReLU",
    "export_module",
    "export_onnx",
    "fold_pads_into_convs",
    "onnx_ready",
    "trainable",
]


class DecomposedPReLU(nn.Module):
    """``PReLU`` written as ``a · x + (1 − a) · relu(x)``: the same function, other ONNX ops.

    ONNX Runtime's ``PRelu`` kernel broadcasts its per-channel slope slowly and cannot stay in
    the blocked (NCHWc) layout its convolutions use, so every PReLU also costs two layout
    reorders. On ``(N, C, H, W)`` maps the two per-channel products are 1 x 1 depthwise
    convolutions, which stay in that layout (elsewhere: ``Mul``). Measured on the face mesh
    network (23 PReLUs), one thread: ``PRelu`` 6.4 ms → ``Mul``/``Relu``/``Add`` 2.6 ms per
    192 px crop; at 128 px the convolutions take another 7 % off (1.61 → 1.48 ms).
    Each Relu also goes after a 1 x 1 convolution of its own, which ONNX Runtime fuses it into:
    ``(1 − a) · relu(x) = relu((1 − a) · x)`` where ``a ≤ 1``, and ``= −relu((a − 1) · x)``
    where ``a > 1`` (the sign is one more 1 x 1 convolution, only for layers that have such
    slopes: 5 of the face mesh's 23). Bit for bit the same in float32; the network at 128 px,
    one thread: −9 % at batch 1, −13 % at batch 8 (Intel Xeon, AVX-512).

    Args:
        prelu: the module replaced (its ``weight`` is shared, not copied).
    """

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        self.weight = prelu.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, ...)`` → same shape; the slope is per channel (dim 1) or one scalar."""
        channels = self.weight.numel()
        if x.ndim == 4 and channels > 1:
            kernel = self.weight.reshape(channels, 1, 1, 1)
            conv = nn.functional.conv2d
            if bool((self.weight <= 1).all()):
                return conv(x, kernel, groups=channels) + torch.relu(
                    conv(x, 1 - kernel, groups=channels)
                )
            sign = torch.where(kernel > 1, -1.0, 1.0)  # (1 − a)·relu(x) = sign·relu(|1 − a|·x)
            return conv(x, kernel, groups=channels) + conv(
                torch.relu(conv(x, (1 - kernel).abs(), groups=channels)), sign, groups=channels
            )
        shape = (1, -1) + (1,) * (x.ndim - 2) if channels > 1 else (1,)
        a = self.weight.reshape(shape)
        return a * x + (1 - a) * torch.relu(x)


def onnx_ready(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose layers export to the ONNX ops ONNX Runtime runs fastest.

    Outputs agree with ``module`` to float32 rounding; ``module`` itself is left as it is
    (PyTorch's own fused ``PReLU`` is the faster one for eager runs and training).
    """
    ready = copy.deepcopy(module)
    for parent in ready.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.PReLU):
                setattr(parent, name, DecomposedPReLU(child))
    return ready


class _MethodGraph(nn.Module):
    """One method of a network (or a model's ``forward_points``) as a plain module."""

    def __init__(self, owner: object, method: str, net: nn.Module) -> None:
        super().__init__()
        self.owner = owner
        self.method = method
        self.net = net  # registers the parameters

    def forward(self, x: torch.Tensor) -> object:
        return getattr(self.owner, self.method)(x)


def trainable(model: LandmarkModel) -> TorchLandmarkModel:
    if not isinstance(model, TorchLandmarkModel):
        raise NotAvailableError(
            f"model {model.config.name!r} has no PyTorch network to export (only trainable "
            "families can be exported)"
        )
    return model


def export_onnx(
    model: LandmarkModel,
    path: str | Path,
    opset: int = 17,
    method: str = "forward_points",
    outputs: tuple[str, ...] = ("points",),
) -> Path:
    """Write a network method of ``model`` as ONNX; its config goes into the metadata.

    Args:
        model: a trainable model.
        path: the ``.onnx`` file (written atomically).
        opset: ONNX opset.
        method: ``"forward_points"`` (the training view: crops → 68 points in crop pixels) or
            the name of a method of ``model.net`` (what a family's ``predict`` calls, e.g.
            ``forward_mesh``).
        outputs: names of the method's outputs, in order.

    The input is ``crops`` ``(batch, 3, S, S)`` normalized, with a dynamic batch; the spatial
    size is fixed to the model's input size. The graph is :func:`onnx_ready`'s rewrite.

    Raises:
        NotAvailableError: ``model`` has no PyTorch network, or no trained weights
            (:meth:`TorchLandmarkModel.require_trained`).
    """
    tm = trainable(model)
    tm.require_trained("be exported")
    size = tm.config.input_size
    net = onnx_ready(tm.net).eval()
    owner: object = net
    if method == "forward_points":
        owner = copy.copy(tm)
        owner.net = net
    graph = _MethodGraph(owner, method, net)
    example = torch.zeros(2, 3, size, size, device=tm.device)
    return _write_graph(graph, example, path, outputs, opset, lambda tmp: _add_metadata(tmp, tm))


def export_module(
    net: nn.Module,
    path: str | Path,
    input_size: int,
    outputs: tuple[str, ...],
    opset: int = 17,
    method: str = "forward",
) -> Path:
    """Write ``net.<method>`` (images ``(batch, 3, S, S)`` → ``outputs``) as ONNX, atomically.

    The same graph as :func:`export_onnx` (dynamic batch, :func:`onnx_ready`'s rewrite, pads
    folded) for a network that is not a landmark model's (a face detector's).
    """
    ready = onnx_ready(net).eval()
    graph = _MethodGraph(ready, method, ready)
    device = next(iter(net.parameters()), torch.zeros(0)).device
    example = torch.zeros(2, 3, input_size, input_size, device=device)
    return _write_graph(graph, example, path, outputs, opset)


def _write_graph(
    graph: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    outputs: tuple[str, ...],
    opset: int,
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Trace ``graph`` on ``example`` into ``path`` atomically: input ``crops`` and ``outputs``
    with a dynamic batch, pads folded into convolutions, then ``finish(tmp)`` (metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch"} for name in ("crops", *outputs)}
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings and the exporter's deprecation
        torch.onnx.export(
            graph,
            (example,),
            str(tmp),
            input_names=["crops"],
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
        fold_pads_into_convs(tmp)
        if finish is not None:
            finish(tmp)
    return path


def _plain_conv(node: Any) -> bool:
    """A ``Conv`` with explicit (or no) ``pads``: one that can take a Pad's amounts."""
    auto_pad = {a.name: a.s for a in node.attribute}.get("auto_pad", b"NOTSET")
    return bool(node.op_type == "Conv" and auto_pad == b"NOTSET")


def fold_pads_into_convs(path: str | Path) -> int:
    """Merge each zero ``Pad`` of an ONNX file into the ``Conv`` it feeds, in place.

    TF-"SAME" convolutions with stride 2 pad one side only; PyTorch has no such convolution, so
    the export writes a ``Pad`` node before it, and ONNX Runtime copies the whole feature map
    there and leaves its blocked layout around the copy (16 % of the face mesh network's time
    at 128 px, one thread: 1.62 → 1.37 ms). ONNX's ``Conv`` takes asymmetric ``pads`` itself.
    The exporter computes the pad amounts with shape arithmetic, so ONNX Runtime's basic
    (hardware-independent) graph optimization runs first and makes them constants; the file
    keeps only standard ONNX operators.

    Returns:
        The number of ``Pad`` nodes folded (0 when ``onnx`` or ``onnxruntime`` is missing: the
        file is then left as it is, and still correct).
    """
    try:
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper
    except ImportError:
        return 0
    path = Path(path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    proto = onnx.load(str(path))
    graph = proto.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    folded = 0
    for pad in [node for node in graph.node if node.op_type == "Pad"]:
        convs = users.get(pad.output[0], [])
        amounts = constants.get(pad.input[1]) if len(pad.input) > 1 else None
        feeds_data = all(_plain_conv(node) and node.input[0] == pad.output[0] for node in convs)
        if amounts is None or not convs or not feeds_data:
            continue
        mode = {a.name: a.s for a in pad.attribute}.get("mode", b"constant")
        value = pad.input[2] if len(pad.input) > 2 else ""
        begin, end = amounts[: len(amounts) // 2], amounts[len(amounts) // 2 :]
        if mode != b"constant" or value or len(begin) != 4 or (amounts < 0).any():
            continue  # not zeros, not 4-D, or a crop
        if begin[:2].any() or end[:2].any():
            continue  # batch or channels padded
        for conv in convs:  # one Pad may feed several convolutions (e.g. two heads)
            old = next((list(a.ints) for a in conv.attribute if a.name == "pads"), [0, 0, 0, 0])
            pads = [old[0] + begin[2], old[1] + begin[3], old[2] + end[2], old[3] + end[3]]
            for attribute in [a for a in conv.attribute if a.name == "pads"]:
                conv.attribute.remove(attribute)
            conv.attribute.append(onnx.helper.make_attribute("pads", [int(p) for p in pads]))
            conv.input[0] = pad.input[0]
        graph.node.remove(pad)
        folded += 1
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)  # the folded pads' amounts
    # ONNX Runtime declares every operator domain it knows; keep those the graph uses
    domains = {node.domain for node in graph.node} | {""}
    kept = [opset for opset in proto.opset_import if opset.domain in domains]
    del proto.opset_import[:]
    proto.opset_import.extend(kept)
    onnx.save(proto, str(path))
    return folded


def _add_metadata(path: Path, model: TorchLandmarkModel) -> None:
    try:
        import onnx
    except ImportError:  # the file is valid without metadata
        return
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "mvface_config", json.dumps(model.config.to_dict(), default=str)
    onnx.save(proto, str(path))
