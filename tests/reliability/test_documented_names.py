"""Every ``mvface.<module>.<name>`` that a docstring, comment or help text names exists: a user
who types what the help says gets the function, not an AttributeError."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import mvface

_SRC = Path(mvface.__file__).parent
_DOTTED = re.compile(r"\bmvface(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for i, part in enumerate(parts[k:], start=k):
            if not hasattr(obj, part):
                # ``mvface.data.image.py`` style file names: the module itself is meant
                return i == len(parts) - 1 and part == "py"
            obj = getattr(obj, part)
        return True
    return False


def test_every_dotted_mvface_name_in_the_sources_exists() -> None:
    missing: dict[str, str] = {}
    for path in sorted(_SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for dotted in _DOTTED.findall(line):
                if not _resolves(dotted):
                    missing.setdefault(dotted, f"{path.relative_to(_SRC.parent)}:{number}")
    assert not missing, missing


def test_the_names_the_help_texts_give_exist() -> None:
    assert mvface.list_models() == importlib.import_module("mvface.models").list_models()
    assert "fast" in mvface.list_models()
    assert importlib.import_module("mvface.data").FaceSample.__name__ == "FaceSample"
