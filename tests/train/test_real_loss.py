"""The real-data loss: point weights and the turned-away jaw of 300-W-style annotations."""

import math

import numpy as np
import pytest
import torch

from mvface.data.scheme import FLIP_PERMUTATION
from mvface.train.module import landmark_l1, real_point_weights, turned_away_jaw


def _face(yaw_shift: float) -> torch.Tensor:
    """A frontal-ish 2D face: jaw on a U from x=0 to x=100, nose tip at x = 50 + yaw_shift."""
    pts = torch.zeros(68, 2, dtype=torch.float64)
    t = torch.linspace(0, math.pi, 17, dtype=torch.float64)
    pts[:17, 0] = 50 - 50 * torch.cos(t)
    pts[:17, 1] = 50 + 50 * torch.sin(t)
    pts[17:] = torch.tensor([50.0, 40.0])
    pts[30] = torch.tensor([50.0 + yaw_shift, 55.0])
    return pts


class TestLandmarkL1:
    def test_hand_computed(self) -> None:
        pred = torch.zeros(1, 68, 2)
        target = torch.zeros(1, 68, 2)
        target[0, 0] = torch.tensor([4.0, 2.0])  # |error| 3 on point 0
        assert float(landmark_l1(pred, target, 10.0)) == pytest.approx(3 / 68 / 10)
        w = torch.ones(68)
        w[0] = 0.5
        assert float(landmark_l1(pred, target, 10.0, w)) == pytest.approx(1.5 / 67.5 / 10)

    def test_all_zero_weights_give_zero(self) -> None:
        pred, target = torch.zeros(2, 68, 2), torch.ones(2, 68, 2)
        assert float(landmark_l1(pred, target, 8.0, torch.zeros(2, 68))) == 0.0


class TestTurnedAwayJaw:
    def test_frontal_face_has_none(self) -> None:
        assert not turned_away_jaw(_face(0.0)[None]).any()

    @pytest.mark.parametrize("shift, side", [(-35.0, range(0, 8)), (35.0, range(9, 17))])
    def test_nose_near_a_jaw_end_marks_that_half(self, shift: float, side: range) -> None:
        out = turned_away_jaw(_face(shift)[None])[0]
        assert out.nonzero().flatten().tolist() == list(side)

    def test_invariant_to_rotation_and_consistent_under_mirroring(self) -> None:
        face = _face(-35.0)
        a = math.radians(40)
        rot = torch.tensor(
            [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=face.dtype
        )
        rotated = face @ rot.T + 7.0
        assert torch.equal(turned_away_jaw(rotated[None]), turned_away_jaw(face[None]))
        # a mirrored, relabelled face has the other half turned away
        mirrored = face[list(FLIP_PERMUTATION)] * torch.tensor([-1.0, 1.0], dtype=face.dtype)
        assert turned_away_jaw(mirrored[None])[0].nonzero().flatten().tolist() == list(range(9, 17))


class TestRealPointWeights:
    def test_jaw_and_turned_weights(self) -> None:
        faces = torch.stack([_face(0.0), _face(-35.0)])
        w = real_point_weights(faces, 0.5, 0.0)
        np.testing.assert_array_equal(w[0, :17].numpy(), 0.5)
        np.testing.assert_array_equal(w[1, :8].numpy(), 0.0)
        np.testing.assert_array_equal(w[1, 8:17].numpy(), 0.5)
        assert (w[:, 17:] == 1).all()
        assert torch.equal(
            real_point_weights(faces, 0.5, None), real_point_weights(faces, 0.5, 0.5)
        )
