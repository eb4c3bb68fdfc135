"""Run a training or fine-tuning job: the library side of ``mvface train`` and ``mvface finetune``.

:func:`run` builds the model, the data and a Lightning ``Trainer`` from a
:class:`~mvface.train.config.TrainConfig` and fits. Lightning provides the engine: devices,
mixed precision and (multi-node) DDP come from its ``accelerator``/``devices``/``strategy``/
``precision`` options unchanged; progress (rich), CSV (and TensorBoard, when installed) logs,
checkpoints (``ModelCheckpoint``) and early stopping (``EarlyStopping``) are its callbacks.

Run folder (``train.out``)::

    config.yaml                  the resolved config (written before training starts)
    checkpoints/step=00000100.ckpt   the last ``keep_last`` checkpoints
    logs/version_N/metrics.csv   one CSV per (re)start; tb/ with TensorBoard installed
    best.safetensors             best weights so far on ``train.monitor`` (with validation)
    model.safetensors            the export: best weights (or the last ones without
                                 validation), loadable with ``create_model(name, weights=...)``

Checkpoints and safety:

* the run is one Lightning epoch of ``train.steps`` steps, checkpointed every
  ``checkpoint_every`` steps; each step's batch depends only on ``(seed, step, rank)``
  (:mod:`mvface.train.data`), the sampler starts at the restored ``global_step``, and torch's
  global RNG is re-seeded every step, so a resumed run repeats the uninterrupted run's losses
  bit for bit (same hardware, software and thread count);
* checkpoints are written to a temporary file in the same folder, flushed to disk and renamed
  (:class:`SafeCheckpointIO`); ``ModelCheckpoint`` deletes an old one only after the new one is
  complete, so the last good checkpoint is never lost;
* checkpoints are pickles: they are only ever read with ``torch.load(weights_only=True)``
  (plain tensors and containers, no code), whatever Lightning asks for, so a malicious file is
  refused (:func:`read_checkpoint`). mvface's own entry in them holds only plain types.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    RichProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from mvface._io import atomic_path
from mvface._version import __version__
from mvface.errors import BadInputError, NotAvailableError
from mvface.models import create_model
from mvface.models._weights import load_weights, save_weights
from mvface.models.spec import parse_model_spec
from mvface.models.trainable import TorchLandmarkModel
from mvface.train.config import (
    RESUMABLE_CHANGES,
    ConfigError,
    ModelSection,
    TeacherSection,
    TrainConfig,
)
from mvface.train.data import CropSpec, TrainingData
from mvface.train.module import CHECKPOINT_KEY, LandmarkTrainingModule

__all__ = [
    "BEST_FILE",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "EXPORT_FILE",
    "BestWeights",
    "SafeCheckpointIO",
    "TrainResult",
    "build_model",
    "build_teacher",
    "export_weights",
    "list_checkpoints",
    "read_checkpoint",
    "run",
]

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
BEST_FILE = "best.safetensors"
EXPORT_FILE = "model.safetensors"
_CKPT_NAME = re.compile(r"^step=(\d+)\.ckpt$")


# ------------------------------------------------------------------------ checkpoint files


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


# ------------------------------------------------------------------------ weights export


def export_weights(model: TorchLandmarkModel, path: str | Path, **metadata: str) -> Path:
    """Write the model's weights in its family's shipped format plus extra metadata.

    The family's own ``save(path)`` (when it has one) decides the tensors and the config, so
    ``create_model(name, weights=path)`` loads the result; ``metadata`` (strings) is added.
    Families without ``save`` get ``net.state_dict()`` with ``{"family", "model"}`` config.

    Returns:
        The path written (atomically).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save = getattr(model, "save", None)
    if callable(save):
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
            written = save(Path(tmp) / path.name)
            tensors, config, meta = load_weights(written or Path(tmp) / path.name)
    else:
        tensors = dict(model.net.state_dict())
        config = {"family": model.config.name, "model": model.config.to_dict()}
        meta = {}
    meta.update(metadata)
    return save_weights(path, tensors, config or None, **meta)


