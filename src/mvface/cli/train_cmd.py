"""``mvface train`` and ``mvface finetune``: build a config, call :func:`mvface.train.run`.

Both take an optional YAML recipe (``--config``), a few shortcut options, and any number of
``section.key=value`` overrides (applied last, so they win), e.g.::

    mvface finetune --synthetic synth/ --data ../shared/data/300w/afw --model mvnet \\
        --weights base.safetensors --out runs/mvnet-plus \\
        train.val_root=../shared/data/aflw2000_3d_dev

A bad config (unknown key, wrong type) or a model that is not trainable is a usage error
(exit 2); bad data, an unsafe checkpoint, or a run folder that holds a previous run (without
``--resume`` or ``--overwrite``) exit 1 with one line; an accelerator or device count absent
here exits 3.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from mvface.cli._common import EXIT_USAGE, check_choice, fail, handle_errors, say, shown
from mvface.data.readers import list_readers
from mvface.models import list_models
from mvface.models._registry import RENAMED_MODELS
from mvface.train.config import ConfigError, TrainConfig

if TYPE_CHECKING:
    from mvface.train.trainer import TrainResult

#: The run folder's saved config (as :data:`mvface.train.trainer.CONFIG_FILE`; the trainer,
#: which imports Lightning, is only imported when a run starts).
CONFIG_FILE = "config.yaml"

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML recipe (sections model, data, ...; base: parent recipes merged first).",
    ),
]
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Overrides section.key=value, e.g. optim.lr=1e-4 train.steps=2000."),
]
DataOpt = Annotated[
    list[str] | None, typer.Option("--data", help="Real training data folder (repeatable).")
]
DataFormatOpt = Annotated[
    str | None,
    typer.Option(
        help="Reader of --data (data.real_format), e.g. pts.",
        callback=check_choice("dataset format", lambda: list_readers()),
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        help=f"Registered model (model.name): {', '.join(list_models())}; it must be "
        "trainable (a model that is not, e.g. dlib, is a usage error).",
        callback=check_choice("model", lambda: [*list_models(), *RENAMED_MODELS]),
    ),
]
WeightsOpt = Annotated[str | None, typer.Option(help="Weights to start from (model.weights).")]
OutOpt = Annotated[str | None, typer.Option(help="Run folder (train.out).")]
StepsOpt = Annotated[int | None, typer.Option(min=1, help="Optimizer steps (train.steps).")]
SeedOpt = Annotated[int | None, typer.Option(help="Seed of model init and data (train.seed).")]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue from the last checkpoint of the run folder.")
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Start afresh in a run folder holding a previous run, deleting that run's "
        "checkpoints, weights, config and logs first.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def build_config(
    mode: Literal["train", "finetune"],
    config: Path | None,
    overrides: list[str],
    shortcuts: Mapping[str, Any],
    resume: bool,
) -> TrainConfig:
    """The run's config: YAML (or, resuming without one, the run's saved config), shortcut
    options (typed values by ``section.key``), then the command line's ``section.key=value``
    overrides.

    Raises:
        ConfigError: bad file, key or value.
    """
    if config is not None and not config.is_file():
        raise ConfigError(f"{config}: config file does not exist")
    base = TrainConfig.load(config) if config else TrainConfig()
    extra = {"train.mode": mode, **shortcuts, **({"train.resume": "last"} if resume else {})}
    cfg = base.with_overrides(extra).with_overrides(overrides)
    saved = Path(cfg.train.out) / CONFIG_FILE
    if resume and config is None and saved.is_file():
        cfg = TrainConfig.load(saved).with_overrides(extra).with_overrides(overrides)
    return cfg


def _shortcuts(
    data: list[str] | None,
    data_format: str | None,
    model: str | None,
    weights: str | None,
    out: str | None,
    steps: int | None,
    seed: int | None,
    quiet: bool,
) -> dict[str, Any]:
    """The shortcut options given, as ``{"section.key": value}``."""
    pairs: dict[str, Any] = {
        "data.real_roots": list(data) if data else None,
        "data.real_format": data_format,
        "model.name": model,
        "model.weights": weights,
        "train.out": out,
        "train.steps": steps,
        "train.seed": seed,
        "train.progress": False if quiet else None,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def _report(result: TrainResult, cfg: TrainConfig) -> None:
    line = f"{cfg.train.mode}: {result.steps} steps in {shown(result.out)}"
    if result.best_score is not None:
        line += f"; best {cfg.train.monitor} = {result.best_score:.4f} at step {result.best_step}"
    if result.stopped_early:
        line += " (stopped early)"
    say(line)
    if result.weights is not None:
        say(f"weights: {shown(result.weights)}")


def _start(
    mode: Literal["train", "finetune"],
    config: Path | None,
    overrides: list[str] | None,
    shortcuts: Mapping[str, Any],
    resume: bool,
    overwrite: bool = False,
) -> None:
    try:
        cfg = build_config(mode, config, overrides or [], shortcuts, resume)
        cfg.check()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    from mvface.train.trainer import run

    try:
        result = run(cfg, overwrite=overwrite)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    _report(result, cfg)


@handle_errors
def train_command(
    overrides: Overrides = None,
    config: ConfigOpt = None,
    data: DataOpt = None,
    data_format: DataFormatOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    out: OutOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a landmark detector on real data (L1 on the annotated points)."""
    shortcuts = _shortcuts(data, data_format, model, weights, out, steps, seed, quiet)
    _start("train", config, overrides, shortcuts, resume, overwrite)


@handle_errors
def finetune_command(
    overrides: Overrides = None,
    synthetic: Annotated[
        str | None,
        typer.Option(help="Synthetic multiview set from 'mvface synth' (data.synthetic)."),
    ] = None,
    config: ConfigOpt = None,
    data: DataOpt = None,
    data_format: DataFormatOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    out: OutOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fine-tune a detector with the multiview-consistency plug-in on a synthetic set.

    Unset ``optim.lr`` and ``optim.warmup_steps`` take fine-tuning values (1e-4 after 50
    warm-up steps), which keep a trained network's accuracy from the first step.
    """
    shortcuts = _shortcuts(data, data_format, model, weights, out, steps, seed, quiet)
    if synthetic is not None:
        shortcuts["data.synthetic"] = synthetic
    _start("finetune", config, overrides, shortcuts, resume, overwrite)


__all__ = ["build_config", "finetune_command", "train_command"]
