"""Training and fine-tuning of trainable landmark models (``mvface train``, ``mvface finetune``).

>>> from mvface.train import TrainConfig, run  # doctest: +SKIP
>>> cfg = TrainConfig.load("finetune.yaml").with_overrides(["train.steps=100"])  # doctest: +SKIP
>>> result = run(cfg)  # doctest: +SKIP

See ``docs/training.md`` for the recipe, the run folder and the checkpoint format.
"""

from typing import TYPE_CHECKING, Any

from mvface.train.config import (
    ConfigError,
    DataSection,
    LossSection,
    ModelSection,
    OptimSection,
    TrainConfig,
    TrainSection,
)

if TYPE_CHECKING:
    from mvface.train.trainer import TrainResult, read_checkpoint, run

_LAZY = ("TrainResult", "read_checkpoint", "run")


def __getattr__(name: str) -> Any:
    """Import the trainer (and Lightning) only when it is used."""
    if name in _LAZY:
        from mvface.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "DataSection",
    "LossSection",
    "ModelSection",
    "OptimSection",
    "TrainConfig",
    "TrainResult",
    "TrainSection",
    "read_checkpoint",
    "run",
]