def export_checkpoint(checkpoint: str | Path, path: str | Path) -> Path:
    """Export the weights of one training checkpoint like the run's own export.

    For choosing among the kept checkpoints by another measure than the run's monitor (e.g. a
    different inference setting). The recipe saved in the checkpoint rebuilds the model, whose
    network takes the checkpoint's weights; the metadata records the recipe and the step.

    Raises:
        BadInputError: an unreadable or unsafe checkpoint, or one without mvface's recipe.
    """
    data = read_checkpoint(checkpoint)
    entry = data.get(CHECKPOINT_KEY)
    if not isinstance(entry, dict) or "config" not in entry:
        raise BadInputError(checkpoint, "not an mvface training checkpoint (no recipe inside)")
    config = TrainConfig.from_dict(entry["config"], source=str(checkpoint))
    model = build_model(config.model)
    prefix = "net."
    state = {k[len(prefix) :]: v for k, v in data["state_dict"].items() if k.startswith(prefix)}
    try:
        model.net.load_state_dict(state)
    except RuntimeError as exc:
        problem = str(exc).splitlines()[0]
        raise BadInputError(
            checkpoint, f"weights do not fit {config.model.name} ({problem})"
        ) from None
    meta = _recipe_metadata(config, int(data.get("global_step", -1)))
    meta["training_checkpoint"] = Path(checkpoint).name
    return export_weights(model, path, **meta)


def _recipe_metadata(config: TrainConfig, step: int) -> dict[str, str]:
    return {
        "mvface_version": __version__,
        "training_recipe": json.dumps(config.to_dict(), sort_keys=True),
        "training_mode": config.train.mode,
        "training_step": str(step),
    }


class BestWeights(Callback):
    """Export the weights whenever ``monitor`` reaches a new minimum (global rank 0 writes).

    Its state (best value and step) is saved in checkpoints, so a resumed run continues the
    comparison.

    Args:
        path: the weights file to (over)write atomically.
        monitor: logged metric, lower is better.
        config: the run's config (its recipe goes into the metadata).
    """

    def __init__(self, path: Path, monitor: str, config: TrainConfig) -> None:
        self.path = path
        self.monitor = monitor
        self.config = config
        self.best: float | None = None
        self.best_step = -1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Compare the new value and export on improvement."""
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if value != value or (self.best is not None and value >= self.best):  # NaN or worse
            return
        self.best, self.best_step = value, trainer.global_step
        if trainer.is_global_zero:
            assert isinstance(pl_module, LandmarkTrainingModule)
            meta = _recipe_metadata(self.config, trainer.global_step)
            meta.update({"training_monitor": self.monitor, "training_score": repr(value)})
            export_weights(pl_module.model, self.path, **meta)

    def state_dict(self) -> dict[str, Any]:
        """Best value and its step (plain types)."""
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best = state_dict.get("best")
        self.best_step = int(state_dict.get("best_step", -1))


# ------------------------------------------------------------------------ the run


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        out: the run folder.
        weights: the exported weights file (``model.safetensors``).
        steps: optimizer steps done in total (``global_step``).
        best_score: best value of ``train.monitor`` (``None`` without validation).
        best_step: its step (-1 without validation).
        stopped_early: early stopping ended the run before ``train.steps``.
        checkpoints: the checkpoints left in ``out/checkpoints``.
    """

    out: Path
    weights: Path | None
    steps: int
    best_score: float | None
    best_step: int
    stopped_early: bool
    checkpoints: list[Path]


def build_model(section: ModelSection) -> TorchLandmarkModel:
    """Create the model of ``section`` and check it is trainable.

    Raises:
        ConfigError: the family has no training view (not a ``TorchLandmarkModel``).
    """
    model = create_model(section.name, weights=section.weights, **section.options)
    if not isinstance(model, TorchLandmarkModel):
        raise ConfigError(
            f"model {section.name!r} is not trainable (no torch training view); trainable "
            f"families subclass mvface.models.trainable.TorchLandmarkModel"
        )
    return model


