"""The reader fuzzing of ``benchmarks/fuzz_readers.py``, a few hundred cases per CI run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_readers.py"
_spec = importlib.util.spec_from_file_location("fuzz_readers", BENCHMARK)
assert _spec is not None and _spec.loader is not None
fuzz_readers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_readers)

CASES_PER_TARGET = 60


@pytest.mark.parametrize("name", sorted(fuzz_readers.TARGETS))
def test_only_clean_errors_escape(name: str, tmp_path: Path) -> None:
    count = fuzz_readers.TARGETS[name](tmp_path, CASES_PER_TARGET)
    assert count >= CASES_PER_TARGET // 2  # the strategy produced real cases


def test_targets_cover_every_annotation_format() -> None:
    assert set(fuzz_readers.TARGETS) >= {"images", "pts", "dlib-xml", "coco-json", "mat"}
