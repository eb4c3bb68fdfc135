"""The iBUG 68-point scheme as data: groups, names, flip permutation."""

from __future__ import annotations

import numpy as np

from mvface.data.scheme import (
    COARSE_GROUPS,
    FLIP_PERMUTATION,
    GROUPS,
    LANDMARK_NAMES,
    NUM_LANDMARKS,
    OUTER_EYE_CORNERS,
    mirror_points,
)


class TestFlipPermutation:
    def test_is_a_permutation(self) -> None:
        assert sorted(FLIP_PERMUTATION) == list(range(NUM_LANDMARKS))

    def test_is_an_involution(self) -> None:
        assert all(FLIP_PERMUTATION[FLIP_PERMUTATION[i]] == i for i in range(NUM_LANDMARKS))

    def test_swaps_outer_eye_corners(self) -> None:
        right, left = OUTER_EYE_CORNERS
        assert (right, left) == (36, 45)
        assert FLIP_PERMUTATION[36] == 45 and FLIP_PERMUTATION[45] == 36

    def test_fixed_points_are_on_the_midline(self) -> None:
        fixed = {i for i in range(NUM_LANDMARKS) if FLIP_PERMUTATION[i] == i}
        assert fixed == {8, 27, 28, 29, 30, 33, 51, 57, 62, 66}

    def test_maps_left_names_to_right_names(self) -> None:
        for i, j in enumerate(FLIP_PERMUTATION):
            a, b = LANDMARK_NAMES[i], LANDMARK_NAMES[j]
            if a.startswith("right_"):
                assert b.startswith("left_"), (a, b)
            if a.startswith("left_"):
                assert b.startswith("right_"), (a, b)


class TestMirrorPoints:
    def test_hand_computed(self) -> None:
        points = np.zeros((68, 3))
        points[36] = [2.0, 5.0, 7.0]  # subject's right outer eye corner
        out = mirror_points(points, 10)
        np.testing.assert_array_equal(out[45], [7.0, 5.0, 7.0])  # x -> 10 - 1 - 2; z kept
        np.testing.assert_array_equal(out[36], [9.0, 0.0, 0.0])

    def test_batched_widths_and_own_inverse(self) -> None:
        points = np.random.default_rng(0).uniform(0, 30, (2, 3, 68, 2))
        widths = np.array([[31.0, 40.0, 50.0], [64.0, 33.0, 45.0]])
        out = mirror_points(points, widths)
        np.testing.assert_allclose(out[1, 2, 45, 0], 44.0 - points[1, 2, 36, 0])
        np.testing.assert_allclose(mirror_points(out, widths), points)


class TestGroups:
    def test_groups_partition_all_points(self) -> None:
        indices = [i for group in GROUPS.values() for i in group]
        assert sorted(indices) == list(range(NUM_LANDMARKS))

    def test_coarse_groups_partition_all_points(self) -> None:
        indices = [i for group in COARSE_GROUPS.values() for i in group]
        assert sorted(indices) == list(range(NUM_LANDMARKS))

    def test_flip_keeps_symmetric_groups(self) -> None:
        for name in ("jaw", "nose_bridge", "nose_base", "outer_lips", "inner_lips"):
            group = set(GROUPS[name])
            assert {FLIP_PERMUTATION[i] for i in group} == group


class TestNames:
    def test_one_unique_name_per_point(self) -> None:
        assert len(LANDMARK_NAMES) == NUM_LANDMARKS
        assert len(set(LANDMARK_NAMES)) == NUM_LANDMARKS

    def test_known_names(self) -> None:
        assert LANDMARK_NAMES[36] == "right_eye_outer"
        assert LANDMARK_NAMES[45] == "left_eye_outer"
