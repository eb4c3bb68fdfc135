"""Exceptions mvface raises for expected failures.

Every expected failure (a corrupt image, a wrong landmark count, a camera with NaN) is a
:class:`BadInputError` whose message is one line naming the file and the problem. The CLI prints
that line and goes on (batch commands) or exits non-zero; it never shows a traceback for them.
"""

from __future__ import annotations

from pathlib import Path


class MvfaceError(Exception):
    """Base class of every error mvface raises on purpose."""


class BadInputError(MvfaceError):
    """An input file or value mvface cannot use.

    Args:
        source: the file (or a short description of the value) that is bad.
        problem: what is wrong with it, in a few words.
    """

    def __init__(self, source: str | Path, problem: str) -> None:
        self.source = str(source)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.source}: {self.problem}")


class NotAvailableError(MvfaceError):
    """A feature that needs something absent here (optional package, weights, data)."""
