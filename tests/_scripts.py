"""Load a script of ``benchmarks/`` or ``tools/`` as a module, for the tests that run its
functions on small inputs.

Usage::

    from _scripts import load_benchmark, load_tool

    bench_loader = load_benchmark("bench_loader")
    convert_blazeface = load_tool("convert_blazeface")
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

#: The repository's ``benchmarks`` and ``tools`` folders (scripts, not packages).
BENCHMARKS: Path = Path(__file__).resolve().parents[1] / "benchmarks"
TOOLS: Path = Path(__file__).resolve().parents[1] / "tools"


def load_script(folder: Path, name: str) -> ModuleType:
    """``<folder>/<name>.py`` imported afresh as the module ``name``.

    ``folder`` goes on ``sys.path`` first, as ``python <folder>/<name>.py`` puts it there, so
    that a script's imports of its neighbours (``from tflite_reader import read_tflite``)
    resolve.
    """
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (:func:`load_script`)."""
    return load_script(BENCHMARKS, name)


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (:func:`load_script`)."""
    return load_script(TOOLS, name)
