"""mvface: 3D-aware facial landmark detection trained with multiview consistency."""

from __future__ import annotations

from typing import Any

from mvface._version import __version__
from mvface.errors import BadInputError, MvfaceError, NotAvailableError

__all__ = [
    "BadInputError",
    "MvfaceError",
    "NotAvailableError",
    "__version__",
    "list_models",
    "load",
]


def __getattr__(name: str) -> Any:
    # ``mvface.load`` and ``mvface.list_models`` pull in torch and the models: import them only
    # when asked for.
    if name == "load":
        from mvface.api import load

        return load
    if name == "list_models":
        from mvface.models import list_models

        return list_models
    raise AttributeError(f"module 'mvface' has no attribute {name!r}")
