"""Inference speed of every landmark model, PyTorch eager vs ONNX Runtime, peers alongside.

Thin wrapper of ``mvface bench inference`` (:mod:`mvface.bench.inference` documents what is
measured and how); the run is written to the repository's ``results/``
(and ``BENCHMARKS.md`` regenerated) unless ``--results DIR`` or ``--no-results`` is given.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_inference.py                 # every model, 200 calls
    python benchmarks/bench_inference.py --model mediapipe-68 --model dlib --repeats 50
"""

from __future__ import annotations

import sys
from pathlib import Path

from mvface.cli.bench_cmd import app

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    """Run ``mvface bench inference``, writing to the repository's results/ by default."""
    if "--results" not in argv and "--no-results" not in argv:
        argv = [*argv, "--results", str(REPO / "results")]
    app(["inference", *argv], prog_name="bench_inference.py")


if __name__ == "__main__":
    main(sys.argv[1:])
