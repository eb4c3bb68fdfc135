"""mvnet: a compact trainable 68-point 3D landmark network in pure PyTorch.

mvnet is the family the multiview plug-in is demonstrated on when no pretrained weights exist:
an inverted-residual (MobileNetV2/V3-style) backbone and a head giving 68 x 3 points, built only
from ``torch.nn`` so that it needs neither timm nor torchvision (timm 1.0 imports torchvision
when it is imported, and PyPI's torchvision does not load beside mvface's local torch build).

Architecture (default :class:`MvNetConfig`, 128 x 128 input):

* backbone (:mod:`mvface.models.inverted_residual`) ``"mobilenetv2"`` (Sandler et al. 2018,
  the ImageNet table without the last 1 x 1 conv to 1280 channels) or ``"mobilenetv3_small"``
  (Howard et al. 2019, without the last 1 x 1 conv to 576), channels times ``width``; features
  at strides 4, 8, 16 and 32.
* head ``"regression"`` (default, cheapest): the stride-32 map (4 x 4 at 128 pixels) reduced by
  a 1 x 1 conv to ``head_channels``, flattened (keeps the spatial layout a global pooling would
  lose) and a linear layer to 68 x 3 numbers, mapped to crop pixels.
* head ``"heatmap"`` (FAN / DAD-3DNet style): a top-down feature pyramid back to stride 4, then
  per point a heatmap and a depth map; soft-argmax (expected position under the softmax of the
  heatmap, and the depth map averaged under the same weights) keeps it differentiable and gives
  sub-pixel points, so it trains with the same coordinate loss as the regression head.

Outputs of :meth:`MvNet.forward_points` (and of ``MvNet.net``): ``(N, 68, 3)`` float, ``x, y``
0-based crop pixels (pixel centres at integers, see :mod:`mvface.models.trainable`), ``z`` a
relative depth in crop pixels, larger towards the camera, whose origin is whatever the training
targets use. The network input is the normalized crop ``(rgb - mean) / std`` of
:meth:`TorchLandmarkModel.normalize`.

The config travels with the weights (:meth:`MvNet.save`, then
``create_model("mvnet", weights=path)`` rebuilds the same architecture from the file).

Example:
    >>> model = MvNet(seed=0)  # or create_model("mvnet", seed=0)
    >>> model.forward_points(torch.zeros(2, 3, 128, 128)).shape
    torch.Size([2, 68, 3])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import nn

from mvface.errors import BadInputError
from mvface.models._registry import register_model
from mvface.models._weights import load_weights, save_weights
from mvface.models.base import ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.inverted_residual import (
    BACKBONES,
    BackboneName,
    BlockSpec,
    ConvBNAct,
    InvertedResidual,
    InvertedResidualBackbone,
    make_divisible,
)
from mvface.models.trainable import TorchLandmarkModel

__all__ = [
    "BACKBONES",
    "CANONICAL_TO_MVNET_CROP",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NUM_POINTS",
    "BlockSpec",
    "InvertedResidual",
    "InvertedResidualBackbone",
    "MvNet",
    "MvNetConfig",
    "MvNetModule",
    "RegressionHead",
    "SoftArgmaxHead",
    "load_mvnet",
    "make_divisible",
]

#: Landmarks per face (iBUG 68-point scheme).
NUM_POINTS = 68

#: Value of the ``family`` metadata entry of mvnet weights files.
FAMILY = "mvnet"

HeadName = Literal["regression", "heatmap"]

#: ImageNet channel statistics of RGB in [0, 255] (the usual initialization of such backbones).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

#: canonical box (tight 68-point box) -> mvnet crop: same centre, square with side 1.3 x the
#: longer side of the box, i.e. at least 15 % margin on every side, so points on the jaw and
#: brows stay inside the crop under detector jitter of a few percent and for profile faces
#: (narrow boxes; "max" keeps the long side). No vertical shift: the crop shows the 68 points,
#: not the forehead.
CANONICAL_TO_MVNET_CROP = BoxTransform(scale_w=1.3, scale_h=1.3, square="max")


# --------------------------------------------------------------------------------------------
# Config: the data contract and the architecture, stored next to the weights
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MvNetConfig:
    """Everything needed to rebuild an mvnet and feed it; travels with its weights as JSON.

    Attributes:
        backbone: ``"mobilenetv2"`` or ``"mobilenetv3_small"`` (see :data:`BACKBONES`).
        width: channel multiplier of the backbone (channels rounded to multiples of 8).
        input_size: side of the square input crop, pixels; a multiple of 32, at least 64.
        head: ``"regression"`` (direct 68 x 3 regression) or ``"heatmap"`` (heatmaps and depth
            maps at stride 4 with soft-argmax).
        head_channels: channels of the head (the reduced map the regression head flattens, or
            the feature pyramid of the heatmap head).
        crop: canonical face box -> the box the network crops (see
            :data:`CANONICAL_TO_MVNET_CROP`).
        mean, std: per-channel normalization of the RGB input in [0, 255].
        licence: licence of the weights and of the data they were trained on (``""`` for
            random initialization).
    """

    backbone: BackboneName = "mobilenetv2"
    width: float = 1.0
    input_size: int = 128
    head: HeadName = "regression"
    head_channels: int = 64
    crop: BoxTransform = CANONICAL_TO_MVNET_CROP
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    licence: str = ""

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown mvnet backbone {self.backbone!r}; one of {list(BACKBONES)}")
        if self.head not in get_args(HeadName):
            raise ValueError(f"unknown mvnet head {self.head!r}; one of {get_args(HeadName)}")
        if not self.width > 0:
            raise ValueError(f"mvnet width must be positive, got {self.width}")
        if self.input_size < 64 or self.input_size % 32:
            raise ValueError(
                f"mvnet input_size must be a multiple of 32 >= 64, got {self.input_size}"
            )
        if self.head_channels < 1:
            raise ValueError(f"mvnet head_channels must be positive, got {self.head_channels}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mvnet mean and std need 3 values each, std positive")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``crop`` as a dict, tuples as lists once JSON-encoded)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MvNetConfig:
        """Inverse of :meth:`to_dict`; missing keys take their defaults.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown mvnet options {unknown}; known: {sorted(known)}")
        values = dict(data)
        if isinstance(values.get("crop"), Mapping):
            values["crop"] = BoxTransform(**values["crop"])
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        for key, kind in (("width", float), ("input_size", int), ("head_channels", int)):
            if key in values:
                values[key] = kind(values[key])
        return cls(**values)

    def model_config(self) -> ModelConfig:
        """The family-independent :class:`ModelConfig` (``output="68x3"``)."""
        return ModelConfig(
            name=FAMILY,
            input_size=self.input_size,
            mean=self.mean,
            std=self.std,
            crop=self.crop,
            output="68x3",
            licence=self.licence,
        )


