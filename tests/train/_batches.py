"""The training module of a config and its first step's batch, for the loss tests."""

from __future__ import annotations

from typing import Any

from mvface.train.config import TrainConfig
from mvface.train.data import CropSpec, RealFaces, StepBatches, SyntheticViews
from mvface.train.module import LandmarkTrainingModule
from mvface.train.trainer import build_model


def module_and_batch(cfg: TrainConfig) -> tuple[LandmarkTrainingModule, dict[str, Any]]:
    """The training module of ``cfg`` and its first step's batch (as Lightning would pass it)."""
    model = build_model(cfg.model)
    module = LandmarkTrainingModule(model, cfg)
    d = cfg.data
    data = StepBatches(
        cfg,
        CropSpec(model.config.input_size, model.config.crop),
        RealFaces(d.real_format, d.real_roots, d.real_limit),
        SyntheticViews(d.synthetic, d.synthetic_limit),  # type: ignore[arg-type]
    )
    batch = dict(data[0])
    batch["image_size"] = float(batch["image_size"])
    return module, batch
