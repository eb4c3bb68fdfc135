"""Which models a demo or comparison runs: ``--model`` specs, parsed and loaded offline.

The specs (comma-separated in ``--model``) are the ones every command takes,
``NAME[:WEIGHTS]`` or ``LABEL=NAME[:WEIGHTS]``, parsed by :mod:`mvface.models.spec`;
labels must be unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mvface.errors import MvfaceError, NotAvailableError
from mvface.models import LandmarkModel, create_model
from mvface.models.spec import ModelSpec, parse_model_spec, parse_model_specs

__all__ = ["LoadedModels", "ModelSpec", "load_models", "parse_model_spec", "parse_model_specs"]


@dataclass
class LoadedModels:
    """The models that loaded (``--model`` order) and a one-line reason for each that did not."""

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
            model = create_model(spec.name, weights=spec.weights)
        except (MvfaceError, FileNotFoundError, OSError, ValueError) as exc:
            loaded.skipped.append((spec, " ".join(str(exc).split()) or type(exc).__name__))
            continue
        loaded.specs.append(spec)
        loaded.models.append(model)
    if not loaded.models:
        reasons = "; ".join(f"{s.label}: {why}" for s, why in loaded.skipped)
        raise NotAvailableError(f"no model could be loaded ({reasons})")
    return loaded
