"""``--engine`` and ``--device``: what runs the landmark network, for every inference command.

``auto`` is ONNX Runtime on the CPU and PyTorch on CUDA (:mod:`mvface.models.onnx_engine`).
An unknown name is a usage error (exit 2); ``--device cuda`` without a GPU is one line and exit 3
(:class:`~mvface.errors.NotAvailableError`). When ONNX Runtime cannot be used under ``auto`` the
command goes on in PyTorch and says so in one ``warning:`` line.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from mvface.cli._common import check_choice, note
from mvface.models.onnx_engine import DEVICES, ENGINES, EngineWarning

EngineOption = Annotated[
    str,
    typer.Option(
        help="What runs the landmark network: auto (ONNX Runtime on the CPU, PyTorch on CUDA), "
        "onnx or torch. Models without a PyTorch network (dlib) ignore it.",
        callback=check_choice("engine", lambda: ENGINES),
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        help="Device of the landmark network: cpu or cuda.",
        callback=check_choice("device", lambda: DEVICES),
    ),
]


@contextmanager
def engine_warnings() -> Iterator[None]:
    """Show each :class:`EngineWarning` raised inside as one ``warning: ...`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EngineWarning)
        yield
    for w in caught:
        if issubclass(w.category, EngineWarning):
            note(f"warning: {w.message}")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
