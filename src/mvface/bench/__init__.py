"""Benchmarks as a library: inference speed, accuracy, machine description, result files.

``mvface bench NAME`` and the thin scripts in ``benchmarks/`` call these; nothing here is a
timed unit test. Every benchmark measures mvface and a peer or baseline in the same run and
reports ratios, the machine's CPU model and the thread settings. Each run is one JSON file
(:mod:`mvface.bench.results`); ``BENCHMARKS.md`` is generated from them.
"""

from __future__ import annotations

from mvface.bench.machine import MachineInfo, describe_machine, machine_info
from mvface.bench.report import markdown_table
from mvface.bench.results import BenchResult, ResultTable, write_result, write_summary

__all__ = [
    "BenchResult",
    "MachineInfo",
    "ResultTable",
    "describe_machine",
    "machine_info",
    "markdown_table",
    "write_result",
    "write_summary",
]
