"""The reader fuzzing of ``benchmarks/fuzz_readers.py``, a few hundred cases per CI run."""

from __future__ import annotations

from pathlib import Path

import pytest

from _scripts import load_benchmark

fuzz_readers = load_benchmark("fuzz_readers")

CASES_PER_TARGET = 60


@pytest.mark.parametrize("name", sorted(fuzz_readers.TARGETS))
def test_only_clean_errors_escape(name: str, tmp_path: Path) -> None:
    count = fuzz_readers.TARGETS[name](tmp_path, CASES_PER_TARGET)
    assert count >= CASES_PER_TARGET // 2  # the strategy produced real cases


def test_targets_cover_every_annotation_format() -> None:
    assert set(fuzz_readers.TARGETS) >= {"images", "pts", "dlib-xml", "coco-json", "mat"}
