"""3DDFA_V2 (Guo et al., ECCV 2020), registered as ``3ddfa-v2``: MobileNet-V1 -> 3DMM parameters.

A MobileNet-V1 with widen factor 0.5 looks at a 120 x 120 crop and regresses 62 normalized
parameters: 12 of pose (a scaled rotation and a translation, ``P = [s R | t]``), 40 of shape and
10 of expression of a 3D morphable model (BFM shape, FaceWarehouse expression, as 3DDFA built it).
The 68 landmarks are the 3DMM's 68 keypoint vertices posed by ``P``, so the model gives 3D points
and its own 3DMM head pose for every face (``extras["pose_3dmm"]``; ``Landmarks.pose`` comes from
the points, as for every model: :mod:`mvface.geometry.head_pose`).

Everything here is pure PyTorch/NumPy; the original release files are only *read*, from a folder
the user names (``weights=DIR`` or ``$MVFACE_3DDFA_V2_DIR``), never shipped with mvface:

- ``mb05_120x120.pth``: the checkpoint ``{"epoch", "state_dict"}``, keys ``module.*``;
- ``param_mean_std_62d_120x120.npz``: ``mean``, ``std`` (62,), ``param = out * std + mean``;
- ``bfm_68kp.npz``: ``u_base`` (204,), ``w_shp_base`` (204, 40), ``w_exp_base`` (204, 10), the
  keypoint rows of 3DDFA_V2's ``bfm_noneck_v3`` with x, y, z interleaved per point.

Inference (:meth:`TDDFAV2._predict`) reproduces the published pipeline (``TDDFA.__call__`` and
``recon_vers`` of 3DDFA_V2) exactly: the ROI box ``[sx, sy, ex, ey]`` is rounded to int and cut
out with zero padding (``crop_img``), resized to 120 x 120 with ``cv2.INTER_LINEAR``, fed as BGR
``(p - 127.5) / 128``; the points ``X = R (u + W_shp a_shp + W_exp a_exp) + t`` of the 120-pixel
crop (y up, 1-based) are mapped back with ``x = (X0 - 1) (ex - sx) / 120 + sx``,
``y = (120 - X1) (ey - sy) / 120 + sy`` (``similar_transform``, with the *unrounded* box), which
gives 0-based image pixels.

The training view (:meth:`TDDFAV2.forward_points`) is the same computation on a normalized RGB
batch, differentiable, in crop pixels: ``u = X0 - 1``, ``v = 120 - X1``, ``z = X2 - 1``.

The 3DMM (parameters -> keypoints and pose, the bases) is :mod:`mvface.models.tddfa_3dmm`; this
module holds the network, the published crop, the landmark model and the release-file loading.

Example:
    >>> net = TDDFANet(KeypointBasis.zeros()).eval()
    >>> net(torch.zeros(2, 3, 120, 120)).shape
    torch.Size([2, 62])
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from mvface.errors import BadInputError, NotAvailableError
from mvface.models._registry import register_model
from mvface.models._weights import load_weights, save_weights
from mvface.models.base import LandmarkModel, Landmarks, ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.tddfa_3dmm import (
    BASIS_FILE,
    INPUT_SIZE,
    NUM_PARAMS,
    PARAM_STATS_FILE,
    KeypointBasis,
    crop_points,
    pose_from_params,
    split_params,
)
from mvface.models.trainable import TorchLandmarkModel, eval_mode

__all__ = [
    "BASIS_FILE",
    "CHECKPOINT_FILE",
    "ENV_VAR",
    "INPUT_SIZE",
    "LANDMARK_ROI",
    "LICENCE",
    "NUM_PARAMS",
    "PARAM_STATS_FILE",
    "TDDFAV2",
    "DepthwiseSeparable",
    "KeypointBasis",
    "MobileNetV1",
    "TDDFANet",
    "crop_points",
    "crop_roi",
    "default_config",
    "load_tddfa_v2",
    "pose_from_params",
    "split_params",
    "tddfa_v2",
]

#: Environment variable naming the release folder (used when ``weights`` is None).
ENV_VAR = "MVFACE_3DDFA_V2_DIR"

#: The release files a folder must hold: the network's checkpoint, and the 3DMM's statistics
#: and bases (:data:`PARAM_STATS_FILE`, :data:`BASIS_FILE` of :mod:`mvface.models.tddfa_3dmm`).
CHECKPOINT_FILE = "mb05_120x120.pth"

#: 3DDFA_V2's crop rule for a landmark box (``parse_roi_box_from_landmark``): the square of side
#: ``max(w, h)`` on the box centre, enlarged to its diagonal, i.e. side ``sqrt(2) max(w, h)``.
LANDMARK_ROI = BoxTransform(scale_w=math.sqrt(2.0), scale_h=math.sqrt(2.0), square="max")

#: Where the release files come from and under what terms.
LICENCE = (
    "3DDFA_V2 code, weights and parameter statistics: MIT (Jianzhu Guo, "
    "https://github.com/cleardusk/3DDFA_V2); 68-point bases from its bfm_noneck_v3 "
    "(Basel Face Model 2009 shape, FaceWarehouse expression: their own research terms); "
    "trained on 300W-LP (research use)"
)

_SOURCE_HINT = (
    "from the 3DDFA_V2 release (https://github.com/cleardusk/3DDFA_V2, MIT): "
    f"weights/{CHECKPOINT_FILE}, configs/param_mean_std_62d_120x120.pkl saved as "
    f"{PARAM_STATS_FILE} (mean, std) and the keypoint rows of configs/bfm_noneck_v3.pkl saved "
    f"as {BASIS_FILE} (u_base, w_shp_base[:, :40], w_exp_base[:, :10]); see "
    "docs/models/3ddfa-v2.md"
)


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv + BN + ReLU, then 1x1 conv + BN + ReLU (3DDFA_V2 ``DepthWiseBlock``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the depthwise conv (1 or 2).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(
            in_channels, in_channels, 3, stride, padding=1, groups=in_channels, bias=False
        )
        self.bn_dw = nn.BatchNorm2d(in_channels)
        self.conv_sep = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn_sep = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, ceil(H / stride), ceil(W / stride))``."""
        x = self.relu(self.bn_dw(self.conv_dw(x)))
        return self.relu(self.bn_sep(self.conv_sep(x)))


