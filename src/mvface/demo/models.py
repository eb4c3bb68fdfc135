"""Which models a demo or comparison runs: ``--models`` entries, parsed and loaded offline.

One entry (comma-separated in ``--models``) is one of::

    FAMILY                  a registered model, default weights  base
    FAMILY:WEIGHTS          that family with a weights path      3ddfa-v2:../shared/models/3ddfa_v2
    FAMILY=WEIGHTS          the same, written with "="           3ddfa-v2=../shared/models/3ddfa_v2
    LABEL=FAMILY            a model shown under another label    mp=base
    LABEL=FAMILY:WEIGHTS    family, weights and the label shown  3ddfa-v2+=3ddfa-v2:runs/x/m.pt

``FAMILY`` is a name from :func:`mvface.models.list_models`. In ``A=B``, ``B`` (up to its first
``:``) is read as the family when it is a registered name; otherwise ``A`` must be the family
and ``B`` its weights. Labels must be unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mvface.errors import BadInputError, MvfaceError, NotAvailableError
from mvface.models import LandmarkModel, create_model, list_models


@dataclass(frozen=True)
class ModelSpec:
    """One ``--models`` entry: the label shown, the registered family and optional weights."""

    label: str
    family: str
    weights: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """Plain-JSON form."""
        return {"label": self.label, "family": self.family, "weights": self.weights}


def _family_and_weights(text: str, known: set[str]) -> tuple[str, str | None] | None:
    family, sep, weights = text.partition(":")
    if family not in known:
        return None
    if sep and not weights:
        raise BadInputError(text, "weights path after ':' is empty")
    return family, (weights if sep else None)


def parse_model_spec(entry: str) -> ModelSpec:
    """Parse one ``--models`` entry (syntax in the module docstring).

    Raises:
        BadInputError: empty entry or no registered family in it (names the known ones).
    """
    text = entry.strip()
    if not text:
        raise BadInputError("--models", "empty model entry")
    known = set(list_models())
    left, eq, right = text.partition("=")
    if not eq:
        parsed = _family_and_weights(text, known)
        if parsed is None:
            raise BadInputError(text, f"not a registered model; known: {', '.join(sorted(known))}")
        return ModelSpec(label=text.partition(":")[0], family=parsed[0], weights=parsed[1])
    left, right = left.strip(), right.strip()
    if not left or not right:
        raise BadInputError(text, "expected LABEL=FAMILY[:WEIGHTS] or FAMILY=WEIGHTS")
    parsed = _family_and_weights(right, known)
    if parsed is not None:
        return ModelSpec(label=left, family=parsed[0], weights=parsed[1])
    if left in known:
        return ModelSpec(label=left, family=left, weights=right)
    raise BadInputError(
        text, f"neither side names a registered model; known: {', '.join(sorted(known))}"
    )


def parse_model_specs(entries: str | Sequence[str]) -> list[ModelSpec]:
    """Parse ``"a,b=c,..."`` (or a list of entries) into specs with unique labels."""
    items = entries.split(",") if isinstance(entries, str) else list(entries)
    specs = [parse_model_spec(e) for e in items if e.strip()]
    if not specs:
        raise BadInputError("--models", "no model given")
    labels = [s.label for s in specs]
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise BadInputError("--models", f"label used twice: {', '.join(dupes)}")
    return specs


@dataclass
class LoadedModels:
    """The models that loaded (``--models`` order) and a one-line reason for each that did not."""

    specs: list[ModelSpec]
    models: list[LandmarkModel]
    skipped: list[tuple[ModelSpec, str]]

    @property
    def labels(self) -> list[str]:
        """Labels of the loaded models."""
        return [s.label for s in self.specs]


def load_models(specs: Sequence[ModelSpec]) -> LoadedModels:
    """Create each model offline; one that cannot be loaded here is skipped with its reason.

    Raises:
        NotAvailableError: no model at all could be loaded (the reasons joined).
    """
    loaded = LoadedModels(specs=[], models=[], skipped=[])
    for spec in specs:
        try:
            model = create_model(spec.family, weights=spec.weights)
        except (MvfaceError, FileNotFoundError, OSError, ValueError) as exc:
            loaded.skipped.append((spec, " ".join(str(exc).split()) or type(exc).__name__))
            continue
        loaded.specs.append(spec)
        loaded.models.append(model)
    if not loaded.models:
        reasons = "; ".join(f"{s.label}: {why}" for s, why in loaded.skipped)
        raise NotAvailableError(f"no model could be loaded ({reasons})")
    return loaded
