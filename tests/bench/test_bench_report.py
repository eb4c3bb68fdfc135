import math

import pytest

from mvface.bench.report import fmt, markdown_table, ratio


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
