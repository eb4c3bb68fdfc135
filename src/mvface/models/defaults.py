"""The models shipped inside mvface: ``base``, ``base+`` (plug-in) and ``fast`` (the default).

* ``base``: ``mediapipe-68`` as shipped — MediaPipe's face mesh network converted to PyTorch
  with the 468 → 68 head fitted on 300-W AFW (``docs/models/mediapipe-68.md``): the baseline
  of the paper's pair.
* ``base+``: the same network fine-tuned end to end with the multiview-consistency plug-in
  on synthetic multiview heads made from 300-W (``docs/models/base-plus.md``; recipe in
  ``configs/base-plus/``: its runs keep the model's first name, ``runs/default-plus*``).
* ``fast``: ``base+``'s network resized to 128 px crops and trained there, one pass: about
  40 % of ``base``'s time per face (``docs/models/fast.md``; recipe in ``configs/fast/``).
  It is :data:`DEFAULT_MODEL`, what ``mvface.load()`` and ``mvface detect`` run when no
  model is named.

All load from files inside the package, with no download.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mvface.errors import NotAvailableError
from mvface.models._registry import register_model
from mvface.models.mediapipe_68 import MediaPipe68, mediapipe_68

#: The model run when none is named (``mvface.load()``, ``mvface detect``): the speed-first
#: ``fast``, ahead of ``base`` on AFLW2000-3D's yaw-balanced NME and cross-view consistency,
#: behind it on frontal faces (``docs/models/fast.md``); ``base+`` is the accuracy-first choice.
DEFAULT_MODEL = "fast"

#: Weights of ``base+`` (face mesh + head, float32), written by ``mvface finetune``.
BASE_PLUS_PATH = Path(__file__).resolve().parent / "weights" / "base_plus.safetensors"


def _renamed(model: MediaPipe68, name: str) -> MediaPipe68:
    model.config = dataclasses.replace(model.config, name=name)
    return model


@register_model("base")
def base(weights: str | None = None, **cfg: Any) -> MediaPipe68:
    """The baseline: ``mediapipe-68`` with its shipped head (options as ``mediapipe-68``)."""
    return _renamed(mediapipe_68(weights, **cfg), "base")


#: Network passes of ``base+``: fine-tuning trains on the first pass's upright crops, and one
#: pass beats the tracked re-crop for the fine-tuned network (docs/models/base-plus.md).
BASE_PLUS_PASSES = 1

#: ``base+`` averages each face with its mirror image (:attr:`LandmarkModel.flip_average`):
#: two network runs per face, as many as ``base``'s two passes (docs/results.md).
BASE_PLUS_FLIP_AVERAGE = True


def _whole_network(name: str, weights: str | None, default_path: Path, **cfg: Any) -> MediaPipe68:
    """A shipped whole-network ``mediapipe-68`` file (or ``weights`` instead) under ``name``."""
    path = Path(weights) if weights is not None else default_path
    if not path.is_file():
        raise NotAvailableError(f"{path}: {name} weights not found (see docs/models)")
    return _renamed(mediapipe_68(str(path), **cfg), name)


@register_model("base+")
def base_plus(weights: str | None = None, **cfg: Any) -> MediaPipe68:
    """``base`` fine-tuned with the plug-in (``weights``: another fine-tune to load instead).

    Options as ``mediapipe-68``; ``passes`` defaults to :data:`BASE_PLUS_PASSES` and
    ``flip_average`` (handled by :func:`create_model`) to :data:`BASE_PLUS_FLIP_AVERAGE`.
    """
    cfg.setdefault("passes", BASE_PLUS_PASSES)
    model = _whole_network("base+", weights, BASE_PLUS_PATH, **cfg)
    model.flip_average = BASE_PLUS_FLIP_AVERAGE
    return model


#: Weights of ``fast`` (face mesh at 128 px + head, float32), written by ``mvface finetune``.
FAST_PATH = Path(__file__).resolve().parent / "weights" / "fast.safetensors"


@register_model("fast")
def fast(weights: str | None = None, **cfg: Any) -> MediaPipe68:
    """``base+``'s network at 128 px crops, one pass, no mirror: the default, speed-first model.

    Resized from ``base+`` (:func:`~mvface.models.mediapipe_mesh.resize_facemesh`),
    fine-tuned at 128 px with the plug-in and distilled from ``base+``
    (``docs/models/fast.md``). Options as ``mediapipe-68`` (``passes`` defaults to 1).
    """
    cfg.setdefault("passes", 1)
    return _whole_network("fast", weights, FAST_PATH, **cfg)
