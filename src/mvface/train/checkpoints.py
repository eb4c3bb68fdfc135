"""Training checkpoint files: written atomically, read weights-only, the newest K kept.

* checkpoints are written to a temporary file in the same folder, flushed to disk and renamed
  (:class:`SafeCheckpointIO`); :class:`LastKCheckpoints` deletes an old one only after the new
  one is complete, so the last good checkpoint is never lost;
* checkpoints are pickles: they are only ever read with ``torch.load(weights_only=True)``
  (plain tensors and containers, no code), whatever Lightning asks for, so a malicious file is
  refused (:func:`read_checkpoint`).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from mvface._io import atomic_path
from mvface.errors import BadInputError

__all__ = ["LastKCheckpoints", "SafeCheckpointIO", "list_checkpoints", "read_checkpoint"]

_CKPT_NAME = re.compile(r"^step=(\d+)\.ckpt$")


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a training checkpoint with ``torch.load(weights_only=True)``.

    Only tensors and plain containers/numbers/strings are unpickled; anything that would run
    code (a class, a function, ``__reduce__``) is refused.

    Raises:
        BadInputError: missing, unreadable, not a dict, or unsafe (not weights-only).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "checkpoint does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise BadInputError(
            path, f"refused: not a plain-tensor checkpoint (weights_only load failed: {first})"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise BadInputError(path, f"not a readable checkpoint ({exc})") from None
    if not isinstance(data, dict):
        raise BadInputError(path, "not a training checkpoint (no dict inside)")
    return data


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O: atomic, fsynced writes; ``weights_only`` reads only."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` through a temporary file in the same folder."""
        if storage_options is not None:
            raise TypeError("storage_options are not supported by SafeCheckpointIO")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())

    def load_checkpoint(
        self,
        path: Any,
        map_location: Callable[..., Any] | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Read with ``weights_only=True`` always (a request for ``False`` is ignored)."""
        return read_checkpoint(path, map_location=map_location or "cpu")


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Finished checkpoints ``step=N.ckpt`` in ``folder``, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


class LastKCheckpoints(ModelCheckpoint):
    """``ModelCheckpoint`` that keeps exactly the newest ``save_top_k`` ``step=N.ckpt`` files.

    Lightning never deletes the checkpoint a run resumed from, so every resume would leave one
    more behind; here, after each save (complete: written atomically), files older than the
    newest ``save_top_k`` are removed, so the last good checkpoint is never the one deleted.
    """

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if trainer.is_global_zero and self.dirpath and self.save_top_k > 0:
            for old in list_checkpoints(self.dirpath)[: -self.save_top_k]:
                old.unlink(missing_ok=True)
