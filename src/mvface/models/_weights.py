"""Weights files: safetensors with the model's config travelling in the metadata (like timm).

Only safetensors are read from user-given paths (no pickle). Writes are atomic (a temporary file
in the same folder, then :func:`os.replace`), so an interrupted save never leaves a half-written
file under the final name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from mvface._io import atomic_path
from mvface.errors import BadInputError

#: Metadata key holding the JSON config.
CONFIG_KEY = "mvface_config"


def save_weights(
    path: str | Path,
    tensors: dict[str, torch.Tensor],
    config: dict[str, Any] | None = None,
    **metadata: str,
) -> Path:
    """Save tensors (e.g. a ``state_dict``) with a JSON config and string metadata, atomically.

    Returns:
        The final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(sorted(metadata.items()))
    if config is not None:
        meta[CONFIG_KEY] = json.dumps(config, sort_keys=True)
    contiguous = {k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())}
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=meta)
    return path


def load_weights(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, str]]:
    """Load a safetensors file: ``(tensors, config, other metadata)``.

    Raises:
        BadInputError: missing file, not a safetensors file, or a config that is not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "weights file does not exist")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise BadInputError(path, f"not a readable safetensors file ({exc})") from None
    config: dict[str, Any] = {}
    if CONFIG_KEY in meta:
        try:
            config = json.loads(meta.pop(CONFIG_KEY))
        except json.JSONDecodeError as exc:
            raise BadInputError(path, f"config metadata is not JSON ({exc})") from None
    return tensors, config, meta
