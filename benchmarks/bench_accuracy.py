"""Accuracy of every available model on every benchmark in ../shared/data, with CED plots.

Thin wrapper of ``mvface bench accuracy`` (:mod:`mvface.bench.accuracy` documents the
protocols); the table is appended to the repository's ``BENCHMARKS.md`` unless
``--markdown FILE`` or ``--no-markdown`` is given; reports and plots go to ``--out``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_accuracy.py                  # all faces, all models
    python benchmarks/bench_accuracy.py --limit 50 --model 3ddfa-v2 --no-markdown
"""

from __future__ import annotations

import sys
from pathlib import Path

from mvface.cli.bench_cmd import app

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    """Run ``mvface bench accuracy``, appending to the repository's BENCHMARKS.md by default."""
    if "--markdown" not in argv and "--no-markdown" not in argv:
        argv = [*argv, "--markdown", str(REPO / "BENCHMARKS.md")]
    app(["accuracy", *argv], prog_name="bench_accuracy.py")


if __name__ == "__main__":
    main(sys.argv[1:])
