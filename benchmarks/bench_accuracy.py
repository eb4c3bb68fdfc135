"""Accuracy of every available model on every benchmark in ../shared/data, with CED plots.

Thin wrapper of ``mvface bench accuracy`` (:mod:`mvface.bench.accuracy` documents the
protocols); the run is written to the repository's ``results/`` (and ``BENCHMARKS.md``
regenerated) unless ``--results DIR`` or ``--no-results`` is given; reports and plots go to
``--out``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_accuracy.py                  # all faces, all models
    python benchmarks/bench_accuracy.py --limit 50 --model 3ddfa-v2 --no-results
"""

from __future__ import annotations

import sys
from pathlib import Path

from mvface.cli.bench_cmd import app

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    """Run ``mvface bench accuracy``, writing to the repository's results/ by default."""
    if "--results" not in argv and "--no-results" not in argv:
        argv = [*argv, "--results", str(REPO / "results")]
    app(["accuracy", *argv], prog_name="bench_accuracy.py")


if __name__ == "__main__":
    main(sys.argv[1:])
