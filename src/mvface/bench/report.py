"""Formatting for benchmark tables: numbers with n/a for missing values, ratios, markdown.

Results themselves are data (:mod:`mvface.bench.results`); these helpers only print them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def fmt(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, ``n/a`` for ``None``/NaN/inf."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def ratio(numerator: float | None, denominator: float | None) -> float:
    """``numerator / denominator``, NaN when either is missing, not finite, or the divisor 0."""
    if numerator is None or denominator is None:
        return float("nan")
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator == 0:
        return float("nan")
    return numerator / denominator


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table (cells converted with ``str``; ``|`` inside cells escaped).

    Raises:
        ValueError: a row with a different number of cells than ``headers``.
    """

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, the table {len(headers)}: {row!r}")
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
