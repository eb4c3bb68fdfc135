"""Landmark models behind one registry: ``create_model(name)``, ``list_models()``.

Old model names (:data:`RENAMED_MODELS`: ``default``, ``default+``, ``dlib-68``) still work,
with a FutureWarning; a model on a command line is a :class:`ModelSpec`,
``NAME[:WEIGHTS]`` or ``LABEL=NAME[:WEIGHTS]`` (:func:`parse_model_spec`).
"""

from __future__ import annotations

from mvface.models import defaults as _defaults  # noqa: F401  ("base", "base+", "fast")
from mvface.models import dlib_68 as _dlib_68  # noqa: F401  (registers "dlib")
from mvface.models import ensemble as _ensemble  # noqa: F401  (registers "teacher")
from mvface.models import mediapipe_68 as _mediapipe_68  # noqa: F401
from mvface.models import mvnet as _mvnet  # noqa: F401
from mvface.models import tddfa as _tddfa  # noqa: F401  (registers "3ddfa-v2")
from mvface.models._registry import (
    RENAMED_MODELS,
    create_model,
    list_models,
    register_model,
    register_model_deprecations,
    resolve_model_name,
)
from mvface.models.base import LandmarkModel, Landmarks, ModelConfig
from mvface.models.boxes import BoxTransform
from mvface.models.defaults import DEFAULT_MODEL
from mvface.models.spec import ModelSpec, parse_model_spec, parse_model_specs

__all__ = [
    "DEFAULT_MODEL",
    "RENAMED_MODELS",
    "BoxTransform",
    "LandmarkModel",
    "Landmarks",
    "ModelConfig",
    "ModelSpec",
    "create_model",
    "list_models",
    "parse_model_spec",
    "parse_model_specs",
    "register_model",
    "register_model_deprecations",
    "resolve_model_name",
]
