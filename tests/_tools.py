"""Load a script of ``tools/`` as a module, for the tests that use its functions.

Usage::

    from _tools import load_tool

    convert_blazeface = load_tool("convert_blazeface")
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

#: The repository's ``tools`` folder (scripts, not a package).
TOOLS: Path = Path(__file__).resolve().parents[1] / "tools"


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` imported afresh as the module ``name``.

    ``tools`` goes on ``sys.path`` first, as ``python tools/<name>.py`` puts it there, so that
    a script's imports of its neighbours (``from tflite_reader import read_tflite``) resolve.
    """
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