# --------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------


class RegressionHead(nn.Module):
    """Stride-32 map -> 1 x 1 conv to ``channels`` -> flatten -> linear -> ``(N, 68, 3)``.

    Outputs are in units of half the crop side around the crop centre; :class:`MvNetModule`
    maps them to pixels. The last layer starts at zero weights, so a fresh model puts every
    point at the crop centre and the first gradients all reach the same place.
    """

    def __init__(self, in_channels: int, channels: int, map_size: int) -> None:
        super().__init__()
        self.reduce = ConvBNAct(in_channels, channels, 1)
        self.fc = nn.Linear(channels * map_size * map_size, NUM_POINTS * 3)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Backbone maps -> ``(N, 68, 3)`` normalized coordinates."""
        y = self.reduce(feats[-1]).flatten(1)
        return self.fc(y).reshape(-1, NUM_POINTS, 3)


class SoftArgmaxHead(nn.Module):
    """Top-down pyramid to stride 4, per point a heatmap and a depth map, then soft-argmax.

    Args:
        in_channels: channels of the backbone maps at strides 4, 8, 16, 32.
        channels: channels of the pyramid.
        input_size: side of the network input, pixels.

    The point is the expectation of the pixel-centre grid (crop pixels) under the softmax of
    its heatmap logits times :attr:`LOGIT_SCALE`; its depth is the depth map averaged with the
    same weights, in units of half the crop side. The output conv starts at zero (uniform
    heatmaps: every point at the crop centre, depth 0).
    """

    #: Heatmap stride, input pixels per heatmap cell.
    STRIDE = 4
    #: Fixed factor on the heatmap logits (the soft-argmax inverse temperature): lets the
    #: zero-initialized heatmaps sharpen in a few steps; 1 made a 20-step overfit test ~4x
    #: slower to converge.
    LOGIT_SCALE = 10.0

    def __init__(self, in_channels: tuple[int, ...], channels: int, input_size: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(ConvBNAct(c, channels, 1, act=None) for c in in_channels)
        self.refine = nn.Sequential(
            ConvBNAct(channels, channels, 3, groups=channels),
            ConvBNAct(channels, channels, 1),
        )
        self.out = nn.Conv2d(channels, 2 * NUM_POINTS, 1)
        nn.init.zeros_(self.out.weight)
        if self.out.bias is not None:
            nn.init.zeros_(self.out.bias)
        side = input_size // self.STRIDE
        # centre of heatmap cell j in crop pixels: j * stride + (stride - 1) / 2
        centres = torch.arange(side, dtype=torch.float32) * self.STRIDE + (self.STRIDE - 1) / 2
        grid_y, grid_x = torch.meshgrid(centres, centres, indexing="ij")
        self.grid_x: torch.Tensor
        self.grid_y: torch.Tensor
        self.register_buffer("grid_x", grid_x.reshape(-1), persistent=False)
        self.register_buffer("grid_y", grid_y.reshape(-1), persistent=False)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Backbone maps -> ``(N, 68, 3)``: x, y crop pixels, z in half crop sides."""
        p = self.lateral[-1](feats[-1])
        for lateral, feat in zip(self.lateral[-2::-1], feats[-2::-1], strict=True):
            p = nn.functional.interpolate(p, scale_factor=2.0, mode="nearest") + lateral(feat)
        maps = self.out(self.refine(p)).flatten(2)  # (N, 2 * 68, H * W)
        weights = torch.softmax(maps[:, :NUM_POINTS] * self.LOGIT_SCALE, dim=-1)
        x = (weights * self.grid_x).sum(-1)
        y = (weights * self.grid_y).sum(-1)
        z = (weights * maps[:, NUM_POINTS:]).sum(-1)
        return torch.stack([x, y, z], dim=-1)


