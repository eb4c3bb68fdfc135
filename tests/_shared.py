"""Where the shared real data lives, for tests that need it (skipped cleanly when absent).

Usage::

    from _shared import SHARED, requires_shared

    @requires_shared("data/300w/afw")
    def test_something() -> None:
        root = SHARED / "data" / "300w" / "afw"
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: The ``shared`` folder next to the repository (``<repo>/../shared``).
SHARED: Path = Path(__file__).resolve().parents[1].parent / "shared"


def requires_shared(subpath: str) -> pytest.MarkDecorator:
    """Skip the test (with the path as reason) unless ``SHARED / subpath`` exists."""
    path = SHARED / subpath
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not found: {path}")
