"""Tests of mvface.geometry.head_pose: pose from 68 points, against closed-form answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _shared import SHARED, requires_shared
from mvface.data.scheme import FLIP_PERMUTATION
from mvface.errors import BadInputError
from mvface.geometry.head_pose import (
    JAW_MIN_WEIGHT,
    MEAN_FACE_68,
    fit_rotation_2d,
    head_pose,
    head_pose_2d,
    head_pose_3d,
    jaw_visibility,
    rotation_from_euler,
    rotation_to_euler_np,
)
from mvface.geometry.rotations import euler_to_rotation, rotation_to_euler

NOSE_TIP, RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 30, 36, 45  # iBUG, 0-based (subject's right/left)


def _angles(n: int, max_yaw_deg: float = 80.0, seed: int = 0) -> np.ndarray:
    """Random ``[pitch, yaw, roll]`` radians: pitch and roll within ±60°, |yaw| ≤ max_yaw_deg."""
    rng = np.random.default_rng(seed)
    limit = np.radians([60.0, max_yaw_deg, 60.0])
    return rng.uniform(-limit, limit, (n, 3))


def _image_points(
    angles: np.ndarray, scale: float = 60.0, centre: tuple[float, float] = (220.0, 180.0)
) -> np.ndarray:
    """``(N, 68, 3)`` image pixels (y down, z toward the camera) of the mean face posed by
    ``angles`` under a weak-perspective camera, as AFLW2000-3D's ``pt3d = s R v + t``."""
    R = rotation_from_euler(angles)
    y_up = scale * np.einsum("nij,kj->nki", R, MEAN_FACE_68)
    out = y_up * np.array([1.0, -1.0, 1.0])
    out[..., 0] += centre[0]
    out[..., 1] += centre[1]
    return out


def _perspective_points(angles: np.ndarray, distance: float, focal: float = 1000.0) -> np.ndarray:
    """``(N, 68, 2)`` pixels of the mean face (unit RMS radius, ~12 cm) seen by a pinhole camera
    ``distance`` units away (an OpenCV camera: x right, y down, looking along +z)."""
    R = rotation_from_euler(angles)
    y_up = np.einsum("nij,kj->nki", R, MEAN_FACE_68)  # x right, y up, z toward the camera
    cam = np.stack([y_up[..., 0], -y_up[..., 1], distance - y_up[..., 2]], axis=-1)
    return focal * cam[..., :2] / cam[..., 2:] + np.array([320.0, 240.0])


def _wrap_deg(a: np.ndarray) -> np.ndarray:
    return np.degrees((a + np.pi) % (2 * np.pi) - np.pi)


class TestMeanFace:
    def test_frame_and_normalisation(self) -> None:
        face = MEAN_FACE_68
        assert face.shape == (68, 3) and not face.flags.writeable
        np.testing.assert_allclose(face.mean(0), 0.0, atol=1e-4)
        assert np.sqrt((face**2).sum(1).mean()) == pytest.approx(1.0, abs=1e-4)
        # model space: x toward the subject's left, y up, z toward the camera
        assert face[LEFT_EYE_OUTER, 0] > 0 > face[RIGHT_EYE_OUTER, 0]
        assert face[RIGHT_EYE_OUTER, 1] > face[NOSE_TIP, 1] > face[8, 1]  # eyes, nose, chin
        assert face[NOSE_TIP, 2] > face[RIGHT_EYE_OUTER, 2] > face[0, 2]  # nose nearest

    def test_symmetric(self) -> None:
        mirrored = MEAN_FACE_68[list(FLIP_PERMUTATION)] * np.array([-1.0, 1.0, 1.0])
        np.testing.assert_allclose(mirrored, MEAN_FACE_68, atol=2e-5)


class TestEulerTwins:
    def test_rotation_from_euler_matches_torch(self) -> None:
        angles = _angles(50, 89.0)
        ours = rotation_from_euler(angles)
        np.testing.assert_allclose(ours, euler_to_rotation(torch.from_numpy(angles)).numpy())

    def test_rotation_to_euler_matches_torch(self) -> None:
        locked = [[0.3, math.pi / 2, 0.2], [0.0, -math.pi / 2, 0.0]]  # gimbal lock
        angles = np.concatenate([_angles(50, 89.0), locked])
        R = rotation_from_euler(angles)
        ours = rotation_to_euler_np(R)
        np.testing.assert_allclose(ours, rotation_to_euler(torch.from_numpy(R)).numpy(), atol=1e-12)
        np.testing.assert_allclose(ours[:50], angles[:50], atol=1e-12)


