"""benchmarks/bench_teacher.py: the fused rows are the share-weighted members."""

from __future__ import annotations

import numpy as np

from _scripts import load_benchmark

bench_teacher = load_benchmark("bench_teacher")


def test_fused_uses_the_jaw_and_inner_shares() -> None:
    tddfa = np.zeros((2, 68, 2))
    base_plus = np.ones((2, 68, 2))
    preds = {"3ddfa-v2 flip": {"aflw": tddfa}, "base+": {"aflw": base_plus}}
    out = bench_teacher.fused(preds, "aflw", 0.8, 0.6)
    np.testing.assert_allclose(out[:, :17], 0.2)
    np.testing.assert_allclose(out[:, 17:], 0.4)


def test_members_are_the_teachers_ingredients() -> None:
    assert set(bench_teacher.MEMBERS) == {"3ddfa-v2", "3ddfa-v2 flip", "base+"}
