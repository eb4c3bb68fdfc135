"""Registry of dataset readers: one file per format, each registering itself by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mvface._registry import Registry
from mvface.data.record import Dataset
from mvface.errors import BadInputError


class ReaderFn(Protocol):
    """A reader: ``reader(root, limit=None) -> Dataset``.

    ``root`` is a folder (or, for single-file formats such as an imglab XML or a COCO JSON,
    the file itself). Bad items are skipped with a one-line reason in ``Dataset.skipped``; a
    root that cannot be read at all raises :class:`~mvface.errors.BadInputError`.
    """

    def __call__(self, root: Path, limit: int | None = None) -> Dataset: ...


_READERS: Registry[ReaderFn] = Registry(
    "dataset format",
    unknown_error=lambda name, names: ValueError(
        f"unknown dataset format {name!r}; known: {', '.join(names)}"
    ),
    duplicate_error=lambda name: ValueError(f"reader {name!r} registered twice"),
)


def register_reader(name: str) -> Callable[[ReaderFn], ReaderFn]:
    """Decorator registering a reader function under ``name``."""
    return _READERS.register(name)


def list_readers() -> list[str]:
    """Names of the registered dataset formats, sorted."""
    return _READERS.list()


def get_reader(name: str) -> ReaderFn:
    """The reader registered as ``name``."""
    return _READERS.get(name)


def read_dataset(name: str, root: str | Path, limit: int | None = None) -> Dataset:
    """Read the dataset at ``root`` with the reader registered as ``name``."""
    root = Path(root)
    if not root.exists():
        raise BadInputError(root, "does not exist")
    return get_reader(name)(root, limit=limit)
