"""The weights a run writes: the family's own format, with the recipe in the metadata.

:func:`export_weights` writes a model as ``create_model(name, weights=path)`` loads it;
:class:`BestWeights` re-exports it whenever the monitored validation metric improves.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from mvface._version import __version__
from mvface.models._weights import load_weights, save_weights
from mvface.models.trainable import TorchLandmarkModel
from mvface.train.config import TrainConfig
from mvface.train.module import LandmarkTrainingModule

__all__ = ["BestWeights", "export_weights", "recipe_metadata"]


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


def recipe_metadata(config: TrainConfig, step: int) -> dict[str, str]:
    """The metadata that ties exported weights to their run: version, recipe (JSON), mode, step."""
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
            meta = recipe_metadata(self.config, trainer.global_step)
            meta.update({"training_monitor": self.monitor, "training_score": repr(value)})
            export_weights(pl_module.model, self.path, **meta)

    def state_dict(self) -> dict[str, Any]:
        """Best value and its step (plain types)."""
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best = state_dict.get("best")
        self.best_step = int(state_dict.get("best_step", -1))
