"""Frozen teachers for distillation: one model or several fused per point, each in its own framing.

A teacher sees every crop of the step (real and synthetic) as the student sees it, resampled to
the teacher's input size. Two families frame a face differently (``mediapipe-68`` crops a square
1.5x the landmark box, ``3ddfa-v2`` one sqrt(2)x it), so when both crop policies are centred
squares the teacher gets the part of the student's crop that its own policy would have cut (zero
outside, as 3DDFA_V2's own crop pads): a teacher run on a frame it was never trained on is a
worse teacher. Otherwise (policies that are not centred squares) it sees the whole crop.

Several teachers are fused point by point with fixed shares: two model families make different
errors, so their weighted mean is better than either (``docs/results.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

from mvface.models.boxes import BoxTransform
from mvface.models.trainable import TorchLandmarkModel

__all__ = ["TeacherEnsemble", "teacher_crop_ratio"]


def teacher_crop_ratio(student: BoxTransform, teacher: BoxTransform) -> float:
    """Side of the teacher's crop over the student's, for the same face box.

    Both policies must be centred squares (``shift`` 0, equal scales, the same ``square`` mode)
    for the ratio to hold for any box; for any other pair the teacher sees the student's crop
    as it is (ratio 1).

    >>> student = BoxTransform(1.5, 1.5, square="max")
    >>> round(teacher_crop_ratio(student, BoxTransform(1.2, 1.2, square="max")), 6)
    0.8
    """

    def centred_square(t: BoxTransform) -> bool:
        return t.shift_x == 0 and t.shift_y == 0 and t.scale_w == t.scale_h and t.square != ""

    if centred_square(student) and centred_square(teacher) and student.square == teacher.square:
        return teacher.scale_w / student.scale_w
    return 1.0


class TeacherEnsemble:
    """Frozen teachers whose points on a student's crops are fused with fixed shares.

    Args:
        teachers: ``(model, share)`` pairs; shares are normalized to sum to 1.
        student_size: side of the student's crops, pixels.
        student_crop: the student's crop policy (canonical box -> crop box).

    Attributes:
        models: the teacher models (frozen, in eval mode; not optimized or checkpointed).
        shares: their normalized shares.
        ratios: each teacher's crop side over the student's (:func:`teacher_crop_ratio`).
    """

    def __init__(
        self,
        teachers: Sequence[tuple[TorchLandmarkModel, float]],
        student_size: int,
        student_crop: BoxTransform,
    ) -> None:
        if not teachers:
            raise ValueError("a teacher ensemble needs at least one teacher")
        total = sum(float(share) for _, share in teachers)
        if not all(share > 0 for _, share in teachers) or total <= 0:
            raise ValueError(f"teacher shares must be positive, got {[s for _, s in teachers]}")
        self.models = [model for model, _ in teachers]
        self.shares = [float(share) / total for _, share in teachers]
        self.size = int(student_size)
        self.ratios = [teacher_crop_ratio(student_crop, m.config.crop) for m in self.models]
        for model in self.models:
            model.net.requires_grad_(False).eval()

    def __len__(self) -> int:
        return len(self.models)

    @torch.no_grad()
    def points(self, crops: torch.Tensor) -> torch.Tensor:
        """The fused ``(N, 68, 2)`` points on ``(N, 3, S, S)`` crops (RGB 0..255), in their pixels.

        Each teacher ``t`` of input size ``T`` and crop ratio ``r`` sees the centred square of
        side ``r S`` resampled (bilinear) to ``T`` px; its points come back with
        ``x_S = (x_T + 0.5) r S / T + (1 - r) S / 2 - 0.5`` (pixel centres at integers).
        """
        x = crops.float()
        fused: torch.Tensor | None = None
        for model, share, ratio in zip(self.models, self.shares, self.ratios, strict=True):
            if model.device != crops.device:
                model.net.to(crops.device)
            size = model.config.input_size
            seen = _centred_resample(x, ratio, size)
            points = model.forward_points(model.normalize(seen))[..., :2].float()
            points = (points + 0.5) * (ratio * self.size / size) + (1 - ratio) * self.size / 2 - 0.5
            fused = share * points if fused is None else fused + share * points
        assert fused is not None
        return fused


def _centred_resample(x: torch.Tensor, ratio: float, size: int) -> torch.Tensor:
    """The centred square of side ``ratio`` x the crop side of ``x`` ``(N, C, S, S)``, at ``size``.

    Outside the crop is zero (``ratio > 1``). With ``ratio == 1`` this is a plain bilinear
    resize (the crop as the student sees it).
    """
    if ratio == 1.0:
        if x.shape[-1] == size:
            return x
        return functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    theta = x.new_tensor([[ratio, 0.0, 0.0], [0.0, ratio, 0.0]]).expand(len(x), 2, 3)
    grid = functional.affine_grid(theta, [len(x), x.shape[1], size, size], align_corners=False)
    return functional.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