class TestHeadPose3D:
    def test_recovers_known_rotations(self) -> None:
        angles = _angles(100, 85.0)
        np.testing.assert_allclose(head_pose_3d(_image_points(angles)), angles, atol=1e-9)

    def test_batch_equals_loop(self) -> None:
        pts = _image_points(_angles(6)) + np.random.default_rng(1).normal(size=(6, 68, 3))
        batch = head_pose_3d(pts)
        loop = np.concatenate([head_pose_3d(p[None]) for p in pts])
        np.testing.assert_allclose(batch, loop, atol=1e-12)


class TestHeadPose2D:
    def test_recovers_known_rotations(self) -> None:
        # exact on noise-free weak-perspective projections, up to profile views
        angles = _angles(100, 85.0)
        pts = _image_points(angles)[..., :2]
        np.testing.assert_allclose(head_pose_2d(pts), angles, atol=1e-7)
        np.testing.assert_allclose(head_pose_2d(pts, iterations=0), angles, atol=1e-7)

    def test_head_pose_uses_x_and_y(self) -> None:
        pts = _image_points(_angles(5))
        np.testing.assert_allclose(head_pose(pts), head_pose_2d(pts[..., :2]), atol=1e-12)
        bent = pts.copy()
        bent[..., 2] *= -3.0  # z is not used
        np.testing.assert_allclose(head_pose(bent), head_pose(pts), atol=1e-12)

    def test_batch_equals_loop(self) -> None:
        pts = _image_points(_angles(7))[..., :2]
        pts = pts + np.random.default_rng(2).normal(scale=2.0, size=pts.shape)
        batch = head_pose_2d(pts)
        loop = np.concatenate([head_pose_2d(p[None]) for p in pts])
        np.testing.assert_allclose(batch, loop, atol=1e-10)

    def test_noise_robustness(self) -> None:
        # 1.5 px noise on a face ~130 px wide: a few tenths of a degree on average
        angles = _angles(200, 60.0, seed=3)
        pts = _image_points(angles)[..., :2]
        noisy = pts + np.random.default_rng(4).normal(scale=1.5, size=pts.shape)
        err = np.abs(_wrap_deg(head_pose_2d(noisy) - angles))
        assert err.mean() < 1.0 and np.median(err) < 0.8

    def test_outliers_are_down_weighted(self) -> None:
        angles = _angles(50, 60.0, seed=5)
        pts = _image_points(angles)[..., :2]
        rng = np.random.default_rng(6)
        bad = pts.copy()
        for face in bad:  # four inner points thrown 40 px away
            face[rng.choice(np.arange(17, 68), 4, replace=False)] += rng.normal(0, 40, (4, 2))
        robust = np.abs(_wrap_deg(head_pose_2d(bad) - angles)).mean()
        plain = np.abs(_wrap_deg(head_pose_2d(bad, iterations=0) - angles)).mean()
        assert robust < 0.8 * plain

    def test_far_jaw_silhouette_is_down_weighted(self) -> None:
        # a face turned 50°: its far jaw contour slid 10 px outward (a 2D silhouette instead of
        # the 3D jaw line) moves the pose much less than the same error on the near side
        angles = np.array([[0.0, math.radians(50), 0.0]])
        pts = _image_points(angles)[..., :2]
        # positive yaw: the subject turns to their right, which moves away (jaw points 0-7, at
        # the image's left); their left cheek (points 9-16) faces the camera
        far, near = pts.copy(), pts.copy()
        far[0, 0:8, 0] -= 10.0
        near[0, 9:17, 0] += 10.0
        err_far = np.abs(_wrap_deg(head_pose_2d(far) - angles)).max()
        err_near = np.abs(_wrap_deg(head_pose_2d(near) - angles)).max()
        assert err_far < 1.5 and err_far < 0.6 * err_near

    def test_jaw_visibility(self) -> None:
        R = rotation_from_euler(np.radians([[0.0, 0.0, 0.0], [0.0, 70.0, 0.0]]))
        vis = jaw_visibility(R)
        assert vis.shape == (2, 17)
        assert (vis[0] > 0.5).all()  # frontal: every jaw point faces the camera
        np.testing.assert_allclose(vis[0], vis[0, ::-1])  # symmetric
        assert vis[1, 0] == JAW_MIN_WEIGHT and vis[1, 16] > 0.9  # turned right: right side hidden


