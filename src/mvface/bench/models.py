"""Which models a benchmark measures: the registry's, with the peers, each network once.

:func:`resolve_models` builds them (``3ddfa-v2`` gets the shared folder's release weights) and
leaves out a name whose network (or weights) equals an earlier one's (``base`` is
``mediapipe-68``), saying why.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mvface.errors import BadInputError, NotAvailableError
from mvface.models import (
    DEFAULT_MODEL,
    LandmarkModel,
    ModelSpec,
    create_model,
    list_models,
    resolve_model_name,
)
from mvface.models.trainable import TorchLandmarkModel

#: The baseline of the paper's pair (``mediapipe-68`` as shipped): the goals are checked for it
#: too when it is measured, beside :data:`~mvface.models.DEFAULT_MODEL` (``fast``).
BASE_MODEL = "base"

#: Peer models measured in the same run: registry name -> what it is.
PEERS = {
    "3ddfa-v2": "3DDFA-V2 MobileNet-V1 x0.5, 120 px (Guo et al. 2020; shared release weights)",
    "dlib": "dlib's 68-point shape predictor (Kazemi & Sullivan 2014)",
}

#: The network method each family's ``predict`` calls (exported for ONNX Runtime), its output


#: Environment variable naming the shared data/model folder (default ``../shared``).
SHARED_ENV_VAR = "MVFACE_SHARED_DIR"


def default_shared_root() -> Path:
    """The shared data folder: ``$MVFACE_SHARED_DIR``, else ``../shared`` from the current
    folder, else ``shared`` beside the source checkout this module lives in."""
    env = os.environ.get(SHARED_ENV_VAR)
    if env:
        return Path(env)
    cwd = Path.cwd().parent / "shared"
    if cwd.is_dir():
        return cwd
    return Path(__file__).resolve().parents[3].parent / "shared"


def default_weights(name: str, shared: Path) -> str | None:
    """Weights a model needs and the shared folder provides (``3ddfa-v2``), else ``None``."""
    if name == "3ddfa-v2" and not os.environ.get("MVFACE_3DDFA_V2_DIR"):
        folder = shared / "models" / "3ddfa_v2"
        return str(folder) if folder.is_dir() else None
    return None


def _create(spec: ModelSpec) -> LandmarkModel:
    if spec.name == "mvnet" and spec.weights is None:
        return create_model("mvnet", seed=0, allow_untrained=True)  # random init: speed only
    return create_model(spec.name, weights=spec.weights)


def architecture_key(model: LandmarkModel) -> tuple[Any, ...]:
    """What decides a model's speed: class, data contract (without the name) and tensor shapes."""
    config = model.config.to_dict()
    config.pop("name", None)
    config.pop("licence", None)
    shapes: tuple[Any, ...] = ()
    if isinstance(model, TorchLandmarkModel):
        shapes = tuple((k, tuple(v.shape)) for k, v in model.net.state_dict().items())
    extra = tuple(getattr(model, k, None) for k in ("passes", "recrop_scale"))
    return (type(model).__name__, repr(sorted(config.items())), shapes, extra)


def weights_key(model: LandmarkModel) -> str:
    """Architecture plus a hash of the weights: equal for two names of the same model."""
    digest = hashlib.sha1(repr(architecture_key(model)).encode())
    if isinstance(model, TorchLandmarkModel):
        for value in model.net.state_dict().values():
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def resolve_models(
    specs: Sequence[ModelSpec] | None,
    shared: Path,
    key: Callable[[LandmarkModel], Any] = architecture_key,
) -> tuple[dict[str, LandmarkModel], dict[str, str]]:
    """Build the models to benchmark; every registered one when ``specs`` is ``None``.

    Names whose ``key`` equals an earlier model's (``base`` is ``mediapipe-68``) are not
    measured twice. :data:`DEFAULT_MODEL` and :data:`BASE_MODEL` come first, then the peers,
    then the rest.

    Returns:
        label -> model, and label -> why it was left out (not available, or "same as X").
    """
    if specs is None:
        names = list_models()
        order = [DEFAULT_MODEL, BASE_MODEL, *PEERS, *names]
        specs = [ModelSpec.named(n) for n in dict.fromkeys(order) if n in names]
    models: dict[str, LandmarkModel] = {}
    left_out: dict[str, str] = {}
    seen: dict[Any, str] = {}
    for spec in specs:
        try:
            name = resolve_model_name(spec.name)  # an old name warns and becomes the current one
            # a spec labelled by its (possibly old) name is shown under the current name
            label = name if spec.label == spec.name else spec.label
            spec = replace(
                spec, label=label, name=name, weights=spec.weights or default_weights(name, shared)
            )
            model = _create(spec)
        except (NotAvailableError, BadInputError, ValueError) as exc:
            left_out[spec.label] = f"not available: {exc}"
            continue
        k = key(model)
        if k in seen:
            what = "weights" if key is weights_key else "network"
            left_out[spec.label] = f"same {what} as {seen[k]}, not measured twice"
            continue
        seen[k] = spec.label
        models[spec.label] = model
    return models, left_out


def model_note(name: str, model: LandmarkModel) -> str:
    """Short description of a benchmarked model for the table's notes."""
    if name in PEERS:
        return f"peer: {PEERS[name]}"
    if name == "mvnet" and isinstance(model, TorchLandmarkModel) and model.net.training:
        return "random initialization (no shipped weights): speed only"
    notes = {DEFAULT_MODEL: ["mvface's default model"], BASE_MODEL: ["baseline"]}.get(name, [])
    if model.flip_average:
        notes.append("flip-averaged (each face also run mirrored)")
    return "; ".join(notes)
