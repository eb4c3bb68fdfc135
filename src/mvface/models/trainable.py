"""Trainable landmark models: a torch network plus the crop that feeds it.

The *training view* the plug-in and the trainer use is :meth:`TorchLandmarkModel.forward_points`:
a differentiable map from a batch of normalized crops ``(N, 3, S, S)`` to 68 points in crop
pixels. :meth:`TorchLandmarkModel._predict` wraps it for inference on whole images: crop each
face (optionally rotated), run the network, map the points back to image pixels.

Pixel convention: image and crop points are 0-based with pixel centres at integers. A crop box
``[x0, y0, x1, y1]`` (same frame) is mapped so that its centre lands on the crop's centre
``(S - 1) / 2`` and its edges on the crop's outer edges ``-0.5`` and ``S - 0.5``.
"""

from __future__ import annotations

import abc
import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from mvface.errors import NotAvailableError
from mvface.models.base import LandmarkModel, Landmarks


def crop_matrices(
    crop_boxes: np.ndarray, size: int, angles: np.ndarray | None = None
) -> np.ndarray:
    """Affine maps from image pixels to ``size x size`` crop pixels.

    Args:
        crop_boxes: ``(N, 4)`` boxes ``[x0, y0, x1, y1]``, 0-based pixels (square boxes keep the
            aspect ratio; others are stretched).
        size: crop side in pixels.
        angles: ``(N,)`` in-plane tilt of each face in radians, counter-clockwise on screen
            (a face whose eye line points along ``(cos a, -sin a)``); the crop is rotated about
            the box centre so that this face is upright. ``None``: upright crops.

    Returns:
        ``(N, 2, 3)`` float64 matrices ``M`` with ``[u, v] = M @ [x, y, 1]`` (integer-centred
        pixels on both sides).
    """
    b = np.asarray(crop_boxes, np.float64).reshape(-1, 4)
    n = len(b)
    ang = np.zeros(n) if angles is None else np.asarray(angles, np.float64).reshape(n)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    sx, sy = size / (b[:, 2] - b[:, 0]), size / (b[:, 3] - b[:, 1])
    cos, sin = np.cos(ang), np.sin(ang)
    m = np.zeros((n, 2, 3))
    # rotate about the box centre so that the direction (cos a, -sin a) becomes +x (undoes a
    # counter-clockwise tilt on screen, where y points down), scale, move to the crop centre
    m[:, 0, 0], m[:, 0, 1] = sx * cos, -sx * sin
    m[:, 1, 0], m[:, 1, 1] = sy * sin, sy * cos
    centre = (size - 1) / 2.0
    m[:, 0, 2] = centre - (m[:, 0, 0] * cx + m[:, 0, 1] * cy)
    m[:, 1, 2] = centre - (m[:, 1, 0] * cx + m[:, 1, 1] * cy)
    return m


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of ``(N, 2, 3)`` affine matrices."""
    full = np.concatenate([m, np.tile([[[0.0, 0.0, 1.0]]], (len(m), 1, 1))], axis=1)
    return np.linalg.inv(full)[:, :2, :]


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply ``(N, 2, 3)`` affines to ``(N, K, 2+)`` points (extra coordinates are kept).

    A batched ``matmul`` (5x faster than the equivalent ``einsum`` for a face mesh batch).
    """
    xy = np.matmul(points[..., :2], np.swapaxes(m[:, :, :2], 1, 2))
    xy += m[:, None, :, 2]
    return np.concatenate([xy, points[..., 2:]], axis=-1)