class TestSyntheticViews:
    """Known camera rotations: sign and size of each angle, 2D and 3D input."""

    @pytest.mark.parametrize(
        ("angles_deg", "check"),
        [
            ((0.0, 60.0, 0.0), "yaw+"),
            ((0.0, -60.0, 0.0), "yaw-"),
            ((25.0, 0.0, 0.0), "pitch+"),
            ((-25.0, 0.0, 0.0), "pitch-"),
            ((0.0, 0.0, 30.0), "roll+"),
            ((0.0, 0.0, -30.0), "roll-"),
            ((15.0, 45.0, -10.0), ""),
            ((-20.0, -60.0, 15.0), ""),
        ],
    )
    def test_perspective_views(self, angles_deg: tuple[float, float, float], check: str) -> None:
        angles = np.radians([angles_deg])
        # a pinhole camera 50 mean-face radii away (~3.5 m): close to the weak-perspective model
        # of the fit (at 20 radii the perspective costs up to 2°, see head_pose's docstring)
        pts2 = _perspective_points(angles, distance=50.0)
        for pose in (
            head_pose(pts2),
            head_pose(_image_points(angles)),
            head_pose_3d(_image_points(angles)),
        ):
            np.testing.assert_allclose(np.degrees(pose[0]), angles_deg, atol=1.0)
        nose_x = pts2[0, NOSE_TIP, 0]
        eyes = (pts2[0, RIGHT_EYE_OUTER] + pts2[0, LEFT_EYE_OUTER]) / 2
        eye_line = pts2[0, LEFT_EYE_OUTER] - pts2[0, RIGHT_EYE_OUTER]
        pitch, yaw, roll = np.degrees(head_pose(pts2)[0])
        if check == "yaw+":  # the subject turns to their right: nose left of the eyes' middle
            assert nose_x < eyes[0] - 5 and yaw > 55
        if check == "yaw-":
            assert nose_x > eyes[0] + 5 and yaw < -55
        if check.startswith("pitch"):  # face turns up: the nose tip rises toward the eye line
            base = _perspective_points(np.zeros((1, 3)), distance=50.0)
            base_eyes = (base[0, RIGHT_EYE_OUTER, 1] + base[0, LEFT_EYE_OUTER, 1]) / 2
            rises = pts2[0, NOSE_TIP, 1] - eyes[1] < base[0, NOSE_TIP, 1] - base_eyes
            assert rises == (pitch > 0)
        if check.startswith("roll"):  # roll ≈ the eye line's image angle, clockwise positive
            assert roll == pytest.approx(math.degrees(math.atan2(eye_line[1], eye_line[0])), abs=1)


@requires_shared("data/aflw2000_3d_dev")
def test_agrees_with_aflw2000_pose_para() -> None:
    """The annotated 68 points of real faces give their 3DMM fit's pose (same convention)."""
    from mvface.data.readers import read_dataset

    samples = read_dataset("aflw2000-3d", SHARED / "data" / "aflw2000_3d_dev", limit=60).samples
    points = np.stack([s.landmarks for s in samples if s.landmarks is not None])
    pose_para = np.stack([s.pose for s in samples if s.pose is not None])
    truth = rotation_to_euler_np(rotation_from_euler(pose_para))  # canonical: |yaw| <= 90°
    for pose in (head_pose(points), head_pose_3d(points)):
        err = np.abs(_wrap_deg(pose - truth))
        assert (np.median(err, axis=0) < 2.0).all() and err[:, 1].mean() < 2.0
        turned = np.abs(truth[:, 1]) > np.radians(20)
        assert (np.sign(pose[turned, 1]) == np.sign(truth[turned, 1])).all()


class TestInputs:
    def test_bad_shapes(self) -> None:
        with pytest.raises(BadInputError, match="points"):
            head_pose(np.zeros((2, 67, 2)))
        with pytest.raises(BadInputError, match="points"):
            head_pose_2d(np.zeros((2, 68, 3)))
        with pytest.raises(BadInputError, match="points"):
            head_pose_3d(np.zeros((68, 3)))

    def test_non_finite_face_gets_nan_pose(self) -> None:
        angles = _angles(3)
        pts = _image_points(angles)[..., :2]
        pts[1, 5, 0] = np.nan
        pose = head_pose(pts)
        assert np.isnan(pose[1]).all()
        np.testing.assert_allclose(pose[[0, 2]], angles[[0, 2]], atol=1e-7)
        with pytest.raises(BadInputError, match="NaN"):
            head_pose_2d(pts)

    def test_collinear_face_gets_nan_pose(self) -> None:
        angles = _angles(2)
        pts = _image_points(angles)[..., :2]
        line = np.linspace(0, 1, 68)[:, None] * np.array([30.0, 40.0]) + 5.0
        pose = head_pose(np.stack([pts[0], line, np.full((68, 2), 7.0), pts[1]]))
        assert np.isnan(pose[1:3]).all()
        np.testing.assert_allclose(pose[[0, 3]], angles, atol=1e-7)

    def test_empty(self) -> None:
        assert head_pose(np.zeros((0, 68, 2))).shape == (0, 3)

    def test_weights(self) -> None:
        pts = _image_points(_angles(2))[..., :2]
        with pytest.raises(BadInputError, match="weights"):
            fit_rotation_2d(pts, np.zeros(68))
        with pytest.raises(BadInputError, match="weights"):
            fit_rotation_2d(pts, -np.ones(68))
