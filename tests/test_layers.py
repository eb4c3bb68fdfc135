"""mvface's layers hold: no import runs upward and no modules import each other in a cycle.

The layers are stated in ``tools/check_layers.py`` (``LAYERS``, lowest first); the checker reads
every ``import`` statement of ``src/mvface`` with :mod:`ast`, those inside functions and under
``TYPE_CHECKING`` included. The tests below plant each kind of violation in a small fake tree to
show that the checker finds it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from _scripts import load_tool

check_layers = load_tool("check_layers")

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_layers_hold() -> None:
    problems = check_layers.check(SRC)
    assert not problems, "\n".join(problems)


def test_every_layer_entry_exists() -> None:
    """A stale name in ``LAYERS`` (a package renamed or removed) is a mistake in the table."""
    present = {check_layers.package_of(m) for m in check_layers.module_files(SRC)}
    stated = {package for layer in check_layers.LAYERS for package in layer}
    assert stated - present == set()


def test_the_checker_sees_all_import_kinds() -> None:
    """The real tree's imports include lazy ones, so they are read and checked too."""
    kinds = {imp.kind for imp in check_layers.all_imports(SRC)}
    assert {"module", "function", "type-checking"} <= kinds


# -- a fake tree with planted violations -----------------------------------------------------

#: A fake ``mvface`` that keeps the layers: geometry < data < models < eval < synth < cli.
CLEAN = {
    "__init__.py": "def __getattr__(name):\n    from mvface.models import net\n    return net\n",
    "errors.py": "",
    "geometry/__init__.py": "",
    "geometry/cameras.py": "from mvface.errors import *\n",
    "data/__init__.py": "from mvface.data import record\n",
    "data/record.py": "from mvface.geometry.cameras import *\n",
    "models/__init__.py": "",
    "models/net.py": "from ..data import record\n",
    "eval/__init__.py": "",
    "eval/metrics.py": "import mvface.models.net\n",
    "api.py": "from mvface.models import net\n",
    "synth/__init__.py": "",
    "synth/rig.py": "from mvface.geometry import cameras\n",
    "synth/pipeline.py": "from mvface.synth.rig import *\nfrom mvface.eval.metrics import *\n",
    "cli/main.py": "from mvface.cli import other\nfrom mvface.synth import pipeline\n",
    "cli/other.py": "",
}


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "mvface" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert check_layers.check(_tree(tmp_path, CLEAN)) == []
    assert check_layers.main([str(tmp_path)]) == 0


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param(
            "models/net.py",
            "from mvface.eval.metrics import nme\n",
            r"mvface.models.net imports mvface.eval.metrics (module): upward",
            id="module-level",
        ),
        pytest.param(
            "eval/metrics.py",
            "def yaw():\n    from mvface.synth.rig import yaw\n    return yaw\n",
            r"mvface.eval.metrics imports mvface.synth.rig (function): upward",
            id="inside-a-function",
        ),
        pytest.param(
            "data/record.py",
            "import typing\nif typing.TYPE_CHECKING:\n    from mvface.models import net\n",
            r"mvface.data.record imports mvface.models.net (type-checking): upward",
            id="type-checking",
        ),
        pytest.param(
            "geometry/cameras.py",
            "from ..data.record import x\n",
            r"mvface.geometry.cameras imports mvface.data.record (module): upward",
            id="relative",
        ),
        pytest.param(
            "geometry/cameras.py",
            "import mvface\n",
            r"mvface.geometry.cameras imports mvface (module): upward",
            id="the-facade",
        ),
        pytest.param(
            "eval/metrics.py",
            "from mvface import api\n",
            r"mvface.eval.metrics imports mvface.api (module): eval and api share layer",
            id="same-layer",
        ),
        pytest.param(
            "gadgets/__init__.py",
            "",
            r"mvface.gadgets is in no layer",
            id="unlisted-package",
        ),
    ],
)
def test_a_planted_violation_is_found(
    tmp_path: Path, name: str, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _tree(tmp_path, {**CLEAN, name: text})
    problems = check_layers.check(src)
    assert any(expected in line for line in problems), problems
    assert check_layers.main([str(src)]) == 1
    assert expected in capsys.readouterr().out


def test_a_planted_cycle_is_found(tmp_path: Path) -> None:
    """Two modules of one package importing each other (one of them lazily) are a cycle."""
    src = _tree(
        tmp_path,
        {**CLEAN, "synth/rig.py": "def views():\n    from mvface.synth import pipeline\n"},
    )
    assert check_layers.check(src) == [
        "import cycle: mvface.synth.pipeline → mvface.synth.rig (pipeline.py:1); "
        "mvface.synth.rig → mvface.synth.pipeline (rig.py:2)"
    ]
