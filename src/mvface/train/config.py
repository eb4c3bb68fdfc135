"""Typed training configuration: YAML recipes that inherit, overrides, the saved recipe.

A run is described by one :class:`TrainConfig` with six sections (:mod:`mvface.train.sections`;
every field has a default):

* :class:`ModelSection`: which registered model, from which weights, with which options;
* :class:`TeacherSection`: an optional frozen model the trained one learns to reproduce;
* :class:`DataSection`: the real data, the synthetic multiview set, batch composition and
  augmentation;
* :class:`LossSection`: ``w_orig`` and the plug-in's weights (:class:`MultiviewLossConfig`);
* :class:`OptimSection`: optimizer and learning-rate schedule;
* :class:`TrainSection`: steps, seed, checkpoints, validation, early stopping, hardware.

A recipe file may start from others: ``base:`` lists parent recipes (paths relative to the
file), merged in order before the file's own keys, section by section and key by key; a key's
value is replaced whole, a list or a mapping too (``model.options`` is one set of a family's
options: a stage that names a model's options names all of them, ``{}`` clears them). So each
training stage holds only what it changes from the stage it continues
(``configs/fast/stage2.yaml``).
Paths *inside* a recipe (weights, data, ``train.out``) are not rebased: like command-line
paths, they are relative to the folder the command runs in (the repository root for the shipped
recipes).

Types and validation are OmegaConf's structured configs built from the section dataclasses:
values are converted to the declared field types (``"0.01"`` → float, ``"true"`` → bool,
``"sgd"`` checked against the ``Literal``), the same for YAML files, override strings and
override mappings; an unknown section or key, or a value of the wrong type, is a one-line
:class:`ConfigError` naming the key. The resolved config is saved as YAML next to the
checkpoints and travels (as JSON) in the exported weights' metadata.

Example:
    >>> cfg = TrainConfig().with_overrides(["optim.lr=0.01", "model.options.input_size=64"])
    >>> cfg.optim.lr, cfg.model.options
    (0.01, {'input_size': 64})
    >>> cfg.with_overrides({"data.real_roots": ["a", "b"]}).data.real_roots
    ['a', 'b']
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from mvface._io import atomic_write_text
from mvface.errors import MvfaceError
from mvface.train.sections import (
    SECTIONS,
    DataSection,
    LossSection,
    ModelSection,
    OptimSection,
    TeacherSection,
    TrainSection,
)

__all__ = [
    "ConfigError",
    "DataSection",
    "LossSection",
    "ModelSection",
    "OptimSection",
    "TeacherSection",
    "TrainConfig",
    "TrainSection",
]

#: Metrics a run can monitor (validation logs them under these names).
MONITORS = ("val/nme_balanced", "val/nme_mean", "val/consistency")


class ConfigError(MvfaceError):
    """A configuration that cannot be used (unknown key, wrong type, contradictory values)."""


#: Keys a resumed run may change (they do not change what is computed at each step).
RESUMABLE_CHANGES = frozenset(
    {
        "train.steps",
        "train.resume",
        "train.progress",
        "train.accelerator",
        "train.devices",
        "train.num_nodes",
        "train.strategy",
        "train.log_every",
        "train.val_every",
        "train.val_limit",
        "train.early_stop_patience",
        "data.num_workers",
    }
)


@dataclass
class TrainConfig:
    """A complete training or fine-tuning recipe (see the module docstring)."""

    model: ModelSection = field(default_factory=ModelSection)
    teacher: TeacherSection = field(default_factory=TeacherSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)

    # ---------------------------------------------------------------- conversion

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str = "config") -> TrainConfig:
        """Build from a nested dict (missing sections and keys take their defaults).

        Raises:
            ConfigError: unknown sections or keys, or values of the wrong type.
        """
        return _to_config(_merge(_schema(), data, source), source)

    def to_yaml(self) -> str:
        """YAML text of :meth:`to_dict` (sections in a fixed order)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a YAML recipe, its ``base:`` recipes merged first (see the module docstring).

        Raises:
            ConfigError: unreadable file or base, invalid YAML, a base cycle, unknown keys or
                wrong types (naming the file that holds them).
        """
        return _to_config(_resolve(Path(path), _schema(), own=True), str(path))

    @classmethod
    def load_parent(cls, path: str | Path) -> TrainConfig:
        """What a recipe's ``base:`` recipes make before its own keys are applied (the defaults
        when it has none): the stage a recipe changes."""
        return _to_config(_resolve(Path(path), _schema(), own=False), str(path))

    def save(self, path: str | Path) -> Path:
        """Write the config as YAML, atomically; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = "# mvface training config (resolved: every value this run used)\n"
        atomic_write_text(path, header + self.to_yaml())
        return path

    # ---------------------------------------------------------------- overrides

    def with_overrides(self, overrides: Mapping[str, Any] | Sequence[str]) -> TrainConfig:
        """A copy with overrides applied in order, later ones winning.

        ``overrides`` is either a mapping ``{"section.key": value}`` of typed values (what a
        program passes) or ``section.key=value`` strings as typed on a command line (values
        read as YAML; a list field also takes ``a,b``). ``model.options.K`` reaches into a
        mapping field. An override replaces the whole value, a mapping field's too.

        Raises:
            ConfigError: malformed override, unknown section or key, or a wrong type.
        """
        items: list[tuple[str, Any, str | None]]
        if isinstance(overrides, Mapping):
            items = [(str(key), value, None) for key, value in overrides.items()]
        else:
            texts = [overrides] if isinstance(overrides, str) else list(overrides)
            items = [(*_split_override(text), text) for text in texts]
        cfg = _schema(self)
        for key, value, text in items:
            parts = key.split(".")
            if len(parts) < 2 or not all(parts):
                raise ConfigError(f"override {key!r}: expected section.key=value")
            field_key = ".".join(parts[:2])
            if len(parts) > 2 and not isinstance(_select(cfg, field_key), DictConfig | None):
                raise ConfigError(f"override {text or key!r}: {field_key} has no sub-keys")
            if text is not None:
                value = _read_value(value, parts, text, isinstance(_select(cfg, key), ListConfig))
            try:
                OmegaConf.update(cfg, key, value, merge=False)
            except OmegaConfBaseException as exc:
                raise _config_error(exc, "override") from None
        return _to_config(cfg, "override")

    # ---------------------------------------------------------------- checks

    def check(self) -> None:
        """Check the values make a runnable recipe.

        Raises:
            ConfigError: naming the first bad value.
        """
        t, d = self.train, self.data
        positive: dict[str, float] = {
            "train.steps": t.steps,
            "train.keep_last": t.keep_last,
            "train.log_every": t.log_every,
            "train.num_nodes": t.num_nodes,
            "train.val_synthetic_views": t.val_synthetic_views,
            "data.identities_per_step": d.identities_per_step,
            "data.views_per_identity": d.views_per_identity,
        }
        non_negative: dict[str, float] = {
            "train.checkpoint_every": t.checkpoint_every,
            "train.val_every": t.val_every,
            "train.early_stop_patience": t.early_stop_patience,
            "data.real_per_step": d.real_per_step,
            "data.num_workers": d.num_workers,
            "optim.warmup_steps": self.optim.warmup_steps or 0,
            "optim.grad_clip": self.optim.grad_clip,
            "optim.weight_decay": self.optim.weight_decay,
            "loss.w_orig": self.loss.w_orig,
            "teacher.weight": self.teacher.weight,
            "loss.real_jaw_weight": self.loss.real_jaw_weight,
            "loss.real_turned_jaw_weight": self.loss.real_turned_jaw_weight or 0.0,
            "data.scale_jitter": d.scale_jitter,
            "data.shift_jitter": d.shift_jitter,
            "data.rotation_deg": d.rotation_deg,
            "data.colour_jitter": d.colour_jitter,
            "data.synthetic_jitter": d.synthetic_jitter,
            "data.synthetic_rotation_deg": d.synthetic_rotation_deg,
            "data.synthetic_colour_jitter": d.synthetic_colour_jitter,
        }
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        for key, value in non_negative.items():
            if value < 0:
                raise ConfigError(f"{key} must not be negative, got {value}")
        if self.optim.lr is not None and not self.optim.lr > 0:
            raise ConfigError(f"optim.lr must be positive, got {self.optim.lr}")
        if not 0.0 <= d.flip <= 1.0:
            raise ConfigError(f"data.flip is a probability, got {d.flip}")
        if not 0.0 <= d.synthetic_max_filled <= 1.0:
            raise ConfigError(
                f"data.synthetic_max_filled is a fraction, got {d.synthetic_max_filled}"
            )
        if d.scale_jitter >= 1 or d.synthetic_jitter >= 1:
            raise ConfigError("data.scale_jitter and data.synthetic_jitter must be below 1")
        for key, limit in (
            ("data.real_limit", d.real_limit),
            ("data.synthetic_limit", d.synthetic_limit),
            ("train.val_limit", t.val_limit),
            ("train.val_synthetic_limit", t.val_synthetic_limit),
        ):
            if limit is not None and limit < 1:
                raise ConfigError(f"{key} must be at least 1 (or null), got {limit}")
        try:
            self.loss.multiview()
        except ValueError as exc:
            raise ConfigError(f"loss: {exc}") from None
        if t.mode == "train":
            if not d.real_roots:
                raise ConfigError("train needs real data: set data.real_roots")
            if d.real_per_step < 1:
                raise ConfigError("train needs data.real_per_step >= 1")
        else:
            if not d.synthetic:
                raise ConfigError("finetune needs a synthetic set: set data.synthetic")
            if d.views_per_identity < self.loss.num_source_views:
                raise ConfigError(
                    f"data.views_per_identity ({d.views_per_identity}) is below "
                    f"loss.num_source_views ({self.loss.num_source_views})"
                )
            if d.real_roots and self.loss.w_orig > 0 and d.real_per_step < 1:
                raise ConfigError("finetune with real data needs data.real_per_step >= 1")
        if t.monitor not in MONITORS:
            raise ConfigError(f"train.monitor must be one of {list(MONITORS)}, got {t.monitor!r}")
        if t.val_every > 0 and (t.val_root or t.val_synthetic):
            needs = "train.val_synthetic" if t.monitor == "val/consistency" else "train.val_root"
            if not (t.val_synthetic if t.monitor == "val/consistency" else t.val_root):
                raise ConfigError(f"train.monitor {t.monitor} needs {needs}")
            if t.monitor == "val/nme_balanced" and t.val_dataset != "aflw2000-3d":
                raise ConfigError(
                    f"val/nme_balanced needs a benchmark with yaw bins (aflw2000-3d), not "
                    f"{t.val_dataset}; use train.monitor=val/nme_mean"
                )
        if t.early_stop_patience and not (t.val_every and (t.val_root or t.val_synthetic)):
            raise ConfigError("early stopping needs validation (train.val_every and a val set)")
        self._check_not_training_on_validation()

    def _check_not_training_on_validation(self) -> None:
        """Refuse real training roots that are, contain or lie inside a validation root."""
        vals = [Path(p).resolve() for p in (self.train.val_root, self.train.val_synthetic) if p]
        trains = [Path(p).resolve() for p in self.data.real_roots]
        trains += [Path(p).resolve() for p in self.data.synthetic_roots()]
        for tr in trains:
            for val in vals:
                if tr == val or val in tr.parents or tr in val.parents:
                    raise ConfigError(
                        f"training data {tr} overlaps the validation data {val}: never train on "
                        f"the validation set"
                    )

    def resolved(self) -> TrainConfig:
        """A copy with every value set: the optimizer's mode defaults filled in
        (:meth:`OptimSection.for_mode`), as a run uses and saves them."""
        return dataclasses.replace(self, optim=self.optim.for_mode(self.train.mode))

    def changed_keys(self, other: TrainConfig) -> list[str]:
        """``section.key`` names whose values differ between two configs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [
            f"{s}.{k}"
            for s in SECTIONS
            for k in mine[s]
            if mine[s][k] != theirs[s].get(k, object())
        ]


# -------------------------------------------------------------------- recipes and OmegaConf

#: Key of a recipe file naming its parent recipes (a path or a list, relative to the file).
BASE_KEY = "base"


def _schema(config: TrainConfig | None = None) -> DictConfig:
    """The structured (typed, closed) OmegaConf tree of ``config`` (default: the defaults)."""
    return OmegaConf.structured(TrainConfig() if config is None else config)


def _merge(cfg: DictConfig, data: Mapping[str, Any] | None, source: str) -> DictConfig:
    """``data`` (nested sections) merged onto ``cfg`` key by key, each key's value replaced
    whole (a list or a mapping too); an empty section (``teacher:`` alone) changes nothing."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    sections: dict[str, Any] = {}
    cfg = cfg.copy()
    for name, values in data.items():
        _check_known([name], SECTIONS, source, "section")
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: section {name!r} must be a mapping")
        sections[name] = values
        for key, value in values.items():
            if isinstance(value, Mapping) and isinstance(_select(cfg, f"{name}.{key}"), DictConfig):
                cfg[name][key] = {}  # replaced, not merged into
    try:
        merged = OmegaConf.merge(cfg, sections)
    except OmegaConfBaseException as exc:
        raise _config_error(exc, source) from None
    assert isinstance(merged, DictConfig)
    return merged


