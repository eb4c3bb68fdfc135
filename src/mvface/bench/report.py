"""Benchmark reports: markdown tables appended to ``BENCHMARKS.md`` without losing a run.

:func:`append_markdown` reads the file, adds the new section at the end and writes the whole file
back atomically (:func:`mvface._io.atomic_write_text`: a reader never sees half a file), under an
exclusive lock, so two benchmarks finishing at the same time both land in the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mvface._io import atomic_write_text

#: First lines of a new ``BENCHMARKS.md``.
DEFAULT_HEADER = (
    "# mvface benchmarks\n\n"
    "Appended by `mvface bench NAME` (one section per run, newest last). Each run measures "
    "mvface and its peers or baseline in the same process, interleaved, and states the machine "
    "and thread settings; compare ratios within a run, not absolute times across runs.\n"
)


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


def run_heading(title: str, command: str, machine: str) -> str:
    """Heading of one run's section: title with UTC time, the command, the machine line."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"## {title} ({when})\n\n`{command}`\n\nmachine: {machine}\n"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock tied to ``path`` (a lock file in the temp folder, not beside it)."""
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"mvface-bench-{key}.lock"
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def append_markdown(path: str | Path, section: str, header: str = DEFAULT_HEADER) -> Path:
    """Append ``section`` to the markdown file ``path`` (created with ``header`` if absent).

    The file is rewritten atomically under a lock; a blank line separates sections.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path):
        old = path.read_text(encoding="utf-8") if path.is_file() else header
        text = old.rstrip("\n") + "\n\n" + section.strip("\n") + "\n"
        atomic_write_text(path, text)
    return path
