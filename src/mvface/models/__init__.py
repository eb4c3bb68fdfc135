"""Landmark models behind one registry: ``create_model(name)``, ``list_models()``."""

from __future__ import annotations

from mvface.models import defaults as _defaults  # noqa: F401  ("base", "base+", "fast")
from mvface.models import dlib_68 as _dlib_68  # noqa: F401  (registers "dlib")
from mvface.models import mediapipe_68 as _mediapipe_68  # noqa: F401
from mvface.models import mvnet as _mvnet  # noqa: F401
from mvface.models import tddfa as _tddfa  # noqa: F401  (registers "3ddfa-v2")
from mvface.models._registry import create_model, list_models, register_model
from mvface.models.base import LandmarkModel, Landmarks, ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.defaults import DEFAULT_MODEL

__all__ = [
    "DEFAULT_MODEL",
    "BoxTransform",
    "LandmarkModel",
    "Landmarks",
    "ModelConfig",
    "create_model",
    "list_models",
    "register_model",
]
