"""Tests of mvface.synth.rig: the paper's 512 cameras as a formula, grids, random rigs, labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mvface.synth as synth
from _shared import SHARED
from mvface.errors import BadInputError
from mvface.geometry import (
    EG3D_FOCAL,
    cam2world_to_extrinsics,
    camera_centers,
    eg3d_label_to_camera,
)
from mvface.synth.rig import (
    PAPER_LOOKAT,
    PAPER_RADIUS,
    camera_yaw_pitch,
    grid_rig,
    lookat_sampler_cam2world,
    paper_rig,
    random_rig,
    rig_labels,
    spherical_rig,
)

REFERENCE_RIG = SHARED / "seed" / "reference_data" / "dataset_synthetic" / "cam2world_pose.npy"
TARGET = torch.tensor(PAPER_LOOKAT, dtype=torch.float64)


def _axis_angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle between direction vectors ``(..., 3)`` in degrees (inputs need not be unit)."""
    cross = torch.linalg.cross(a, b).norm(dim=-1)
    return torch.rad2deg(torch.atan2(cross, (a * b).sum(-1)))


def _check_look_at(c2w: torch.Tensor, radius: float = PAPER_RADIUS) -> None:
    """Every camera at ``radius`` from the origin, its optical axis through the target, no roll."""
    center = c2w[:, :3, 3]
    torch.testing.assert_close(center.norm(dim=-1), torch.full_like(center[:, 0], radius))
    to_target = TARGET - center
    assert _axis_angle_deg(c2w[:, :3, 2], to_target).max() < 1e-6
    rot = c2w[:, :3, :3]
    torch.testing.assert_close(
        rot.transpose(1, 2) @ rot, torch.eye(3, dtype=rot.dtype).expand_as(rot), atol=1e-12, rtol=0
    )
    assert torch.allclose(torch.linalg.det(rot), torch.ones(len(rot), dtype=rot.dtype))
    # no roll: the image x axis stays horizontal, image y points down (world −y side)
    assert c2w[:, 1, 0].abs().max() < 1e-12
    assert (c2w[:, 1, 1] < 0).all()


