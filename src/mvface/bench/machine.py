"""The machine a benchmark ran on: CPU model, cores, thread settings, load, library versions.

Every benchmark prints :func:`describe_machine` and puts it above its table, so a number is never
read without the machine and the thread settings that produced it.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Environment variables that set the thread pools of the numeric libraries.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> tuple[float, float, float] | None:
    """1, 5 and 15 minute load averages (runnable processes), or ``None`` where unknown."""
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "onnxruntime", "cv2", "dlib", "lightning"):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module else None
        if version:
            out[name] = str(version)
    return out


@dataclass
class MachineInfo:
    """What a benchmark reports about the machine.

    Attributes:
        cpu: CPU model name.
        cpus: logical CPUs usable by this process.
        torch_threads: ``torch.get_num_threads()`` when torch is imported, else ``None``.
        thread_env: the thread environment variables that are set (name -> value).
        load: load averages (1, 5, 15 min) when measured, or ``None``.
        versions: versions of the libraries already imported (python, torch, onnxruntime, ...).
    """

    cpu: str
    cpus: int
    torch_threads: int | None
    thread_env: dict[str, str] = field(default_factory=dict)
    load: tuple[float, float, float] | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    def describe(self) -> str:
        """One line: CPU, cores, thread settings, load and versions."""
        env = ", ".join(f"{k}={v}" for k, v in self.thread_env.items()) or "no thread env vars"
        parts = [f"{self.cpu}, {self.cpus} usable CPUs", env]
        if self.torch_threads is not None:
            parts.append(f"torch threads {self.torch_threads}")
        if self.load is not None:
            parts.append("load average " + " / ".join(f"{v:.2f}" for v in self.load))
        parts.append(", ".join(f"{k} {v}" for k, v in self.versions.items()))
        return "; ".join(parts)


def machine_info() -> MachineInfo:
    """Describe this machine now (load average at the time of the call)."""
    torch = sys.modules.get("torch")
    threads = int(torch.get_num_threads()) if torch is not None else None
    return MachineInfo(
        cpu=cpu_model(),
        cpus=usable_cpus(),
        torch_threads=threads,
        thread_env={k: os.environ[k] for k in THREAD_ENV_VARS if k in os.environ},
        load=load_average(),
        versions=_versions(),
    )


def describe_machine() -> str:
    """:meth:`MachineInfo.describe` of :func:`machine_info`."""
    return machine_info().describe()
