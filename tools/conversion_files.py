"""The files around a weight conversion: the source in an installed wheel, its hash, the output.

Shared by the converters of this folder (``convert_facemesh.py``, ``convert_blazeface.py``):
they find MediaPipe's ``.tflite`` without importing mediapipe, record its sha256 in the metadata
of the ``.safetensors`` they write, and write that file byte-reproducibly (same input, same
bytes), so a regenerated file can be compared with the shipped one by its hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import site
import sys
from pathlib import Path

import torch

from mvface.errors import BadInputError

__all__ = [
    "find_packaged_file",
    "save_reproducible_safetensors",
    "sha256_file",
    "sorted_safetensors_header",
]


def find_packaged_file(relative_path: str | Path, env_var: str | None = None) -> Path | None:
    """Locate a file of an installed wheel (e.g. MediaPipe's models) without importing it.

    Args:
        relative_path: path below site-packages, e.g.
            ``mediapipe/modules/face_detection/face_detection_short_range.tflite``.
        env_var: an environment variable that, when set, names the file directly.

    Returns:
        The file, or ``None`` when none is found.

    Raises:
        BadInputError: ``env_var`` is set but does not name a file.
    """
    if env_var:
        env = os.environ.get(env_var)
        if env:
            if not Path(env).is_file():
                raise BadInputError(env, f"{env_var} does not name a file")
            return Path(env)
    roots = [*sys.path, *site.getsitepackages(), site.getusersitepackages()]
    for root in roots:
        candidate = Path(root or ".") / relative_path
        if candidate.is_file():
            return candidate
    return None


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sorted_safetensors_header(data: bytes) -> bytes:
    """Rewrite a safetensors file with its JSON header keys sorted (byte-reproducible output).

    ``safetensors`` writes the metadata map in hash order, so two conversions differ; the tensor
    data and offsets are untouched.
    """
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned, as safetensors does
    return len(text).to_bytes(8, "little") + text + data[8 + length :]


def save_reproducible_safetensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> Path:
    """Write ``tensors`` and string ``metadata`` as safetensors, same input -> same bytes.

    Args:
        path: the file to write (folders are created; replaced atomically).
        tensors: name -> tensor (made contiguous, moved to CPU).
        metadata: string metadata stored in the header.

    Returns:
        The path written.
    """
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(sorted_safetensors_header(save(state, metadata=metadata)))
    os.replace(tmp, path)
    return path
