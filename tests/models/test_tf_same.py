"""Tests of TensorFlow's 'SAME' padding in PyTorch (``mvface.models._tf_same``)."""

from __future__ import annotations

import torch

from mvface.models._tf_same import TFSameConv2d, tf_same_padding


class TestTfSamePadding:
    def test_matches_tensorflow(self) -> None:
        assert tf_same_padding(192, 3, 2) == (0, 1)  # odd pixel after, as TF does
        assert tf_same_padding(128, 5, 2) == (1, 2)
        assert tf_same_padding(96, 3, 1) == (1, 1)
        assert tf_same_padding(7, 3, 2) == (1, 1)
        assert tf_same_padding(6, 1, 1) == (0, 0)


class TestTFSameConv2d:
    def test_matches_explicit_padding(self) -> None:
        conv = TFSameConv2d(3, 4, 5, stride=2)
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        y = conv(x)
        assert y.shape == (2, 4, 16, 16)
        padded = torch.nn.functional.pad(x, (1, 2, 1, 2))
        reference = torch.nn.functional.conv2d(padded, conv.weight, conv.bias, stride=2)
        torch.testing.assert_close(y, reference)

    def test_stride_one_keeps_the_size(self) -> None:
        conv = TFSameConv2d(2, 2, 3, groups=2)
        assert conv(torch.randn(1, 2, 7, 6)).shape == (1, 2, 7, 6)
