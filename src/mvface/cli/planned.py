"""Commands that later work fills in; until then they say so and exit non-zero."""

from __future__ import annotations

from collections.abc import Callable

import typer

from mvface.cli._common import EXIT_NOT_AVAILABLE, fail

#: name -> what the command will do (and the issue that builds it).
PLANNED = {
    "demo": "run base and '+' models side by side on a folder of images (issue #6)",
    "bench": "run a benchmark against peers (issue #7)",
}


def _placeholder(name: str) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        raise fail(f"'mvface {name}' is not implemented yet", EXIT_NOT_AVAILABLE)

    return command


def register_planned(app: typer.Typer) -> None:
    """Add a placeholder command for each planned command."""
    for name, what in PLANNED.items():
        app.command(
            name=name,
            help=f"[not implemented yet] {what[0].upper()}{what[1:]}.",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )(_placeholder(name))