#: MobileNet-V1 blocks at widen factor 1: (name, in, out, stride), as 3DDFA_V2 names them.
_BLOCKS: tuple[tuple[str, int, int, int], ...] = (
    ("dw2_1", 32, 64, 1),
    ("dw2_2", 64, 128, 2),
    ("dw3_1", 128, 128, 1),
    ("dw3_2", 128, 256, 2),
    ("dw4_1", 256, 256, 1),
    ("dw4_2", 256, 512, 2),
    ("dw5_1", 512, 512, 1),
    ("dw5_2", 512, 512, 1),
    ("dw5_3", 512, 512, 1),
    ("dw5_4", 512, 512, 1),
    ("dw5_5", 512, 512, 1),
    ("dw5_6", 512, 1024, 2),
    ("dw6", 1024, 1024, 1),
)


class MobileNetV1(nn.Module):
    """3DDFA_V2's MobileNet-V1; parameter names match ``mb05_120x120.pth`` (minus ``module.``).

    Layout: 3x3 stride-2 conv + BN + ReLU, 13 depthwise-separable blocks (:data:`_BLOCKS`),
    global average pooling, a linear head ``fc_param``. The checkpoint's second head ``fc_lm``
    (136 values) is not used by 3DDFA_V2's inference and is not built.

    Args:
        widen_factor: channel multiplier (0.5 for ``mb05``: 16 stem channels, 512 features).
        num_params: outputs of the head.
    """

    def __init__(self, widen_factor: float = 0.5, num_params: int = NUM_PARAMS) -> None:
        super().__init__()

        def width(c: int) -> int:
            return int(c * widen_factor)

        self.conv1 = nn.Conv2d(3, width(32), 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width(32))
        self.relu = nn.ReLU()
        for name, c_in, c_out, stride in _BLOCKS:
            self.add_module(name, DepthwiseSeparable(width(c_in), width(c_out), stride))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc_param = nn.Linear(width(1024), num_params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized **BGR** crops ``(N, 3, 120, 120)`` -> normalized parameters ``(N, 62)``."""
        x = self.relu(self.bn1(self.conv1(x)))
        for name, *_ in _BLOCKS:
            x = getattr(self, name)(x)
        return self.fc_param(self.avgpool(x).flatten(1))


class TDDFANet(nn.Module):
    """The trainable network of ``3ddfa-v2``: the MobileNet plus its (fixed) keypoint basis.

    ``state_dict()`` holds ``backbone.*`` (trainable) and ``basis.*`` (buffers), so a saved
    fine-tune carries everything it needs.

    Args:
        basis: parameter statistics and 68-keypoint bases.
        backbone: the MobileNet (default: randomly initialised ``MobileNetV1()``).
    """

    def __init__(self, basis: KeypointBasis, backbone: MobileNetV1 | None = None) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else MobileNetV1()
        self.basis = basis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized parameters of normalized **RGB** crops.

        Args:
            x: ``(N, 3, 120, 120)`` RGB crops as ``(p - 127.5) / 128`` (the channels are flipped
                to BGR here, the order the network was trained on).

        Returns:
            ``(N, 62)`` normalized parameters (:meth:`KeypointBasis.denormalize` gives them).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected input (N, 3, H, W), got {tuple(x.shape)}")
        return self.backbone(x.flip(1))

    def params(self, x: torch.Tensor) -> torch.Tensor:
        """De-normalized parameters ``(N, 62)`` of normalized RGB crops ``(N, 3, 120, 120)``."""
        return self.basis.denormalize(self(x))


# --------------------------------------------------------------------------------------------
# The published crop
# --------------------------------------------------------------------------------------------


def crop_roi(image: np.ndarray, roi_box: np.ndarray) -> np.ndarray:
    """Cut ``roi_box`` out of ``image`` like 3DDFA_V2's ``crop_img`` (zero padding outside).

    Args:
        image: ``(H, W, C)`` uint8.
        roi_box: ``(4,)`` ``[sx, sy, ex, ey]`` 0-based pixels; each is rounded to the nearest
            integer (Python ``round``: halves to even), the crop is rows ``sy..ey-1`` and
            columns ``sx..ex-1``.

    Returns:
        ``(ey - sy, ex - sx, C)`` uint8.

    Raises:
        BadInputError: a box that is empty after rounding.
    """
    sx, sy, ex, ey = (round(float(v)) for v in roi_box)
    dh, dw = ey - sy, ex - sx
    if dh < 1 or dw < 1:
        raise BadInputError("crop box", f"empty after rounding: {np.asarray(roi_box).tolist()}")
    h, w = image.shape[:2]
    out = np.zeros((dh, dw, *image.shape[2:]), dtype=image.dtype)
    x0, y0, x1, y1 = max(sx, 0), max(sy, 0), min(ex, w), min(ey, h)
    if x1 > x0 and y1 > y0:
        out[y0 - sy : y1 - sy, x0 - sx : x1 - sx] = image[y0:y1, x0:x1]
    return out


# --------------------------------------------------------------------------------------------
# The landmark model
# --------------------------------------------------------------------------------------------


class TDDFAV2(TorchLandmarkModel):
    """3DDFA_V2 behind the common interface: 68 3D points, head pose and the 62 parameters.

    Args:
        net: the network with its basis.
        config: the data contract (default: :func:`default_config`).

    Attributes:
        net: :class:`TDDFANet`.
        config: ``input_size`` 120, ``mean``/``std`` 127.5/128 (RGB in, BGR inside),
            ``crop`` :data:`LANDMARK_ROI`, ``output`` ``"68x3"``, ``extras`` pose_3dmm (the
            3DMM's own ``[pitch, yaw, roll]`` radians), params62.
    """

    net: TDDFANet

    def __init__(self, net: TDDFANet, config: ModelConfig | None = None) -> None:
        self.net = net.eval()
        self.config = config or default_config()

    def forward_points(self, x: torch.Tensor) -> torch.Tensor:
        """The training view: normalized RGB crops ``(N, 3, 120, 120)`` -> ``(N, 68, 3)``.

        Points are 0-based pixels of the crop (x right, y down; ``z = X2 - 1`` in crop pixels,
        larger toward the camera). Differentiable in ``x`` and the backbone's parameters.
        """
        X = self.net.basis(self.net.params(x))
        return crop_points(X, self.config.input_size)

    def save(self, path: str | Path, **metadata: str) -> Path:
        """Save network, basis and config as mvface ``.safetensors`` (loadable as ``weights``).

        The file contains the 3DMM keypoint bases (BFM-derived, see :data:`LICENCE`): it is
        meant for the user's own fine-tunes, not for committing.
        """
        metadata.setdefault("licence", self.config.licence)
        config = {"family": "3ddfa-v2", "model": self.config.to_dict()}
        return save_weights(path, self.net.state_dict(), config, **metadata)

    @torch.no_grad()
    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        size = self.config.input_size
        crops = np.stack(
            [
                cv2.resize(crop_roi(img, box), (size, size), interpolation=cv2.INTER_LINEAR)
                for img, box in zip(images, crop_boxes, strict=True)
            ]
        )
        with eval_mode(self.net):
            params = self.net.params(self.network_input(crops))
            pts = crop_points(self.net.basis(params), size).double().cpu().numpy()
        params_np = params.double().cpu().numpy()
        boxes = np.asarray(crop_boxes, np.float64)
        scale = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1) / size
        out = np.empty_like(pts)
        out[..., :2] = pts[..., :2] * scale[:, None, :] + boxes[:, None, :2]
        z = pts[..., 2] * scale.mean(axis=1, keepdims=True)
        out[..., 2] = z - z.min(axis=1, keepdims=True)
        return Landmarks(
            points=out,
            extras={"pose_3dmm": pose_from_params(params_np, scale), "params62": params_np},
        )


def default_config(name: str = "3ddfa-v2") -> ModelConfig:
    """The data contract of the released 3DDFA_V2 ``mb05_120x120`` weights."""
    return ModelConfig(
        name=name,
        input_size=INPUT_SIZE,
        mean=(127.5, 127.5, 127.5),
        std=(128.0, 128.0, 128.0),
        crop=LANDMARK_ROI,
        output="68x3",
        extras=("pose_3dmm", "params62"),
        licence=LICENCE,
    )


def _config_from_dict(d: dict[str, Any], source: Path) -> ModelConfig:
    try:
        return ModelConfig(
            name=str(d["name"]),
            input_size=int(d["input_size"]),
            mean=tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d["std"]),  # type: ignore[arg-type]
            crop=BoxTransform(**d["crop"]),
            output=d["output"],
            extras=tuple(d["extras"]),
            licence=str(d["licence"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(source, f"bad 3ddfa-v2 config in metadata ({exc})") from None


def _release_folder(weights: str | Path | None, pretrained: bool = True) -> Path:
    """The folder or file to load from; NotAvailableError when nothing usable is named.

    A folder must hold the statistics and bases, and the checkpoint unless ``pretrained`` is
    False.
    """
    if weights is None:
        env = os.environ.get(ENV_VAR)
        if not env:
            raise NotAvailableError(
                f"3ddfa-v2 needs {CHECKPOINT_FILE}, {PARAM_STATS_FILE} and {BASIS_FILE} in a "
                f"folder given as weights=DIR (--weights DIR) or ${ENV_VAR}; get them "
                + _SOURCE_HINT
            )
        weights = env
    path = Path(weights)
    if path.is_file():
        return path
    needed = (CHECKPOINT_FILE,) * pretrained + (PARAM_STATS_FILE, BASIS_FILE)
    missing = [f for f in needed if not (path / f).is_file()]
    if missing:
        raise NotAvailableError(
            f"{path}: 3ddfa-v2 files not found: {', '.join(missing)}; get them " + _SOURCE_HINT
        )
    return path


def _load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """MobileNet state dict of ``mb05_120x120.pth`` (``module.`` stripped, ``fc_lm`` dropped)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or unsafe file
        raise BadInputError(path, f"not a loadable checkpoint ({exc})") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise BadInputError(path, "no state_dict in the checkpoint")
    out = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v for k, v in out.items() if not k.startswith("fc_lm.")}


def load_tddfa_v2(
    weights: str | Path | None = None, pretrained: bool = True, device: str = "cpu"
) -> TDDFAV2:
    """Build ``3ddfa-v2`` from the release folder or from an mvface ``.safetensors``.

    Args:
        weights: a folder with the three release files, or a ``.safetensors`` written by
            :meth:`TDDFAV2.save` (a fine-tune: network, basis and config); ``None`` reads
            ``$MVFACE_3DDFA_V2_DIR``.
        pretrained: ``False`` keeps the MobileNet randomly initialised (the basis is still read).
        device: torch device of the network.

    Returns:
        The model, network in eval mode.

    Raises:
        NotAvailableError: no folder named, or release files missing (the message says which
            and where to get them).
        BadInputError: a file that exists but cannot be used.
    """
    path = _release_folder(weights, pretrained)
    if path.is_file():
        tensors, config, _ = load_weights(path)
        if config.get("family") != "3ddfa-v2":
            raise BadInputError(
                path, f"not a 3ddfa-v2 weights file (family {config.get('family')!r})"
            )
        basis_state = {
            k.removeprefix("basis."): v for k, v in tensors.items() if k.startswith("basis.")
        }
        try:
            basis = KeypointBasis(**basis_state)
        except TypeError as exc:
            raise BadInputError(path, f"incomplete 3DMM basis ({exc})") from None
        backbone_state = {
            k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")
        }
        model_config = _config_from_dict(config.get("model", {}), path)
    else:
        basis = KeypointBasis.from_release(path)
        backbone_state = _load_checkpoint(path / CHECKPOINT_FILE) if pretrained else {}
        model_config = default_config()
    backbone = MobileNetV1()
    if pretrained:
        try:
            backbone.load_state_dict(backbone_state)
        except RuntimeError as exc:
            raise BadInputError(path, f"weights do not fit MobileNet-V1 x0.5 ({exc})") from None
    net = TDDFANet(basis, backbone).to(device)
    model = TDDFAV2(net, model_config)
    model.trained = pretrained  # a random MobileNet refuses to predict (TorchLandmarkModel)
    return model


@register_model("3ddfa-v2")
def tddfa_v2(weights: str | None = None, **cfg: Any) -> LandmarkModel:
    """3DDFA_V2 MobileNet-V1 x0.5 (120 px), 68 3D points + pose.

    Args:
        weights: release folder (``mb05_120x120.pth``, ``param_mean_std_62d_120x120.npz``,
            ``bfm_68kp.npz``) or an mvface ``.safetensors`` fine-tune; default
            ``$MVFACE_3DDFA_V2_DIR``.
        **cfg: ``pretrained`` (bool, default True), ``device`` (str, default ``"cpu"``).
    """
    unknown = sorted(set(cfg) - {"pretrained", "device"})
    if unknown:
        raise ValueError(f"3ddfa-v2 options are pretrained, device; got {unknown}")
    return load_tddfa_v2(
        weights, pretrained=bool(cfg.get("pretrained", True)), device=str(cfg.get("device", "cpu"))
    )
