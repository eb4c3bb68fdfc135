"""TensorFlow's 'SAME' padding in PyTorch, for the networks ported from MediaPipe's TFLite files.

TF pads an even input of a stride-2 convolution asymmetrically (the odd pixel *after*), which
``nn.Conv2d``'s symmetric ``padding`` cannot express; the face mesh and BlazeFace networks use
:class:`TFSameConv2d` so that their converted weights give MediaPipe's outputs.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TFSameConv2d", "tf_same_padding"]


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one spatial axis.

    Args:
        size: input length along the axis, pixels.
        kernel: kernel length.
        stride: stride.

    Returns:
        (before, after) padding in pixels; TF puts the odd pixel *after*.

    Example:
        >>> tf_same_padding(192, 3, 2), tf_same_padding(96, 3, 1)
        ((0, 1), (1, 1))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class TFSameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow 'SAME' padding (asymmetric for even inputs and stride 2).

    Stride 1 uses the built-in symmetric padding (identical to SAME for odd kernels); other
    strides pad explicitly in ``forward`` from the actual input size (an ONNX export fixes the
    spatial size it was traced with).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        self._same_stride = stride
        self._same_kernel = kernel_size
        padding = kernel_size // 2 if stride == 1 else 0
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` (N, C_in, H, W) -> (N, C_out, ceil(H / s), ceil(W / s))."""
        if self._same_stride != 1:
            # Python ints: an ONNX export records constant pads, not a shape computation.
            height, width = int(x.shape[-2]), int(x.shape[-1])
            top, bottom = tf_same_padding(height, self._same_kernel, self._same_stride)
            left, right = tf_same_padding(width, self._same_kernel, self._same_stride)
            if top or bottom or left or right:
                x = nn.functional.pad(x, (left, right, top, bottom))
        return super().forward(x)
