"""What every command shares: error reporting, exit codes, option checks and the two consoles.

Output streams: summaries (what a command produced) go to **stdout** through :func:`say` /
:data:`out_console`; diagnostics (errors, skipped and failed items, warnings, progress bars) go
to **stderr** through :data:`console`. So ``mvface detect ... > summary.txt`` keeps the summary
and the terminal still shows what went wrong.

Every file name or label printed goes through :func:`shown` first: control characters (a newline
in a file name would forge extra ``failed:`` lines), undecodable bytes and Rich markup are
rendered visibly and inertly.
"""

from __future__ import annotations

import functools
import sys
import traceback
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from mvface.errors import MvfaceError, NotAvailableError

#: Exit codes of every command.
EXIT_OK = 0  # all items good
EXIT_SOME_FAILED = 1  # ran, but some items failed (listed) or the input was bad
EXIT_USAGE = 2  # usage error (typer/click use 2 as well)
EXIT_NOT_AVAILABLE = 3  # a needed package/weights/data is absent, or the command is not built yet

#: Diagnostics: errors, skipped/failed lines, warnings, progress bars (stderr).
console = Console(stderr=True)
#: Summaries and tables a command produces (stdout).
out_console = Console()
_DEBUG = {"on": False}

F = TypeVar("F", bound=Callable[..., Any])


def shown(text: str | Path) -> str:
    """``text`` safe to print on one line: control and format characters become escapes.

    A newline becomes ``\\n``, other control characters (C0, DEL, C1), Unicode line/paragraph
    separators and bidirectional overrides ``\\xNN`` / ``\\uNNNN``; bytes of a file name that
    are not valid UTF-8 (Python's surrogate escapes) ``\\xNN``; a backslash is kept as is.

    >>> shown("a\\nfailed: b.png")
    'a\\\\nfailed: b.png'
    """
    out: list[str] = []
    for ch in str(text):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in "\n\r\t":
            out.append(repr(ch)[1:-1])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def say(message: str) -> None:
    """Print one summary line to stdout (no markup, no wrapping; names already :func:`shown`)."""
    out_console.print(message, markup=False, highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """Print one diagnostic line to stderr (no markup, no wrapping)."""
    console.print(shown(message), markup=False, highlight=False, soft_wrap=True)


def no_progress(quiet: bool) -> bool:
    """Whether to hide the progress bar: asked to, or stderr is not a terminal (a log file would
    only get a stray empty line from the bar)."""
    return quiet or not console.is_terminal


def set_debug(on: bool) -> None:
    """Show tracebacks for expected errors (``mvface --debug ...``)."""
    _DEBUG["on"] = on


def fail(message: str, code: int = EXIT_SOME_FAILED) -> typer.Exit:
    """Print one error line (stderr) and return the exit to raise."""
    line = Text.assemble(("error:", "bold red"), " ", shown(message))
    console.print(line, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def exit_on_problems(**problems: Sequence[str]) -> None:
    """List each problem as ``  <kind>: <line>`` (stderr, kinds in the order given); exit 1 if any.

    Example: ``exit_on_problems(skipped=summary.skipped, failed=summary.failed)``.
    """
    for kind, lines in problems.items():
        for line in lines:
            note(f"  {kind}: {line}")
    if any(problems.values()):
        raise typer.Exit(EXIT_SOME_FAILED)


def check_choice(what: str, allowed: Callable[[], Sequence[str]]) -> Callable[[Any], Any]:
    """A typer option callback refusing a value outside ``allowed()`` with a usage error (exit 2).

    ``allowed`` is called only when the option is parsed, so registries are read lazily.
    ``None`` (option not given) passes; for a repeatable option every value is checked.
    """

    def callback(value: Any) -> Any:
        values = value if isinstance(value, (list, tuple)) else [value]
        for one in values:
            if one is not None and one not in allowed():
                names = ", ".join(allowed())
                raise typer.BadParameter(f"unknown {what} {shown(one)!r}; choose from: {names}")
        return value

    return callback


def check_range(
    what: str, lo: float, hi: float, max_open: bool = False
) -> Callable[[float | None], float | None]:
    """A typer option callback refusing a number outside ``[lo, hi]`` (``[lo, hi)`` with
    ``max_open``) with a usage error (exit 2)."""

    def callback(value: float | None) -> float | None:
        if value is None:
            return value
        inside = lo <= value < hi if max_open else lo <= value <= hi
        if not inside:
            bracket = ")" if max_open else "]"
            raise typer.BadParameter(f"{value} is not in [{lo:g}, {hi:g}{bracket}")
        return value

    return callback


def models_help(prefix: str = "Landmark model") -> str:
    """``--model`` help naming every registered model."""
    from mvface.models import list_models

    return f"{prefix}: {', '.join(list_models())}."


def detector_names() -> list[str]:
    """``"auto"`` and every registered face detector."""
    from mvface.detection import list_face_detectors

    return ["auto", *list_face_detectors()]


def detectors_help(prefix: str = "Face detector", with_auto: bool = True) -> str:
    """``--detector`` help naming every registered face detector (and ``auto``)."""
    names = detector_names() if with_auto else detector_names()[1:]
    return f"{prefix}: {', '.join(names)}."


def handle_errors(fn: F) -> F:
    """Turn expected errors into one clear line and an exit code (traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotAvailableError as exc:
            if _DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            raise fail(str(exc), EXIT_NOT_AVAILABLE) from None
        except (MvfaceError, ValueError, FileNotFoundError) as exc:
            if _DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            raise fail(str(exc), EXIT_SOME_FAILED) from None
        except ConnectionError as exc:  # a cluster or service that is not there
            if _DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            raise fail(f"cannot connect: {exc}", EXIT_NOT_AVAILABLE) from None
        except OSError as exc:  # a full disk, a read-only or vanished output folder...
            if _DEBUG["on"]:
                traceback.print_exc(file=sys.stderr)
            where = exc.filename if exc.filename is not None else "(file not known)"
            raise fail(f"{where}: {exc.strerror or exc}", EXIT_SOME_FAILED) from None

    return wrapper  # type: ignore[return-value]
