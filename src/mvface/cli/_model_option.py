"""The ``--model`` option every command shares: ``NAME[:WEIGHTS]`` or ``LABEL=NAME[:WEIGHTS]``.

The option's callback parses the spec once (:mod:`mvface.models.spec`): a spec that names no
model is a usage error (exit 2), an old model name or spelling prints one ``warning:`` line on
stderr, and the command receives the spec in its current spelling, which parses back silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer

from mvface.cli._common import console
from mvface.errors import BadInputError
from mvface.models import list_models
from mvface.models.spec import ModelSpec, parse_model_spec, parse_model_specs

T = TypeVar("T")
R = TypeVar("R")

_NAMES = ", ".join(list_models())
#: Help of a ``--model`` option taking one spec.
MODEL_HELP = f"Model: NAME[:WEIGHTS] or LABEL=NAME[:WEIGHTS]; NAME one of {_NAMES}."
#: Help of an option taking several specs, comma-separated.
MODELS_HELP = (
    f"Comma-separated models, each NAME[:WEIGHTS] or LABEL=NAME[:WEIGHTS]; NAME one of {_NAMES}."
)


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show each FutureWarning raised inside as one ``warning: ...`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        yield
    for w in caught:
        if issubclass(w.category, FutureWarning):
            message = " ".join(str(w.message).split())
            console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)


def _parsed(parse: Callable[[T], R], text: T) -> R:
    with one_line_warnings():
        try:
            return parse(text)
        except BadInputError as exc:
            raise typer.BadParameter(str(exc)) from None


def check_model_spec(value: str | None) -> str | None:
    """Option callback: one model spec in its current spelling (usage error if it names none)."""
    return None if value is None else _parsed(parse_model_spec, value).text


def check_model_specs(value: list[str] | None) -> list[str] | None:
    """Option callback of a repeatable ``--model``: specs as :func:`check_model_spec`, labels
    unique; ``None`` or no spec stays ``None``."""
    if not value:
        return None
    return [spec.text for spec in _parsed(parse_model_specs, value)]


def check_model_spec_list(value: str | None) -> str | None:
    """Option callback of a comma-separated list of specs with unique labels."""
    if value is None:
        return None
    return ",".join(spec.text for spec in _parsed(parse_model_specs, value))


def model_spec(text: str, weights: str | None = None) -> ModelSpec:
    """The ``--model`` spec with ``--weights`` added (usage error if both name weights)."""
    with one_line_warnings():
        spec = parse_model_spec(text)
    try:
        return spec.with_weights(weights)
    except BadInputError as exc:
        raise typer.BadParameter(
            f"--model {text!r} names weights already; drop --weights or the ':WEIGHTS' part",
            param_hint="'--weights'",
        ) from exc
