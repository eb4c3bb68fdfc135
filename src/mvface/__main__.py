"""``python -m mvface``: the ``mvface`` command, for environments without the console script."""

from __future__ import annotations

from mvface.cli.main import run

if __name__ == "__main__":
    run()
