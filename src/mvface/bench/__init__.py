"""Benchmarks as a library: inference speed, accuracy, machine description, markdown reports.

``mvface bench NAME`` and the thin scripts in ``benchmarks/`` call these; nothing here is a
timed unit test. Every benchmark measures mvface and a peer or baseline in the same run and
reports ratios, the machine's CPU model and the thread settings.
"""

from __future__ import annotations

from mvface.bench.machine import MachineInfo, describe_machine, machine_info
from mvface.bench.report import append_markdown, markdown_table

__all__ = ["MachineInfo", "append_markdown", "describe_machine", "machine_info", "markdown_table"]
