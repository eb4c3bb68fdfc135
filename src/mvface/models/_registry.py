"""Model registry: one file per family, each variant a small registered factory (like timm)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mvface._registry import Registry
from mvface.models.base import LandmarkModel
from mvface.models.onnx_engine import check_device, check_engine, default_engine, with_engine

ModelFactory = Callable[..., LandmarkModel]
F = TypeVar("F", bound=ModelFactory)

_MODELS: Registry[ModelFactory] = Registry("model")

#: Names models had before: still accepted, with a FutureWarning naming the current one.
RENAMED_MODELS: dict[str, str] = {"default": "base", "default+": "base+", "dlib-68": "dlib"}


def register_model(name: str) -> Callable[[F], F]:
    """Decorator: register ``fn(weights=None, **cfg) -> LandmarkModel`` as ``name``.

    The decorated function keeps its own type (its precise return type for callers).
    """

    def deco(fn: F) -> F:
        _MODELS.register(name, fn)
        return fn

    return deco


def register_model_deprecations(renamed: Mapping[str, str]) -> None:
    """Accept each ``old -> current`` model name, warning (FutureWarning) when it is used."""
    _MODELS.register_deprecations(renamed)


register_model_deprecations(RENAMED_MODELS)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted (current names only)."""
    return _MODELS.list(pattern)


def is_model_name(name: str) -> bool:
    """Whether ``name`` is a registered model name or an old name of one (no warning)."""
    return _MODELS.knows(name)


def resolve_model_name(name: str) -> str:
    """The current name of model ``name`` (an old name warns once with a FutureWarning).

    Raises:
        ValueError: unknown name (lists the available ones).
    """
    return _MODELS.resolve(name)


def create_model(
    name: str,
    weights: str | None = None,
    engine: str | None = None,
    device: str | None = None,
    **cfg: Any,
) -> LandmarkModel:
    """Build the model registered as ``name``.

    Args:
        name: a name from :func:`list_models` (an old name in :data:`RENAMED_MODELS` works,
            with a FutureWarning).
        weights: a weights file or folder, for families that load external weights.
        engine: ``"torch"`` (PyTorch eager: the trainable model), ``"onnx"`` (the network in
            ONNX Runtime, exported and parity-checked once, then cached) or ``"auto"`` (ONNX
            Runtime on the CPU, torch on CUDA); see :mod:`mvface.models.onnx_engine`.
            ``None``: ``"torch"`` (unless :func:`~mvface.models.onnx_engine.engine_defaults`
            says otherwise). Families without a torch network ignore it.
        device: ``"cpu"`` or ``"cuda"`` (``None``: the CPU, or the engine defaults').
        **cfg: family-specific options (see the family's factory); ``flip_average`` (bool)
            works for every family (:attr:`LandmarkModel.flip_average`).

    Raises:
        ValueError: unknown name, engine or device.
        mvface.errors.NotAvailableError: the family needs a package or file that is absent;
            ``device="cuda"`` without a GPU; ``engine="onnx"`` where ONNX Runtime cannot run
            the model.
    """
    factory = _MODELS.get(name)
    default = default_engine()
    engine, device = check_engine(engine or default[0]), device or default[1]
    check_device(device)  # before any weights are read
    flip_average = cfg.pop("flip_average", None)
    model = factory(weights=weights, **cfg)
    if flip_average is not None:
        model.flip_average = bool(flip_average)
    if engine == "torch" and device == "cpu":
        return model  # as built: no device check, nothing moved
    return with_engine(model, engine, device)
