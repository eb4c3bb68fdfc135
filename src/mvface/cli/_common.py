"""What every command shares: error reporting, exit codes and the console."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer
from rich.console import Console

from mvface.errors import MvfaceError, NotAvailableError, NotImplementedYetError

#: Exit codes of every command.
EXIT_OK = 0  # all items good
EXIT_SOME_FAILED = 1  # ran, but some items failed (listed) or the input was bad
EXIT_USAGE = 2  # usage error (typer/click use 2 as well)
EXIT_NOT_AVAILABLE = 3  # a needed package/weights/data is absent, or the command is not built yet

console = Console(stderr=True)
_DEBUG = {"on": False}

F = TypeVar("F", bound=Callable[..., Any])


def set_debug(on: bool) -> None:
    """Show tracebacks for expected errors (``mvface --debug ...``)."""
    _DEBUG["on"] = on


def fail(message: str, code: int = EXIT_SOME_FAILED) -> typer.Exit:
    """Print one error line and return the exit to raise."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def exit_on_problems(**problems: Sequence[str]) -> None:
    """List each problem as ``  <kind>: <line>`` (kinds in the order given) and exit 1 if any.

    Example: ``exit_on_problems(skipped=summary.skipped, failed=summary.failed)``.
    """
    for kind, lines in problems.items():
        for line in lines:
            console.print(f"  {kind}: {line}", highlight=False, soft_wrap=True)
    if any(problems.values()):
        raise typer.Exit(EXIT_SOME_FAILED)


def handle_errors(fn: F) -> F:
    """Turn expected errors into one clear line and an exit code (traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (NotAvailableError, NotImplementedYetError) as exc:
            if _DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            raise fail(str(exc), EXIT_NOT_AVAILABLE) from None
        except (MvfaceError, ValueError, FileNotFoundError) as exc:
            if _DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            raise fail(str(exc), EXIT_SOME_FAILED) from None
        except OSError as exc:  # a full disk, a read-only or vanished output folder...
            if _DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            where = exc.filename if exc.filename is not None else "output"
            raise fail(f"{where}: {exc.strerror or exc}", EXIT_SOME_FAILED) from None

    return wrapper  # type: ignore[return-value]
