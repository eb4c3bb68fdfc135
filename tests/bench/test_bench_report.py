import math
import threading
from pathlib import Path

import pytest

from mvface.bench.report import (
    DEFAULT_HEADER,
    append_markdown,
    fmt,
    markdown_table,
    ratio,
    run_heading,
)


def test_markdown_table_has_header_separator_and_rows() -> None:
    text = markdown_table(["a", "b"], [[1, "x|y"], [2.5, "z"]])
    lines = text.splitlines()
    assert lines[0] == "| a | b |"
    assert lines[1] == "|---|---|"
    assert lines[2] == "| 1 | x\\|y |"  # a pipe inside a cell is escaped
    assert len(lines) == 4


def test_markdown_table_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError, match="row has 1 cells"):
        markdown_table(["a", "b"], [[1]])


def test_fmt_and_ratio_handle_missing_values() -> None:
    assert fmt(1.23456, 3) == "1.235"
    assert fmt(float("nan")) == fmt(None) == fmt(math.inf) == "n/a"
    assert ratio(3.0, 2.0) == 1.5
    assert math.isnan(ratio(1.0, 0.0)) and math.isnan(ratio(None, 2.0))


def test_append_markdown_creates_then_appends_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "BENCHMARKS.md"
    append_markdown(path, "## first\n\n| a |\n|---|\n| 1 |\n")
    append_markdown(path, "## second\n")
    text = path.read_text()
    assert text.startswith(DEFAULT_HEADER.splitlines()[0])
    assert text.index("## first") < text.index("## second")
    assert text.endswith("## second\n")
    assert not [p for p in path.parent.iterdir() if p.name != "BENCHMARKS.md"]  # no temp files


def test_concurrent_appends_all_land(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    threads = [
        threading.Thread(target=append_markdown, args=(path, f"## run {i}\n")) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = path.read_text()
    assert all(f"## run {i}\n" in text for i in range(8))


def test_run_heading_names_command_and_machine() -> None:
    text = run_heading("Inference speed", "mvface bench inference", "some CPU")
    assert text.startswith("## Inference speed (")
    assert "`mvface bench inference`" in text and "machine: some CPU" in text
