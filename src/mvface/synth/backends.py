"""Backends of the synthetic generator by name: ``create_backend("mesh")``, ``list_backends()``.

A backend implements :class:`~mvface.synth.head.HeadBackend` (see :mod:`mvface.synth.head` for
the interface and its conventions; its names are re-exported here). The built-in ``"mesh"``
(:mod:`mvface.synth.mesh_head`) is registered here on first use, so that the mesh backend, the
renderer and torch-free callers of the registry do not import each other; other backends
register themselves with :func:`register_backend`.

Example:
    >>> backend = create_backend("mesh")  # doctest: +SKIP
    >>> head = backend.build(crop, landmarks)  # doctest: +SKIP
    >>> out = head.render(rig_labels(paper_rig(64)), size=256)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from mvface._registry import Registry
from mvface.errors import BadInputError
from mvface.synth.head import Head, HeadBackend, RenderOutput

__all__ = [
    "Head",
    "HeadBackend",
    "RenderOutput",
    "create_backend",
    "iter_renders",
    "list_backends",
    "register_backend",
]


_BACKENDS: Registry[Callable[..., HeadBackend]] = Registry(
    "backend",
    unknown_error=lambda name, names: BadInputError(
        "backend", f"unknown backend {name!r} (have {list(names)})"
    ),
    duplicate_error=lambda name: ValueError(f"backend {name!r} is already registered"),
    same_again_ok=True,
)


def register_backend(
    name: str,
) -> Callable[[Callable[..., HeadBackend]], Callable[..., HeadBackend]]:
    """Decorator registering a backend factory under ``name`` (``--backend NAME`` in the CLI).

    Example:
        >>> @register_backend("my-backend")  # doctest: +SKIP
        ... def my_backend(**cfg): return MyBackend(**cfg)
    """

    return _BACKENDS.register(name)


def _ensure_builtin_backends() -> None:
    # imported on first use: the mesh backend pulls in the renderer and the face mesh network
    from mvface.synth.mesh_head import mesh_backend
    from mvface.synth.whole_head import whole_head_backend

    _BACKENDS.register("mesh", mesh_backend)
    _BACKENDS.register("head", whole_head_backend)


def list_backends() -> list[str]:
    """Names of the registered backends, sorted."""
    _ensure_builtin_backends()
    return _BACKENDS.list()


def create_backend(name: str = "mesh", **config: Any) -> HeadBackend:
    """Instantiate a registered backend.

    Args:
        name: backend name (see :func:`list_backends`).
        **config: backend options (e.g. ``renderer="numpy"`` for ``"mesh"``).

    Returns:
        The backend.

    Raises:
        BadInputError: no backend of that name.
    """
    _ensure_builtin_backends()
    return _BACKENDS.create(name, **config)


def iter_renders(
    head: Head, cameras: torch.Tensor | np.ndarray, size: int, batch: int = 64
) -> Iterator[tuple[slice, RenderOutput]]:
    """Render many views in batches to bound memory (512 views at 512 px are ~1.1 GB at once).

    Args:
        head: the head.
        cameras: ``(V, 25)`` EG3D labels.
        size: output side in pixels.
        batch: views per call of :meth:`Head.render`.

    Yields:
        ``(views, output)``: the slice of ``cameras`` rendered and its :class:`RenderOutput`.
    """
    if batch < 1:
        raise BadInputError("render", f"batch must be >= 1, got {batch}")
    total = len(cameras)
    for start in range(0, total, batch):
        views = slice(start, min(start + batch, total))
        yield views, head.render(cameras[views], size)
