"""Model registry: one file per family, each variant a small registered factory (like timm)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from mvface.models.base import LandmarkModel

ModelFactory = Callable[..., LandmarkModel]

_MODELS: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register ``fn(weights=None, **cfg) -> LandmarkModel`` as ``name``."""

    def deco(fn: ModelFactory) -> ModelFactory:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = fn
        return fn

    return deco


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, weights: str | None = None, **cfg: Any) -> LandmarkModel:
    """Build the model registered as ``name``.

    Args:
        name: a name from :func:`list_models`.
        weights: a weights file or folder, for families that load external weights.
        **cfg: family-specific options (see the family's factory); ``flip_average`` (bool)
            works for every family (:attr:`LandmarkModel.flip_average`).

    Raises:
        ValueError: unknown name.
        mvface.errors.NotAvailableError: the family needs a package or file that is absent.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    flip_average = cfg.pop("flip_average", None)
    model = _MODELS[name](weights=weights, **cfg)
    if flip_average is not None:
        model.flip_average = bool(flip_average)
    return model
