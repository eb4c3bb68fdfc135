"""Run a training or fine-tuning job: the library side of ``mvface train`` and ``mvface finetune``.

:func:`run` builds the model, the data and a Lightning ``Trainer`` from a
:class:`~mvface.train.config.TrainConfig` and fits. Lightning provides the engine: devices,
mixed precision and (multi-node) DDP come from its ``accelerator``/``devices``/``strategy``/
``precision`` options unchanged; progress (rich), CSV (and TensorBoard, when installed) logs,
checkpoints (``ModelCheckpoint``) and early stopping (``EarlyStopping``) are its callbacks.

The run uses one module per concern: :mod:`~mvface.train.checkpoints` (the checkpoint files),
:mod:`~mvface.train.run_folder` (fresh start, resume or refusal), :mod:`~mvface.train.hardware`
(the devices asked for) and :mod:`~mvface.train.weights` (the exported weights); their public
names are importable from here too, as before.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    RichProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from mvface.errors import BadInputError, NotAvailableError
from mvface.models import create_model
from mvface.models._weights import load_weights, save_weights
from mvface.models.spec import parse_model_spec
from mvface.models.trainable import TorchLandmarkModel
from mvface.train.checkpoints import (
    LastKCheckpoints,
    SafeCheckpointIO,
    list_checkpoints,
    read_checkpoint,
)
from mvface.train.config import ConfigError, ModelSection, TeacherSection, TrainConfig
from mvface.train.data import CropSpec, TrainingData
from mvface.train.hardware import check_hardware, lightning_trainer, parse_devices
from mvface.train.module import CHECKPOINT_KEY, LandmarkTrainingModule
from mvface.train.run_folder import (
    BEST_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    EXPORT_FILE,
    check_resumable,
    launched_as_rank_zero,
    previous_run,
    remove_previous_run,
    resume_checkpoint,
)
from mvface.train.weights import BestWeights, export_weights, recipe_metadata

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
    "check_hardware",
    "export_checkpoint",
    "export_weights",
    "launched_as_rank_zero",
    "list_checkpoints",
    "previous_run",
    "read_checkpoint",
    "run",
]

#: The old private name of :func:`~mvface.train.hardware.lightning_trainer` (tests import it).
_trainer = lightning_trainer


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
    meta = recipe_metadata(config, int(data.get("global_step", -1)))
    meta["training_checkpoint"] = Path(checkpoint).name
    return export_weights(model, path, **meta)


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
    resume_from = resume_checkpoint(config, out, overwrite)
    if resume_from is not None:
        check_resumable(config, resume_from)

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

    trainer = lightning_trainer(
        accelerator=t.accelerator,
        devices=parse_devices(t.devices),
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,  # Lightning validates the string (see lightning_trainer)
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
        meta = recipe_metadata(config, trainer.global_step)
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
