"""How a model is named on a command line: ``NAME[:WEIGHTS]`` or ``LABEL=NAME[:WEIGHTS]``.

Every command that takes a model (``detect``, ``eval``, ``export``, ``demo``, ``compare``,
``bench``) parses its ``--model`` text here::

    NAME                a registered model, its own weights     base
    NAME:WEIGHTS        that model with a weights file/folder   3ddfa-v2:../shared/models/3ddfa_v2
    LABEL=NAME          the model shown under another label     mp=base
    LABEL=NAME:WEIGHTS  label, model and weights                mine=base+:runs/x/model.safetensors

``NAME`` is a name from :func:`mvface.models.list_models` (an old name, e.g. ``default``, is
read as its current one with a FutureWarning). A weights path may hold ``:`` or ``=``: the text
is split on the first ``:`` only when what comes before it is a model name, and on the first
``=`` only when what follows is ``NAME[:WEIGHTS]``. The older spelling ``NAME=WEIGHTS`` is still
read, with a FutureWarning, when ``WEIGHTS`` is not itself a model name (``a=b`` with both
registered is ``LABEL=NAME``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mvface.errors import BadInputError
from mvface.models._registry import is_model_name, list_models, resolve_model_name


@dataclass(frozen=True)
class ModelSpec:
    """A model as the user named it.

    Attributes:
        label: what tables, figures and reports call it (default: ``name``).
        name: the registered model name.
        weights: a weights file or folder, or ``None`` for the model's own.
    """

    label: str
    name: str
    weights: str | None = None

    @classmethod
    def named(cls, name: str, weights: str | None = None) -> ModelSpec:
        """The spec labelled by its model name."""
        return cls(label=name, name=name, weights=weights)

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """:func:`parse_model_spec`."""
        return parse_model_spec(text)

    def with_weights(self, weights: str | None) -> ModelSpec:
        """This spec with ``weights`` (e.g. a separate ``--weights``) when given.

        Raises:
            BadInputError: the spec names weights already and ``weights`` is given too.
        """
        if weights is None:
            return self
        if self.weights is not None:
            raise BadInputError(
                self.label, f"weights given twice ({self.weights!r} and {weights!r}); give one"
            )
        return replace(self, weights=weights)

    @property
    def text(self) -> str:
        """The spec in the current spelling; :func:`parse_model_spec` reads it back unchanged."""
        model = self.name if self.weights is None else f"{self.name}:{self.weights}"
        return model if self.label == self.name else f"{self.label}={model}"

    def to_dict(self) -> dict[str, str | None]:
        """Plain-JSON form."""
        return {"label": self.label, "name": self.name, "weights": self.weights}


def _available() -> str:
    return ", ".join(list_models())


def _name_and_weights(text: str) -> tuple[str, str | None] | None:
    """``NAME[:WEIGHTS]`` with ``NAME`` a model name (current, alias or old), else ``None``."""
    name, sep, weights = text.partition(":")
    name = name.strip()
    if not is_model_name(name):
        return None
    weights = weights.strip()
    if sep and not weights:
        raise BadInputError(text, "weights path after ':' is empty")
    return resolve_model_name(name), (weights if sep else None)


def parse_model_spec(text: str) -> ModelSpec:
    """Parse one model spec (syntax in the module docstring).

    Raises:
        BadInputError: empty text, an empty part, or no model name in it (lists the available).
    """
    text = text.strip()
    if not text:
        raise BadInputError("--model", "empty model spec")
    plain = _name_and_weights(text)
    if plain is not None:
        return ModelSpec(label=plain[0], name=plain[0], weights=plain[1])
    if "=" not in text:
        raise BadInputError(text, f"not a registered model; available: {_available()}")
    label, _, right = (part.strip() for part in text.partition("="))
    if not label or not right:
        raise BadInputError(text, "expected NAME[:WEIGHTS] or LABEL=NAME[:WEIGHTS]")
    labelled = _name_and_weights(right)
    if labelled is not None:
        return ModelSpec(label=label, name=labelled[0], weights=labelled[1])
    if is_model_name(label):
        name = resolve_model_name(label)
        warnings.warn(
            f"model spec {text!r}: NAME=WEIGHTS is deprecated; write {name}:{right}",
            FutureWarning,
            stacklevel=2,
        )
        return ModelSpec(label=name, name=name, weights=right)
    raise BadInputError(text, f"neither side names a registered model; available: {_available()}")


def parse_model_specs(entries: str | Sequence[str]) -> list[ModelSpec]:
    """Parse ``"a,b=c:w,..."`` (or a list of specs) into specs with unique labels.

    Raises:
        BadInputError: a bad spec, no spec at all, or a label used twice.
    """
    items = entries.split(",") if isinstance(entries, str) else list(entries)
    specs = [parse_model_spec(e) for e in items if e.strip()]
    if not specs:
        raise BadInputError("--model", "no model given")
    labels = [s.label for s in specs]
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise BadInputError("--model", f"label used twice: {', '.join(dupes)}")
    return specs
