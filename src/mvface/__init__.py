"""mvface: 3D-aware facial landmark detection trained with multiview consistency."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mvface.errors import BadInputError, MvfaceError, NotAvailableError

try:
    __version__ = version("mvface")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["BadInputError", "MvfaceError", "NotAvailableError", "__version__", "load"]


def __getattr__(name: str) -> Any:
    # ``mvface.load`` pulls in torch and the models: import it only when asked for.
    if name == "load":
        from mvface.api import load

        return load
    raise AttributeError(f"module 'mvface' has no attribute {name!r}")
