"""BlazeFace's data contract and post-processing: anchors, box decoding, NMS, letterbox.

MediaPipe's face detection post-processing (``face_detection.pbtxt`` and the options of
``face_detection_short_range.pbtxt`` / ``face_detection_full_range.pbtxt``, kept in
:class:`BlazeFaceConfig`), written without MediaPipe:

* input: the image letterboxed into the square input (aspect kept, centred, zero padding),
  RGB scaled to [-1, 1] (:func:`letterbox`);
* anchors: ``SsdAnchorsCalculator`` with fixed anchor size 1 (:func:`ssd_anchors`);
* decoding: ``TensorsToDetectionsCalculator``, raw values in input pixels relative to the anchor
  centre, order x, y, w, h then 6 keypoints (x, y) (:func:`decode_regressors`);
* scores: ``sigmoid(clip(logit, -100, 100))``, kept when >= 0.5 (short) / 0.6 (full);
* weighted non-maximum suppression, IoU > 0.3 (:func:`non_max_suppression`): overlapping boxes
  and keypoints are averaged with their scores as weights; the score is the best one's.

The networks are in :mod:`mvface.detection.blazeface_net`, the detector in
:mod:`mvface.detection.blazeface`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from mvface.errors import BadInputError
from mvface.models.boxes import box_iou

__all__ = [
    "BLAZEFACE_CONFIGS",
    "FULL_RANGE_CONFIG",
    "KEYPOINT_NAMES",
    "SHORT_RANGE_CONFIG",
    "BlazeFaceConfig",
    "Letterbox",
    "blazeface_config",
    "decode_regressors",
    "encode_regressors",
    "letterbox",
    "non_max_suppression",
    "scores_from_logits",
    "ssd_anchors",
]

#: The 6 keypoints of every detection, in output order; "right" is the subject's right.
KEYPOINT_NAMES: tuple[str, ...] = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth_center",
    "right_ear_tragion",
    "left_ear_tragion",
)

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
            These two are read only by ``tools/convert_blazeface.py``; they stay in the config
            because the shipped weights' metadata records the whole config, so a regenerated
            file keeps the bytes (and sha256) ``NOTICE-mediapipe.txt`` states.
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


def blazeface_config(variant: str) -> BlazeFaceConfig:
    """The config of BlazeFace ``variant`` (``"short"`` or ``"full"``).

    Raises:
        ValueError: unknown variant.
    """
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