def build_teacher(section: TeacherSection) -> list[tuple[TorchLandmarkModel, float]]:
    """The frozen teachers of ``section`` with their shares (empty when it names none).

    Raises:
        ConfigError: a family has no training view, ``extra`` without ``name``, or as many
            shares as teachers are not given.
        NotAvailableError: a teacher without trained weights (its targets would be noise).
    """
    if section.name is None:
        if section.extra:
            raise ConfigError("teacher.extra needs teacher.name (the first teacher)")
        return []
    sections = [ModelSection(section.name, section.weights, dict(section.options))]
    for text in section.extra:
        spec = parse_model_spec(text)
        sections.append(ModelSection(spec.name, spec.weights))
    shares = list(section.shares) or [1.0] * len(sections)
    if len(shares) != len(sections):
        raise ConfigError(f"teacher.shares has {len(shares)} values for {len(sections)} teachers")
    teachers = [(build_model(s), float(share)) for s, share in zip(sections, shares, strict=True)]
    for (teacher, _), s in zip(teachers, sections, strict=True):
        if not teacher.trained:
            raise NotAvailableError(
                f"teacher {s.name!r} has no trained weights (a random initialization); give "
                f"them with teacher.weights=FILE (or NAME:FILE in teacher.extra)"
            )
    return teachers


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


def _resume_checkpoint(config: TrainConfig, out: Path, overwrite: bool = False) -> Path | None:
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


def check_hardware(accelerator: str, devices: str) -> None:
    """Refuse an accelerator or a device count this machine does not have, before Lightning
    starts (whose own refusal is a long traceback).

    Args:
        accelerator: ``train.accelerator`` (``"gpu"``/``"cuda"`` and ``"mps"`` are checked).
        devices: ``train.devices``: ``"auto"``, ``"-1"`` (all), a count or a list of indices
            (``"0,1"``, ``"[0, 1]"``).

    Raises:
        NotAvailableError: no such device here, or fewer than asked for.
    """
    kind = accelerator.strip().lower()
    if kind == "mps" or (kind == "gpu" and not torch.cuda.is_available()):
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return  # Lightning's "gpu" is Apple's GPU here; one device
        if kind == "mps":
            raise NotAvailableError(
                "train.accelerator=mps: no Apple GPU (MPS) is available here; "
                "use train.accelerator=cpu (or auto)"
            )
    if kind not in ("gpu", "cuda"):
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise NotAvailableError(
            f"train.accelerator={accelerator}: no CUDA GPU is visible here "
            f"(torch.cuda.is_available() is False); run where there is one, or use "
            f"train.accelerator=cpu (or auto)"
        )
    text = devices.strip().strip("[]").strip()
    if text in ("auto", "-1", ""):
        return
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.lstrip("-").isdigit() for p in parts):
        return  # not a count or indices: Lightning judges it
    if len(parts) == 1 and "," not in devices:
        wanted = int(parts[0])
        if wanted > count:
            raise NotAvailableError(
                f"train.devices={devices} asks for {wanted} CUDA GPUs but {count} "
                f"{'is' if count == 1 else 'are'} visible here; lower train.devices"
            )
        return
    missing = [int(p) for p in parts if not 0 <= int(p) < count]
    if missing:
        raise NotAvailableError(
            f"train.devices={devices} names GPU {missing[0]} but only indices 0-{count - 1} "
            f"are visible here"
        )