class TestPaperRig:
    def test_smoke(self) -> None:
        c2w = paper_rig()
        assert c2w.shape == (512, 4, 4)
        assert c2w.dtype == torch.float64
        torch.testing.assert_close(c2w[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(512, 4).double())
        _check_look_at(c2w)

    @pytest.mark.skipif(not REFERENCE_RIG.is_file(), reason=f"{REFERENCE_RIG} absent")
    def test_matches_reference_file(self) -> None:
        reference = torch.from_numpy(np.load(REFERENCE_RIG)).double()
        ours = paper_rig()
        center_error = (ours[:, :3, 3] - reference[:, :3, 3]).norm(dim=-1)
        axis_error = _axis_angle_deg(ours[:, :3, 2], reference[:, :3, 2])
        assert center_error.max() < 0.02  # the tolerance
        assert axis_error.max() < 1.0
        # what the formula achieves (the file is stored at reduced precision)
        assert center_error.max() < 0.0025, center_error.max()
        assert axis_error.max() < 0.05, axis_error.max()
        for column in (0, 1):  # the other axes too
            assert _axis_angle_deg(ours[:, :3, column], reference[:, :3, column]).max() < 0.05

    def test_layout(self) -> None:
        yaw, pitch = camera_yaw_pitch(paper_rig()).rad2deg().unbind(-1)
        # ellipse: starts at yaw +45° near level, reaches the top (~+32°) and bottom (~−28°)
        assert yaw[0] == pytest.approx(44.93, abs=0.05)
        assert pitch[:384].max() == pytest.approx(32.1, abs=0.3)
        assert pitch[:384].min() == pytest.approx(-27.9, abs=0.3)
        # vertical sweep at yaw ~0, horizontal sweep at pitch ~+1.9° from +45° to −45°
        assert yaw[384:448].abs().max() < 0.1
        assert pitch[448:].std() < 1e-9
        assert yaw[448] == pytest.approx(44.93, abs=0.05)
        assert yaw[511] == pytest.approx(-44.97, abs=0.05)
        # view 390 is near-frontal (azimuth 0°, elevation ~10°)
        assert abs(float(yaw[390])) < 0.1
        assert float(pitch[390]) == pytest.approx(10.2, abs=0.3)

    @pytest.mark.parametrize("n", [3, 8, 64, 100])
    def test_other_sizes(self, n: int) -> None:
        c2w = paper_rig(n)
        assert c2w.shape == (n, 4, 4)
        _check_look_at(c2w)
        yaw = camera_yaw_pitch(c2w)[:, 0].rad2deg()
        assert float(yaw[0]) == pytest.approx(44.93, abs=0.05)

    def test_rejects_too_few_views(self) -> None:
        with pytest.raises(BadInputError):
            paper_rig(2)

    def test_custom_radius_and_target(self) -> None:
        c2w = paper_rig(16, radius=4.0, target=(0.0, 0.0, 0.0))
        centers = c2w[:, :3, 3]
        torch.testing.assert_close(centers.norm(dim=-1), torch.full((16,), 4.0).double())
        assert _axis_angle_deg(c2w[:, :3, 2], -centers).max() < 1e-6

    def test_rejects_bad_target(self) -> None:
        with pytest.raises(BadInputError):
            paper_rig(8, target=(0.0, 0.0))
        with pytest.raises(BadInputError):
            paper_rig(8, radius=0.1)


class TestLookatSampler:
    def test_frontal(self) -> None:
        half_pi = torch.tensor([math.pi / 2], dtype=torch.float64)
        c2w = lookat_sampler_cam2world(half_pi, half_pi)
        torch.testing.assert_close(c2w[0, :3, 3], torch.tensor([0.0, 0.0, 2.7]).double())

    def test_vertical_is_not_the_polar_angle(self) -> None:
        # EG3D maps v to the polar angle arccos(1 − 2v/π)
        v = torch.tensor([1.0], dtype=torch.float64)
        c2w = lookat_sampler_cam2world(torch.tensor([math.pi / 2], dtype=torch.float64), v)
        polar = torch.arccos(c2w[0, 1, 3] / PAPER_RADIUS)
        assert float(polar) == pytest.approx(math.acos(1 - 2 / math.pi), abs=1e-12)


class TestGridRig:
    def test_frontal_camera(self) -> None:
        c2w = grid_rig([0.0], [0.0])
        torch.testing.assert_close(c2w[0, :3, 3], torch.tensor([0.0, 0.0, 2.7]).double())
        torch.testing.assert_close(c2w[0, :3, 0], torch.tensor([1.0, 0.0, 0.0]).double())

    def test_angles_round_trip(self) -> None:
        yaws = np.radians([-75.0, -30.0, 0.0, 45.0, 80.0])
        pitches = np.radians([-20.0, 15.0])
        c2w = grid_rig(yaws, pitches)
        assert c2w.shape == (10, 4, 4)
        _check_look_at(c2w)
        yaw_pitch = camera_yaw_pitch(c2w).numpy()
        np.testing.assert_allclose(yaw_pitch[:, 0], np.tile(yaws, 2), atol=1e-12)
        np.testing.assert_allclose(yaw_pitch[:, 1], np.repeat(pitches, 5), atol=1e-12)

    def test_positive_yaw_moves_camera_to_world_x(self) -> None:
        c2w = grid_rig(np.radians([30.0]), [0.0])
        assert float(c2w[0, 0, 3]) > 1.0

    def test_rejects_bad_angles(self) -> None:
        with pytest.raises(BadInputError):
            grid_rig([], [0.0])
        with pytest.raises(BadInputError):
            spherical_rig([0.0], [math.pi / 2])
        with pytest.raises(BadInputError):
            spherical_rig([0.0, 1.0], [0.0])
        with pytest.raises(BadInputError):
            spherical_rig([float("nan")], [0.0])


class TestRandomRig:
    def test_reproducible_and_in_range(self) -> None:
        a = random_rig(50, (-0.5, 0.5), (-0.2, 0.3), seed=3)
        b = random_rig(50, (-0.5, 0.5), (-0.2, 0.3), seed=3)
        c = random_rig(50, (-0.5, 0.5), (-0.2, 0.3), seed=4)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert not torch.allclose(a, c)
        yaw, pitch = camera_yaw_pitch(a).unbind(-1)
        assert float(yaw.min()) >= -0.5 and float(yaw.max()) <= 0.5
        assert float(pitch.min()) >= -0.2 and float(pitch.max()) <= 0.3
        _check_look_at(a)

    def test_rejects_bad_arguments(self) -> None:
        with pytest.raises(BadInputError):
            random_rig(0)
        with pytest.raises(BadInputError):
            random_rig(4, yaw_range=(1.0, -1.0))


class TestRigLabels:
    def test_round_trip(self) -> None:
        c2w = paper_rig(8)
        labels = rig_labels(c2w)
        assert labels.shape == (8, 25)
        K, R, t = eg3d_label_to_camera(labels, 512, 512)
        assert float(K[0, 0, 0]) == pytest.approx(EG3D_FOCAL * 512)
        assert float(K[0, 0, 2]) == pytest.approx(256.0)
        R_ref, t_ref = cam2world_to_extrinsics(c2w)
        torch.testing.assert_close(R, R_ref)
        torch.testing.assert_close(t, t_ref)
        torch.testing.assert_close(camera_centers(R, t), c2w[:, :3, 3])

    def test_dtype_follows_input(self) -> None:
        assert rig_labels(paper_rig(4).float()).dtype == torch.float32

    def test_rejects_wrong_shape(self) -> None:
        with pytest.raises(BadInputError):
            rig_labels(torch.eye(4))


def test_public_api() -> None:
    """Renaming or dropping a public name of mvface.synth is a conscious decision."""
    assert set(synth.__all__) == {
        "PAPER_LOOKAT",
        "PAPER_NUM_VIEWS",
        "PAPER_RADIUS",
        "Head",
        "HeadBackend",
        "RenderOutput",
        "ViewLandmarks",
        "camera_yaw_pitch",
        "create_backend",
        "grid_rig",
        "head_scale",
        "hidden_views",
        "iter_renders",
        "landmark_visibility",
        "lift_landmarks",
        "list_backends",
        "lookat_sampler_cam2world",
        "paper_rig",
        "project_landmarks",
        "random_rig",
        "register_backend",
        "rig_labels",
        "sample_depth",
        "spherical_rig",
        "transfer_landmarks",
    }
    for name in synth.__all__:
        assert hasattr(synth, name), name
