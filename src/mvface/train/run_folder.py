"""The run folder (``train.out``): what a run writes there, and whether a run may start or resume.

A fresh run refuses a folder holding a previous run (:func:`previous_run`) unless told to
overwrite it; a resumed run continues from the latest checkpoint (or a named one) only when the
checkpoint is a safe mvface checkpoint made with the same recipe, up to the keys that do not
change what a step computes (:data:`~mvface.train.config.RESUMABLE_CHANGES`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mvface.errors import BadInputError
from mvface.train.checkpoints import list_checkpoints, read_checkpoint
from mvface.train.config import RESUMABLE_CHANGES, ConfigError, TrainConfig
from mvface.train.module import CHECKPOINT_KEY

__all__ = [
    "BEST_FILE",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "EXPORT_FILE",
    "RUN_FILES",
    "RUN_FOLDERS",
    "check_resumable",
    "launched_as_rank_zero",
    "previous_run",
    "remove_previous_run",
    "resume_checkpoint",
]

CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
BEST_FILE = "best.safetensors"
EXPORT_FILE = "model.safetensors"

#: What a run writes into its folder: a folder holding any of them holds a previous run.
RUN_FILES = (CONFIG_FILE, EXPORT_FILE, BEST_FILE)
RUN_FOLDERS = (CHECKPOINT_DIR, "logs", "tb")


def previous_run(out: str | Path) -> list[str]:
    """A previous run's files and (non-empty) folders in ``out``, e.g. ``["config.yaml",
    "logs/"]``; empty when there are none (other files do not count)."""
    out = Path(out)
    found = [name for name in RUN_FILES if (out / name).is_file()]
    for name in RUN_FOLDERS:
        folder = out / name
        if folder.is_dir() and any(folder.iterdir()):
            found.append(f"{name}/")
    return found


def remove_previous_run(out: str | Path) -> None:
    """Delete a previous run's files and folders (:func:`previous_run`) from ``out``; other
    files stay."""
    out = Path(out)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)


def launched_as_rank_zero() -> bool:
    """Whether this process is the first of its job, as its launcher says (``torchrun``,
    SLURM and Lightning's own DDP processes set these variables; a plain start is rank 0).

    Only that process judges the run folder: the others may start after it wrote there.
    """
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if (os.environ.get(var) or "0").strip() != "0":
            return False
    return True


def resume_checkpoint(config: TrainConfig, out: Path, overwrite: bool = False) -> Path | None:
    """The checkpoint to resume from, or ``None`` for a fresh run (see ``train.resume``).

    A fresh run refuses a folder holding a previous run (its weights, config and checkpoints
    would be overwritten or mixed with the new ones) unless ``overwrite``.

    Raises:
        BadInputError: ``out`` holds a previous run and ``overwrite`` is not set; or resuming
            finds a finished run (``model.safetensors``) but no checkpoint to resume from.
        ConfigError: ``overwrite`` together with ``train.resume``.
    """
    resume = config.train.resume.strip()
    existing = list_checkpoints(out / CHECKPOINT_DIR)
    if overwrite and resume:
        raise ConfigError(
            "--overwrite (start afresh) contradicts --resume / train.resume (continue): "
            "give one of them"
        )
    judge = launched_as_rank_zero()
    if resume == "last":
        if existing:
            return existing[-1]
        if judge and (out / EXPORT_FILE).is_file():
            raise BadInputError(
                out,
                f"holds a finished run ({EXPORT_FILE}) and no checkpoint to resume from; "
                f"replace it with --overwrite or choose another --out",
            )
        return None  # nothing saved yet (a run killed early): start afresh
    if resume:
        return Path(resume)
    found = previous_run(out) if judge else []
    if found and not overwrite:
        latest = f", latest checkpoint {existing[-1].name}" if existing else ""
        raise BadInputError(
            out,
            f"holds a previous run ({', '.join(found)}{latest}); continue it with --resume, "
            f"replace it with --overwrite, or choose another --out",
        )
    return None


def check_resumable(config: TrainConfig, path: Path) -> int:
    """Check the checkpoint is safe and from a compatible run; returns its global step."""
    data = read_checkpoint(path)
    entry = data.get(CHECKPOINT_KEY)
    if not isinstance(entry, dict) or "config" not in entry:
        raise BadInputError(path, "not an mvface training checkpoint (no recipe inside)")
    saved = TrainConfig.from_dict(entry["config"], source=str(path))
    changed = [k for k in config.changed_keys(saved) if k not in RESUMABLE_CHANGES]
    if changed:
        raise ConfigError(
            f"{path}: the run was made with other values of {', '.join(changed)}; resume with the "
            f"same config (only {', '.join(sorted(RESUMABLE_CHANGES))} may change)"
        )
    return int(data.get("global_step", 0))