def _trainer(**kwargs: Any) -> pl.Trainer:
    """``pl.Trainer(**kwargs)``, its refusals of the hardware settings as one line.

    Raises:
        NotAvailableError: an accelerator whose backend or package is absent here.
        ConfigError: an invalid accelerator, strategy, precision or devices value.
    """
    try:
        return pl.Trainer(**kwargs)
    except (MisconfigurationException, ImportError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        absent = isinstance(exc, ImportError) or any(
            words in first.lower()
            for words in ("not available", "no supported", "can not run", "cannot run")
        )
        if absent:  # e.g. "No supported gpu backend found!", a missing torch_xla
            raise NotAvailableError(
                f"train.accelerator={kwargs.get('accelerator')}: not available here ({first})"
            ) from None
        raise ConfigError(f"train settings refused by Lightning: {first}") from None


def _check_resumable(config: TrainConfig, path: Path) -> int:
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


def _devices(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _loggers(out: Path) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(save_dir=str(out), name="logs")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(save_dir=str(out), name="tb"))
    return loggers


def run(
    config: TrainConfig, callbacks: Sequence[Callback] = (), overwrite: bool = False
) -> TrainResult:
    """Train or fine-tune as ``config`` says; see the module docstring for the run folder.

    Args:
        config: the recipe (``train.mode`` picks train or finetune); unset values take their
            mode's defaults (:meth:`TrainConfig.resolved`), saved as such.
        callbacks: extra Lightning callbacks (e.g. to record losses in tests).
        overwrite: start afresh in a folder holding a previous run, deleting that run's
            files (:func:`previous_run`) first; without it such a folder is refused.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: invalid or contradictory settings (including resuming with a different
            recipe).
        BadInputError: unreadable data, a checkpoint that is not a safe mvface checkpoint, or
            a fresh start in a folder holding a previous run (without ``overwrite``).
        NotAvailableError: the accelerator or devices asked for are absent here.
    """
    config.check()
    config = config.resolved()
    t = config.train
    check_hardware(t.accelerator, t.devices)
    out = Path(t.out)
    ckpt_dir = out / CHECKPOINT_DIR
    resume_from = _resume_checkpoint(config, out, overwrite)
    if resume_from is not None:
        _check_resumable(config, resume_from)

    pl.seed_everything(t.seed, workers=True, verbose=False)
    model = build_model(config.model)
    model.allow_untrained = True  # validation predicts with the network being trained
    teacher = build_teacher(config.teacher)
    module = LandmarkTrainingModule(model, config, teacher)
    data = TrainingData(config, CropSpec(model.config.input_size, model.config.crop))

    validating = t.val_every > 0 and bool(t.val_root or t.val_synthetic)
    best = BestWeights(out / BEST_FILE, t.monitor, config)
    cbs: list[Callback] = [best, *callbacks]
    if t.checkpoint_every > 0:
        cbs.append(
            LastKCheckpoints(
                dirpath=str(ckpt_dir),
                filename="step={step:08d}",
                auto_insert_metric_name=False,
                monitor="step",
                mode="max",
                save_top_k=t.keep_last,
                every_n_train_steps=t.checkpoint_every,
                save_on_train_epoch_end=False,
                enable_version_counter=False,
            )
        )
    early: EarlyStopping | None = None
    if validating and t.early_stop_patience > 0:
        early = EarlyStopping(
            monitor=t.monitor,
            mode="min",
            patience=t.early_stop_patience,
            min_delta=t.early_stop_min_delta,
            check_on_train_epoch_end=False,
        )
        cbs.append(early)
    if t.progress:
        cbs.append(RichProgressBar())
    loggers = _loggers(out)
    cbs.append(LearningRateMonitor(logging_interval="step"))

    trainer = _trainer(
        accelerator=t.accelerator,
        devices=_devices(t.devices),
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,  # Lightning validates the string (see _trainer)
        max_steps=t.steps,
        max_epochs=-1,
        val_check_interval=t.val_every if validating else None,
        check_val_every_n_epoch=None if validating else 1,
        limit_val_batches=1.0 if validating else 0,
        num_sanity_val_steps=0,
        callbacks=cbs,
        logger=loggers,
        plugins=[SafeCheckpointIO()],
        log_every_n_steps=t.log_every,
        enable_progress_bar=t.progress,
        enable_model_summary=False,
        enable_checkpointing=t.checkpoint_every > 0,
        gradient_clip_val=config.optim.grad_clip or None,
        deterministic=t.deterministic,
        default_root_dir=str(out),
        use_distributed_sampler=False,
    )
    if trainer.is_global_zero:
        if overwrite:
            remove_previous_run(out)
        config.save(out / CONFIG_FILE)
        for stale in ckpt_dir.glob(".step=*.tmp*"):  # half-written by a killed job
            stale.unlink(missing_ok=True)
        if resume_from is None:
            (out / BEST_FILE).unlink(missing_ok=True)  # a previous run's, not this one's
    trainer.fit(
        module,
        datamodule=data,
        ckpt_path=str(resume_from) if resume_from else None,
        weights_only=True,
    )

    weights: Path | None = None
    if trainer.is_global_zero:
        meta = _recipe_metadata(config, trainer.global_step)
        if (out / BEST_FILE).is_file():
            tensors, cfg, saved_meta = load_weights(out / BEST_FILE)
            saved_meta["training_stopped_step"] = str(trainer.global_step)
            weights = save_weights(out / EXPORT_FILE, tensors, cfg or None, **saved_meta)
        else:
            weights = export_weights(model, out / EXPORT_FILE, **meta)
    return TrainResult(
        out=out,
        weights=weights,
        steps=trainer.global_step,
        best_score=best.best,
        best_step=best.best_step,
        stopped_early=early is not None and trainer.global_step < t.steps,
        checkpoints=list_checkpoints(ckpt_dir),
    )