def _to_config(cfg: DictConfig, source: str) -> TrainConfig:
    """The :class:`TrainConfig` of a structured tree (interpolations resolved)."""
    try:
        config = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise _config_error(exc, source) from None
    assert isinstance(config, TrainConfig)
    return config


def _read_recipe(path: Path) -> dict[str, Any]:
    """One recipe file's own mapping (``base:`` included), as YAML reads it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def _resolve(path: Path, cfg: DictConfig, own: bool, chain: tuple[Path, ...] = ()) -> DictConfig:
    """``cfg`` with the recipe at ``path`` merged on: its bases first (depth first, in order),
    then, if ``own``, its own keys."""
    data = _read_recipe(path)
    bases = data.pop(BASE_KEY, None)
    if isinstance(bases, str):
        bases = [bases]
    if bases is None:
        bases = []
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a path or a list of paths")
    here = path.resolve()
    for name in bases:
        parent = path.parent / name
        if parent.resolve() in (*chain, here):
            raise ConfigError(f"{path}: {BASE_KEY} {name!r} includes {path.name} again (a cycle)")
        if not parent.is_file():
            raise ConfigError(f"{path}: {BASE_KEY} {name!r} does not exist ({parent})")
        cfg = _resolve(parent, cfg, True, (*chain, here))
    return _merge(cfg, data, str(path)) if own else cfg


def _split_override(text: str) -> tuple[str, str]:
    """``section.key=value`` → ``("section.key", "value")``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"override {text!r}: expected section.key=value")
    return key, value.strip()