# --------------------------------------------------------------------------------------------
# Network and landmark model
# --------------------------------------------------------------------------------------------


class MvNetModule(nn.Module):
    """The mvnet ``nn.Module``: normalized crops ``(N, 3, S, S)`` -> ``(N, 68, 3)`` crop pixels.

    ``x, y`` are 0-based crop pixels (centre of the crop at ``(S - 1) / 2``), ``z`` is relative
    depth in crop pixels (larger = nearer). Exportable (ONNX / ``torch.export``) with a dynamic
    batch dimension; the input side must be ``config.input_size``.
    """

    def __init__(self, config: MvNetConfig) -> None:
        super().__init__()
        self.input_size = config.input_size
        self.head_type = config.head
        self.backbone = InvertedResidualBackbone(config.backbone, config.width)
        if config.head == "regression":
            self.head: nn.Module = RegressionHead(
                self.backbone.channels[-1], config.head_channels, config.input_size // 32
            )
        else:
            self.head = SoftArgmaxHead(
                self.backbone.channels, config.head_channels, config.input_size
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` normalized crops -> ``(N, 68, 3)`` points in crop pixels."""
        out = self.head(self.backbone(x))
        half = self.input_size / 2
        if self.head_type == "regression":
            xy = out[..., :2] * half + (self.input_size - 1) / 2
        else:
            xy = out[..., :2]
        return torch.cat([xy, out[..., 2:] * half], dim=-1)


class MvNet(TorchLandmarkModel):
    """mvnet behind the common landmark interface (``68x3``; see the module docstring).

    A new ``MvNet`` is a random initialization (:attr:`trained` ``False``: it trains, but
    refuses to predict); :func:`load_mvnet` gives one trained weights.

    Args:
        config: architecture and data contract; defaults to :class:`MvNetConfig` ``()``.
        seed: seed for the random initialization (the global RNG state is left untouched);
            ``None`` uses the global RNG.

    Attributes:
        mvnet_config: the :class:`MvNetConfig` (saved with the weights).
        config: the family-independent :class:`ModelConfig` derived from it.
        net: the :class:`MvNetModule`, on CPU in training mode.
    """

    def __init__(self, config: MvNetConfig | None = None, seed: int | None = None) -> None:
        self.mvnet_config = config or MvNetConfig()
        self.config = self.mvnet_config.model_config()
        self.trained = False
        if seed is None:
            self.net: MvNetModule = MvNetModule(self.mvnet_config)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.net = MvNetModule(self.mvnet_config)

    def forward_points(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized crops ``(N, 3, S, S)`` -> ``(N, 68, 3)`` crop pixels (differentiable)."""
        return self.net(x)

    def num_parameters(self) -> int:
        """Number of trainable parameters of :attr:`net`."""
        return sum(p.numel() for p in self.net.parameters() if p.requires_grad)

    def save(self, path: str | Path) -> Path:
        """Save the weights with :attr:`mvnet_config` in the metadata (safetensors, atomic).

        Returns:
            The final path; ``create_model("mvnet", weights=path)`` rebuilds this model.
        """
        return save_weights(path, self.net.state_dict(), self.mvnet_config.to_dict(), family=FAMILY)


def load_mvnet(path: str | Path) -> MvNet:
    """Rebuild an :class:`MvNet` from a file written by :meth:`MvNet.save` (eval mode).

    Raises:
        BadInputError: not a safetensors file, not mvnet weights, no or bad config, or tensors
            that do not fit the architecture of the config.
    """
    tensors, config_dict, meta = load_weights(path)
    family = meta.get("family", FAMILY)
    if family != FAMILY:
        raise BadInputError(path, f"weights of the {family!r} family, not mvnet")
    if not config_dict:
        raise BadInputError(path, "no mvnet config in the file's metadata")
    try:
        config = MvNetConfig.from_dict(config_dict)
    except (TypeError, ValueError) as exc:
        raise BadInputError(path, f"bad mvnet config ({exc})") from None
    model = MvNet(config)
    try:
        model.net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise BadInputError(
            path, f"tensors do not fit the config's architecture ({first[0].strip()})"
        ) from None
    model.net.eval()
    model.trained = True
    return model


@register_model(FAMILY)
def mvnet(
    weights: str | Path | None = None,
    seed: int | None = None,
    allow_untrained: bool = False,
    **cfg: Any,
) -> MvNet:
    """mvnet: trainable 68 x 3 landmark network (pure PyTorch).

    Args:
        weights: a file written by :meth:`MvNet.save`; the architecture comes from its config.
            ``None``: a randomly initialized model (training mode) for training, which refuses
            to predict (:meth:`TorchLandmarkModel.require_trained`).
        seed: seed of the random initialization (only without ``weights``).
        allow_untrained: let a random initialization predict anyway
            (:attr:`TorchLandmarkModel.allow_untrained`; speed benchmarks, tests).
        **cfg: :class:`MvNetConfig` fields (``crop`` as a :class:`BoxTransform` or its dict).
            With ``weights`` they may only repeat the file's values.

    Raises:
        ValueError: unknown or invalid options, ``seed`` with ``weights``, or options that
            contradict the weights file.
        BadInputError: unreadable or mismatching weights file.
    """
    if weights is None:
        model = MvNet(MvNetConfig.from_dict(cfg), seed=seed)
        model.allow_untrained = allow_untrained
        return model
    if seed is not None:
        raise ValueError("mvnet: seed only applies to random initialization, not with weights")
    model = load_mvnet(weights)
    if cfg:
        wanted = MvNetConfig.from_dict({**model.mvnet_config.to_dict(), **cfg})
        if wanted != model.mvnet_config:
            have, want = model.mvnet_config.to_dict(), wanted.to_dict()
            diff = {k: (have[k], want[k]) for k in have if have[k] != want[k]}
            raise ValueError(
                f"mvnet options contradict the weights file's config (file, given): "
                f"{json.dumps(diff)}"
            )
    return model
