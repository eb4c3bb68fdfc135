"""Inverted-residual backbones (MobileNetV2, MobileNetV3-Small) built only from ``torch.nn``.

The backbone of :mod:`mvface.models.mvnet`: the papers' block tables (:data:`BACKBONES`) at a
channel multiplier, returning the feature maps at strides 4, 8, 16 and 32 that its heads use.
Written out here rather than taken from timm / torchvision, which do not load beside mvface's
local torch build (see :mod:`mvface.models.mvnet`).

Example:
    >>> backbone = InvertedResidualBackbone("mobilenetv2", width=0.35)
    >>> [f.shape[-1] for f in backbone(torch.zeros(1, 3, 64, 64))]
    [16, 8, 4, 2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

__all__ = [
    "BACKBONES",
    "Activation",
    "BackboneName",
    "BlockSpec",
    "ConvBNAct",
    "InvertedResidual",
    "InvertedResidualBackbone",
    "SqueezeExcite",
    "make_divisible",
]

BackboneName = Literal["mobilenetv2", "mobilenetv3_small"]
Activation = Literal["relu", "relu6", "hardswish"]


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual block, as in the papers' tables (channels at width 1).

    Attributes:
        kernel: depthwise kernel size.
        expand: expansion ratio of the input channels (hidden = ``expand * in_channels``).
        out_channels: output channels.
        stride: 1 or 2 (the depthwise conv downsamples).
        se: squeeze-and-excitation after the depthwise conv.
        act: activation of the expansion and depthwise convs (the projection is linear).
    """

    kernel: int
    expand: float
    out_channels: int
    stride: int = 1
    se: bool = False
    act: Activation = "relu6"


def _mbv2_stage(expand: float, channels: int, repeats: int, stride: int) -> list[BlockSpec]:
    """MobileNetV2 table row ``(t, c, n, s)``: ``n`` blocks, the first one with stride ``s``."""
    return [BlockSpec(3, expand, channels, stride if i == 0 else 1) for i in range(repeats)]


#: Stem channels (3 x 3 stride-2 conv) and blocks of each backbone, at width 1.
BACKBONES: dict[str, tuple[int, Activation, tuple[BlockSpec, ...]]] = {
    # MobileNetV2 (Sandler et al. 2018, table 2), without the final 1 x 1 conv to 1280.
    "mobilenetv2": (
        32,
        "relu6",
        (
            *_mbv2_stage(1, 16, 1, 1),
            *_mbv2_stage(6, 24, 2, 2),
            *_mbv2_stage(6, 32, 3, 2),
            *_mbv2_stage(6, 64, 4, 2),
            *_mbv2_stage(6, 96, 3, 1),
            *_mbv2_stage(6, 160, 3, 2),
            *_mbv2_stage(6, 320, 1, 1),
        ),
    ),
    # MobileNetV3-Small (Howard et al. 2019, table 2), without the final 1 x 1 conv to 576;
    # expansion ratios written as "expanded size / input channels" of the table.
    "mobilenetv3_small": (
        16,
        "hardswish",
        (
            BlockSpec(3, 16 / 16, 16, 2, True, "relu"),
            BlockSpec(3, 72 / 16, 24, 2, False, "relu"),
            BlockSpec(3, 88 / 24, 24, 1, False, "relu"),
            BlockSpec(5, 96 / 24, 40, 2, True, "hardswish"),
            BlockSpec(5, 240 / 40, 40, 1, True, "hardswish"),
            BlockSpec(5, 240 / 40, 40, 1, True, "hardswish"),
            BlockSpec(5, 120 / 40, 48, 1, True, "hardswish"),
            BlockSpec(5, 144 / 48, 48, 1, True, "hardswish"),
            BlockSpec(5, 288 / 48, 96, 2, True, "hardswish"),
            BlockSpec(5, 576 / 96, 96, 1, True, "hardswish"),
            BlockSpec(5, 576 / 96, 96, 1, True, "hardswish"),
        ),
    ),
}


def make_divisible(channels: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never below 90 % of it.

    Example:
        >>> make_divisible(32 * 0.75), make_divisible(72), make_divisible(16 * 0.35)
        (24, 72, 8)
    """
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def _activation(name: Activation) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    return nn.Hardswish(inplace=True)


class ConvBNAct(nn.Sequential):
    """Conv (no bias, 'same' padding for odd kernels) + BatchNorm + optional activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: Activation | None = "relu6",
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if act is not None:
            layers.append(_activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> 1 x 1 reduce (ReLU) -> 1 x 1 expand -> hard sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = make_divisible(channels / 4)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> same shape, rescaled per channel."""
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        s = self.expand(nn.functional.relu(self.reduce(s)))
        return x * nn.functional.hardsigmoid(s)


class InvertedResidual(nn.Module):
    """1 x 1 expand -> k x k depthwise (stride) -> [SE] -> linear 1 x 1 project, + shortcut.

    The shortcut is the identity when the block keeps resolution and channels, otherwise absent.
    """

    def __init__(self, in_channels: int, hidden: int, spec: BlockSpec, out_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if hidden != in_channels:
            layers.append(ConvBNAct(in_channels, hidden, 1, act=spec.act))
        layers.append(ConvBNAct(hidden, hidden, spec.kernel, spec.stride, hidden, spec.act))
        if spec.se:
            layers.append(SqueezeExcite(hidden))
        layers.append(ConvBNAct(hidden, out_channels, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = spec.stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, H / stride, W / stride)``."""
        y = self.body(x)
        return x + y if self.residual else y


class InvertedResidualBackbone(nn.Module):
    """A backbone of :data:`BACKBONES`, returning the feature maps at strides 4, 8, 16, 32.

    Args:
        name: key of :data:`BACKBONES`.
        width: channel multiplier.

    Attributes:
        channels: channels of the four returned maps.
    """

    def __init__(self, name: str, width: float = 1.0) -> None:
        super().__init__()
        stem_channels, stem_act, specs = BACKBONES[name]
        in_ch = make_divisible(stem_channels * width)
        self.stem = ConvBNAct(3, in_ch, 3, 2, act=stem_act)
        blocks: list[nn.Module] = []
        taps: list[int] = []
        channels: list[int] = []
        stride = 2
        for i, spec in enumerate(specs):
            out_ch = make_divisible(spec.out_channels * width)
            hidden = make_divisible(in_ch * spec.expand)
            blocks.append(InvertedResidual(in_ch, hidden, spec, out_ch))
            stride *= spec.stride
            in_ch = out_ch
            last_at_stride = i == len(specs) - 1 or specs[i + 1].stride == 2
            if last_at_stride and stride >= 4:
                taps.append(i)
                channels.append(out_ch)
        if len(taps) != 4:
            raise ValueError(f"backbone {name!r} must reach strides 4, 8, 16, 32")
        self.blocks = nn.Sequential(*blocks)
        self.taps = tuple(taps)
        self.channels = tuple(channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(N, 3, S, S)`` -> maps ``(N, channels[k], S / 2^(k+2), S / 2^(k+2))``, k = 0..3."""
        feats: list[torch.Tensor] = []
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        return feats