def _read_value(value: str, parts: list[str], text: str, is_list: bool) -> Any:
    """A command-line value for the field at ``parts``, read as OmegaConf reads a command line
    (YAML: ``64`` → int, ``1e-3`` → float, ``null``, ``[a, b]``), except that a text field
    (``str`` or a ``Literal``) takes the text as typed (``on`` stays ``"on"``, not YAML 1.1's
    true; only ``null`` is None) and a list field also takes ``a,b``; empty → ``""``."""
    if _is_text_field(parts):
        return None if value.lower() in ("null", "none") else value
    if not value:
        return ""
    try:
        parsed = OmegaConf.to_container(OmegaConf.from_dotlist([f"value={value}"]))
    except (OmegaConfBaseException, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unreadable value"
        raise ConfigError(f"override {text!r}: {first}") from None
    assert isinstance(parsed, dict)
    if is_list and isinstance(parsed["value"], str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return parsed["value"]


def _is_text_field(parts: list[str]) -> bool:
    """Whether ``section.key`` is declared ``str``, ``str | None`` or a ``Literal`` of text."""
    kind = SECTIONS.get(parts[0])
    if kind is None or len(parts) != 2:
        return False
    hint = typing.get_type_hints(kind).get(parts[1])
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is Literal:
        return all(isinstance(a, str) for a in typing.get_args(hint))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return options == [str]
    return hint is str


def _select(cfg: DictConfig, key: str) -> Any:
    """The node or value at dotted ``key``; ``None`` where there is none (yet)."""
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=False)
    except OmegaConfBaseException:
        return None


#: What a field's node holds, for the one-line message of a value OmegaConf refused.
_EXPECTED = {
    "IntegerNode": "an integer",
    "FloatNode": "a number",
    "BooleanNode": "true or false",
    "StringNode": "a string",
    "ListConfig": "a list",
    "DictConfig": "a mapping",
}


def _config_error(exc: OmegaConfBaseException, source: str) -> ConfigError:
    """OmegaConf's multi-line error as one line naming the key (``override: train.steps must
    be an integer, got 'many'``; unknown keys with the known ones)."""
    key = str(getattr(exc, "full_key", None) or "")
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) and key:
        section, _, name = key.rpartition(".")
        if not section:
            known: Any = SECTIONS
            what = "section"
        else:
            top = section.split(".")[0]
            known = [f.name for f in fields(SECTIONS[top])] if top in SECTIONS else []
            what = f"key of section {section!r}"
        _check_known([name], known, source, what)
    reason = (getattr(exc, "msg", None) or str(exc) or type(exc).__name__).splitlines()[0]
    expected = _EXPECTED.get(type(getattr(exc, "child_node", None)).__name__)
    choices = re.search(r"expected one of (\[.*\])", reason)  # a Literal or Enum field
    if choices and key and hasattr(exc, "value"):
        expected = f"one of {choices.group(1)}"
    if expected and key and hasattr(exc, "value"):
        return ConfigError(f"{source}: {key} must be {expected}, got {exc.value!r}")
    return ConfigError(f"{source}: {key}: {reason}" if key else f"{source}: {reason}")


def _check_known(keys: Any, known: Any, source: str, what: str) -> None:
    known_list = list(known)
    for key in keys:
        if key not in known_list:
            close = difflib.get_close_matches(str(key), known_list, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{source}: unknown {what} {key!r}{hint}; known: {', '.join(known_list)}"
            )
