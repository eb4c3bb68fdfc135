"""The committed recipes under ``configs/``: each loads (its ``base:`` chain resolved), makes a
runnable recipe, names split files that exist, and holds only what it changes from its parents.

Layout: ``configs/_base/`` holds what every recipe shares (stated in full, defaults included);
``configs/<model>/`` the stages of each shipped lineage, each starting from the stage it
continues; ``configs/experiments/`` the stages that were not shipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mvface.train.config import BASE_KEY, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SHARED_PARTS = CONFIGS / "_base"
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if SHARED_PARTS not in p.parents)


def _own(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert isinstance(data, dict), path
    return data


def _bases(path: Path) -> list[Path]:
    names = _own(path).get(BASE_KEY) or []
    return [path.parent / name for name in ([names] if isinstance(names, str) else names)]


def _keys(path: Path) -> set[str]:
    """``section.key`` names a recipe file sets itself (a key's value is replaced whole)."""
    return {
        f"{section}.{key}"
        for section, values in _own(path).items()
        if section != BASE_KEY
        for key in values or {}
    }


def _set_by_parents(path: Path) -> set[str]:
    """Keys some recipe up the ``base:`` chain of ``path`` sets."""
    found: set[str] = set()
    for parent in _bases(path):
        found |= _keys(parent) | _set_by_parents(parent)
    return found


def redundant_keys(path: Path) -> list[str]:
    """Keys a recipe sets to the value its parents already give it. A key no parent sets may
    state a default (a lineage's first stage says which model it trains)."""
    mine, parent = TrainConfig.load(path).to_dict(), TrainConfig.load_parent(path).to_dict()

    def value(config: dict[str, Any], key: str) -> Any:
        section, name = key.split(".")
        return config[section][name]

    return sorted(
        key for key in _keys(path) & _set_by_parents(path) if value(mine, key) == value(parent, key)
    )


def test_the_recipes_are_found() -> None:
    names = {p.relative_to(CONFIGS).as_posix() for p in RECIPES}
    assert {"base-plus/stage14.yaml", "fast/stage4.yaml", "3ddfa-v2-plus/stage1.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_recipe_loads_and_is_runnable(path: Path) -> None:
    cfg = TrainConfig.load(path)
    cfg.check()
    assert cfg.resolved().optim == cfg.optim, "a recipe sets its own lr and warm-up"
    for name in [*cfg.data.real_roots, cfg.data.synthetic or ""]:
        if name.startswith("configs/"):  # relative to the repository root, like every path
            assert (ROOT / name).is_file(), name


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_recipe_holds_only_its_changes(path: Path) -> None:
    assert _bases(path), "a recipe starts from configs/_base/ or the stage it continues"
    assert redundant_keys(path) == [], "these keys repeat what the base: recipes already say"


def test_a_repeated_value_is_found(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("train:\n  steps: 400\n  seed: 1\n")
    (tmp_path / "two.yaml").write_text(
        "base: [one.yaml]\ntrain:\n  steps: 400\n  seed: 2\n  val_limit: 200\n"
    )
    # train.val_limit: the default, set by no parent: stated, not repeated
    assert redundant_keys(tmp_path / "two.yaml") == ["train.steps"]
