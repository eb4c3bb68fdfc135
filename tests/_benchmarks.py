"""Load a script of ``benchmarks/`` as a module, for the tests that run it on small inputs.

Usage::

    from _benchmarks import load_benchmark

    bench_loader = load_benchmark("bench_loader")
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

#: The repository's ``benchmarks`` folder (scripts, not a package).
BENCHMARKS: Path = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported afresh as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