def warp_crops(images: Sequence[np.ndarray], matrices: np.ndarray, size: int) -> np.ndarray:
    """Crop ``(N, size, size, 3)`` uint8 patches with bilinear sampling, black outside."""
    return np.stack(
        [
            cv2.warpAffine(
                img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            for img, m in zip(images, matrices, strict=True)
        ]
    )


@functools.cache
def _channel_values(
    values: tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``(C, 1, 1)`` per-channel constants on ``device``, made once: building them from Python
    numbers at every step is a host-to-device copy, which waits for the GPU."""
    return torch.tensor(values, dtype=dtype, device=device)[:, None, None]


@contextlib.contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in eval mode inside the block, its own mode restored after.

    Switches only when needed: walking the module tree costs as much as a small crop's
    preprocessing.
    """
    was_training = net.training
    if was_training:
        net.eval()
    try:
        yield net
    finally:
        if was_training:
            net.train()


class TorchLandmarkModel(LandmarkModel):
    """A landmark model built on a trainable ``nn.Module`` (``self.net``).

    Subclasses set ``self.config`` and ``self.net`` and implement :meth:`forward_points`;
    they may override :meth:`crop_angles` (rotated crops) or :meth:`_predict` (multi-pass
    crops such as re-cropping from a first estimate). A family built without trained weights
    (a random initialization) sets :attr:`trained` to ``False``: such a model refuses to
    predict until it is trained or given weights (:meth:`require_trained`).
    """

    net: nn.Module

    #: Whether ``net`` holds trained weights. ``False`` for a random initialization: its points
    #: mean nothing, so :meth:`predict` refuses to give them.
    trained: bool = True

    #: Predict even when not :attr:`trained`: set by code that uses an untrained network on
    #: purpose (validation of the network being trained, speed benchmarks).
    allow_untrained: bool = False

    #: Threads one network call should use: ``None`` = the caller's setting; 1 for families
    #: whose ``predict`` spreads faces over threads itself (small networks split badly).
    network_threads: int | None = None

    @abc.abstractmethod
    def forward_points(self, x: torch.Tensor) -> torch.Tensor:
        """The training view: normalized crops ``(N, 3, S, S)`` → ``(N, 68, 2|3)`` crop pixels.

        Differentiable; ``z`` (when given) is in crop pixels too, larger towards the camera.
        """

    def normalize(self, crops: torch.Tensor) -> torch.Tensor:
        """RGB crops in [0, 255], ``(N, 3, S, S)`` float → the network's input range."""
        mean = _channel_values(tuple(self.config.mean), crops.dtype, crops.device)
        std = _channel_values(tuple(self.config.std), crops.dtype, crops.device)
        return (crops - mean) / std

    def network_input(self, patches: np.ndarray) -> torch.Tensor:
        """``(N, S, S, 3)`` uint8 RGB patches → the normalized ``(N, 3, S, S)`` float32 batch.

        The same float32 arithmetic as :meth:`normalize`, done in place in NumPy (a quarter of
        the cost for one small crop).
        """
        x = np.ascontiguousarray(patches.transpose(0, 3, 1, 2)).astype(np.float32)
        x -= np.asarray(self.config.mean, np.float32)[:, None, None]
        x /= np.asarray(self.config.std, np.float32)[:, None, None]
        return torch.from_numpy(x).to(self.device)

    def require_trained(self, action: str = "predict") -> None:
        """Refuse to ``action`` with an untrained network (unless :attr:`allow_untrained`).

        Raises:
            NotAvailableError: one line saying the model has no trained weights and how to
                give them.
        """
        if self.trained or self.allow_untrained:
            return
        name = self.config.name
        raise NotAvailableError(
            f"model {name!r} has no trained weights (a random initialization) and cannot "
            f"{action}; give it trained weights with --model {name}:FILE or --weights FILE "
            f"(create_model({name!r}, weights=FILE) in Python), e.g. the model.safetensors "
            f"written by 'mvface train' or 'mvface finetune'"
        )

    def predict_crops(
        self, images: np.ndarray | Sequence[np.ndarray], crop_boxes: np.ndarray | Sequence[Any]
    ) -> Landmarks:
        """As :meth:`LandmarkModel.predict_crops` (and so :meth:`predict`), for a trained network.

        Raises:
            NotAvailableError: the network has no trained weights (:meth:`require_trained`).
        """
        self.require_trained()
        return super().predict_crops(images, crop_boxes)

    def crop_angles(
        self, images: Sequence[np.ndarray], crop_boxes: np.ndarray
    ) -> np.ndarray | None:
        """In-plane rotation of each crop (radians), or ``None`` for upright crops."""
        return None

    @property
    def device(self) -> torch.device:
        """Device of the network's parameters."""
        return next(self.net.parameters()).device

    def preprocess(
        self, images: Sequence[np.ndarray], crop_boxes: np.ndarray, angles: np.ndarray | None
    ) -> tuple[torch.Tensor, np.ndarray]:
        """Crops as a normalized batch and the image→crop matrices ``(N, 2, 3)``."""
        size = self.config.input_size
        m = crop_matrices(crop_boxes, size, angles)
        return self.network_input(warp_crops(images, m, size)), m

    @torch.no_grad()
    def points_in_images(
        self, images: Sequence[np.ndarray], crop_boxes: np.ndarray, angles: np.ndarray | None
    ) -> np.ndarray:
        """Run the network on the crops and map its points back to image pixels (``z`` scaled)."""
        x, m = self.preprocess(images, crop_boxes, angles)
        with eval_mode(self.net):
            pts = self.forward_points(x).double().cpu().numpy()
        inv = invert_affine(m)
        out = apply_affine(inv, pts)
        if out.shape[-1] == 3:  # crop-pixel depth -> image-pixel depth
            out[..., 2] *= np.sqrt(np.abs(np.linalg.det(inv[:, :, :2])))[:, None]
        return out

    def _predict(self, images: Sequence[np.ndarray], crop_boxes: np.ndarray) -> Landmarks:
        angles = self.crop_angles(images, crop_boxes)
        return Landmarks(points=self.points_in_images(images, crop_boxes, angles))
