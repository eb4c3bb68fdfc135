"""The benchmark scripts that live in the source checkout (``benchmarks/bench_*.py``).

``mvface bench synth`` and ``mvface bench train`` run ``benchmarks/bench_synth.py`` and
``benchmarks/bench_train.py`` unchanged, in a fresh interpreter (they start subprocesses of their
own and set thread counts at start-up). The scripts ship with the repository, not with the
package, so they are looked for in ``./benchmarks`` and beside the source tree this module was
imported from.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mvface.errors import NotAvailableError

__all__ = ["benchmark_script_dirs", "find_benchmark_script", "run_benchmark_script"]


def benchmark_script_dirs() -> list[Path]:
    """Folders searched for ``bench_<name>.py``: ``./benchmarks``, then the checkout's."""
    here = Path(__file__).resolve()
    dirs = [Path.cwd() / "benchmarks"]
    if len(here.parents) > 3:
        dirs.append(here.parents[3] / "benchmarks")  # <repo>/src/mvface/bench/scripts.py
    return list(dict.fromkeys(d.resolve() for d in dirs))


def find_benchmark_script(name: str) -> Path:
    """``benchmarks/bench_<name>.py``.

    Raises:
        NotAvailableError: not found (one line naming where it was looked for).
    """
    for folder in benchmark_script_dirs():
        path = folder / f"bench_{name}.py"
        if path.is_file():
            return path
    where = " or ".join(str(d) for d in benchmark_script_dirs())
    raise NotAvailableError(
        f"benchmark script bench_{name}.py not found in {where}; it ships with the mvface "
        "source repository: run from a checkout"
    )


def run_benchmark_script(name: str, args: Sequence[str]) -> int:
    """Run ``bench_<name>.py args...`` with this interpreter; returns its exit status."""
    script = find_benchmark_script(name)
    return subprocess.run([sys.executable, str(script), *args], check=False).returncode
