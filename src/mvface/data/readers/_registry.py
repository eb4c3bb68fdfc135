"""Registry of dataset readers: one file per format, each registering itself by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mvface.data.record import Dataset
from mvface.errors import BadInputError


class ReaderFn(Protocol):
    """A reader: ``reader(root, limit=None) -> Dataset``.

    ``root`` is a folder (or, for single-file formats such as an imglab XML or a COCO JSON,
    the file itself). Bad items are skipped with a one-line reason in ``Dataset.skipped``; a
    root that cannot be read at all raises :class:`~mvface.errors.BadInputError`.
    """

    def __call__(self, root: Path, limit: int | None = None) -> Dataset: ...


_READERS: dict[str, ReaderFn] = {}


def register_reader(name: str) -> Callable[[ReaderFn], ReaderFn]:
    """Decorator registering a reader function under ``name``."""

    def deco(fn: ReaderFn) -> ReaderFn:
        if name in _READERS:
            raise ValueError(f"reader {name!r} registered twice")
        _READERS[name] = fn
        return fn

    return deco


def list_readers() -> list[str]:
    """Names of the registered dataset formats, sorted."""
    return sorted(_READERS)


def get_reader(name: str) -> ReaderFn:
    """The reader registered as ``name``."""
    try:
        return _READERS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset format {name!r}; known: {', '.join(list_readers())}"
        ) from None


def read_dataset(name: str, root: str | Path, limit: int | None = None) -> Dataset:
    """Read the dataset at ``root`` with the reader registered as ``name``."""
    root = Path(root)
    if not root.exists():
        raise BadInputError(root, "does not exist")
    return get_reader(name)(root, limit=limit)
