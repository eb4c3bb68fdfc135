"""mvface's version string, read from the installed package's metadata.

A module of its own, at the bottom of the layers, so that any module can record the version
(run folders, dataset manifests, demo pages) without importing the package facade ``mvface``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("mvface")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
