"""mvface: 3D-aware facial landmark detection trained with multiview consistency."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from mvface.errors import BadInputError, MvfaceError, NotAvailableError

try:
    __version__ = version("mvface")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["BadInputError", "MvfaceError", "NotAvailableError", "__version__"]
