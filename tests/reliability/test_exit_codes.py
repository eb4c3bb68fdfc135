"""Every command's usage contract: ``--help`` works everywhere; an option value outside its fixed
set or range is a usage error (exit 2) with one ``error:`` line naming the option and no
traceback; expected failures name the file or the flag to change, and exit 1 or 3."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner, Result

from mvface.cli._common import EXIT_NOT_AVAILABLE, EXIT_SOME_FAILED, EXIT_USAGE, handle_errors
from mvface.cli.main import app
from mvface.errors import NotAvailableError

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def commands() -> Iterator[list[str]]:
    """The words of every command and subcommand (``["synth", "preview"]``...)."""

    def walk(command: Any, words: list[str]) -> Iterator[list[str]]:
        yield words
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*words, name])

    yield from walk(typer.main.get_command(app), [])


def error_lines(result: Result) -> list[str]:
    return [ln for ln in result.output.splitlines() if re.match(r"\s*error:", ln, re.I)]


@pytest.mark.parametrize("words", list(commands()), ids=lambda w: " ".join(w) or "mvface")
def test_help_of_every_command(words: list[str]) -> None:
    result = invoke(*words, "--help")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "<bool>" not in result.output  # flags take no value


#: Placeholders for a missing input and an output folder under the test's tmp_path (a value
#: that is wrongly accepted must not make a command write outside it).
_OUT = "{tmp}/out"
_IN = "{tmp}/missing"
_EVAL = ["eval", "--dataset", "300w", "--root", _IN, "--model", "base", "--out", _OUT]

#: (command words + valid required options, bad option, bad value)
BAD_VALUES: list[Any] = [
    (["detect", "x.png", "--out", _OUT], "--model", "nope"),
    (["detect", "x.png", "--out", _OUT], "--detector", "nope"),
    (["detect", "x.png", "--out", _OUT], "--format", "xml"),
    (["detect", "x.png", "--out", _OUT], "--smooth", "1.5"),
    (["detect", "x.png", "--out", _OUT], "--smooth", "1"),
    (["detect", "x.png", "--out", _OUT], "--min-score", "-1"),
    (["detect", "x.png", "--out", _OUT], "--every", "0"),
    (["compare", "--input", _IN, "--output", "f.png"], "--models", "nope"),
    (["compare", "--input", _IN, "--output", "f.png", "--models", "base"], "--detector", "nope"),
    (["compare", "--input", _IN, "--output", "f.png", "--models", "base"], "--gt-format", "nope"),
    (["compare", "--input", _IN, "--output", "f.png", "--models", "base"], "--cell-size", "1"),
    (["compare", "--input", _IN, "--output", "f.png", "--models", "base"], "--limit", "0"),
    (["demo", "--output", _OUT], "--models", "nope"),
    (["demo", "--output", _OUT], "--detector", "nope"),
    (["demo", "--output", _OUT], "--gt-format", "nope"),
    (["demo", "--output", _OUT], "--views", "65"),
    (["demo", "--output", _OUT], "--max-yaw", "91"),
    (["eval", "--root", _IN, "--model", "base", "--out", _OUT], "--dataset", "nope"),
    (["eval", "--dataset", "300w", "--root", _IN, "--out", _OUT], "--model", "nope"),
    (
        ["eval", "--dataset", "300w", "--root", _IN, "--model", "base", "--out", _OUT],
        "--crop",
        "nope",
    ),
    (
        ["eval", "--dataset", "300w", "--root", _IN, "--model", "base", "--out", _OUT],
        "--detector",
        "nope",
    ),
    (
        ["eval", "--dataset", "300w", "--root", _IN, "--model", "base", "--out", _OUT],
        "--limit",
        "0",
    ),
    (["eval-synthetic", "--root", _IN, "--out", _OUT], "--model", "nope"),
    (["eval-synthetic", "--root", _IN, "--model", "base", "--out", _OUT], "--views", "1"),
    (["export", "onnx", "--out", "m.onnx"], "--model", "nope"),
    (["train", "--data", _IN, "--out", _OUT], "--data-format", "nope"),
    (["train", "--data", _IN, "--out", _OUT], "--model", "nope"),
    (["train", "--data", _IN, "--out", _OUT], "--steps", "0"),
    (["finetune", "--synthetic", _IN, "--out", _OUT], "--model", "nope"),
    (["synth", "--source", _IN, "--out", _OUT], "--rig", "nope"),
    (["synth", "--source", _IN, "--out", _OUT], "--format", "nope"),
    (["synth", "--source", _IN, "--out", _OUT], "--backend", "nope"),
    (["synth", "--source", _IN, "--out", _OUT], "--executor", "nope"),
    (["synth", "--source", _IN, "--out", _OUT], "--workers", "0"),
    (["synth", "--source", _IN, "--out", _OUT], "--quality", "101"),
    (["synth", "preview", _IN], "--views", "0"),
    (["bench", "inference"], "--model", "nope"),
    (["bench", "inference"], "--threads", "0"),
    (["bench", "inference"], "--engine", "nope"),
    (["bench", "inference", "--detector", "blazeface"], "--detector", "nope"),
    (["export", "onnx", "--model", "base", "--out", "{tmp}/m.onnx"], "--opset", "0"),
    (["synth", "--source", _IN, "--out", _OUT], "--landmark-model", "nope"),
    (["synth", "--source", _IN, "--out", _OUT], "--jaw-from", "nope"),
    (["synth", "--source", _IN, "--out", _OUT], "--image-format", "nope"),
    (["eval-synthetic", "--root", _IN, "--model", "base", "--out", _OUT], "--limit", "0"),
    (["bench", "accuracy"], "--model", "nope"),
]


def _case_id(case: Any) -> str:
    words, option, value = case.values if hasattr(case, "values") else case
    command = [w for w in words[:2] if not w.startswith(("-", "{", "x.png"))]
    return f"{' '.join(command)} {option} {value}"


@pytest.mark.parametrize(("words", "option", "value"), BAD_VALUES, ids=map(_case_id, BAD_VALUES))
def test_a_bad_option_value_is_a_usage_error(
    words: list[str], option: str, value: str, tmp_path: Path
) -> None:
    result = invoke(*(w.format(tmp=tmp_path) for w in words), option, value)
    assert "Traceback" not in result.output
    assert result.exit_code == EXIT_USAGE, result.output
    lines = error_lines(result)
    assert len(lines) == 1, result.output
    assert option in lines[0] or value in lines[0], lines[0]


def test_bad_dlib_weights_are_one_line_naming_the_file(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    bad = tmp_path / "predictor.dat"
    bad.write_bytes(b"\x00not a dlib model" * 10)
    image = tmp_path / "x.png"
    for weights in (bad, tmp_path):  # garbage, and a folder
        result = invoke("detect", str(image), "--out", str(tmp_path / "o"), "--model", "dlib",
                        "--weights", str(weights))  # fmt: skip
        assert result.exit_code == EXIT_SOME_FAILED, result.output
        assert "Traceback" not in result.output
        lines = error_lines(result)
        assert len(lines) == 1 and str(weights) in lines[0], result.output


def test_a_missing_ray_cluster_names_mvface_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from mvface.synth import ray_executor

    class NoCluster:
        @staticmethod
        def is_initialized() -> bool:
            return False

        @staticmethod
        def init(**kwargs: Any) -> None:
            raise ConnectionError(
                "Could not find any running Ray instance. Please specify the one to connect to "
                "by setting `--address` flag or `RAY_ADDRESS` environment variable."
            )

    monkeypatch.setattr(ray_executor, "_import_ray", lambda: NoCluster)
    monkeypatch.setitem(__import__("sys").modules, "ray.util", type("m", (), {"ActorPool": 0}))
    with pytest.raises(NotAvailableError) as caught:
        events = ray_executor.ray_events(
            [], object(), np.zeros((1, 25)), "auto", worker_init=print, worker_run=print
        )
        next(iter(events))
    message = str(caught.value)
    assert "--ray-address" in message and "ray start --head" in message
    assert "`--address`" not in message


def test_connection_errors_are_not_reported_as_output_errors() -> None:
    @handle_errors
    def command() -> None:
        raise ConnectionError("refused")

    app_ = typer.Typer()
    app_.command()(command)
    result = CliRunner().invoke(app_, [])
    assert result.exit_code == EXIT_NOT_AVAILABLE
    assert "output" not in result.output and "cannot connect: refused" in result.output


def test_eval_summary_on_stdout_and_skipped_items_on_stderr(tmp_path: Path) -> None:
    from PIL import Image
    from test_bad_inputs import GOOD_PTS

    from mvface.data.readers.pts import write_pts

    root = tmp_path / "300w"
    root.mkdir()
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(root / "good.png")
    write_pts(root / "good.pts", GOOD_PTS + 20)
    (root / "lonely.png").write_bytes(b"")
    args = ["eval", "--dataset", "300w", "--root", str(root), "--model", "mediapipe-68"]
    result = invoke(*args, "--out", str(tmp_path / "report"), "--quiet")
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert "1 faces scored, 1 skipped" in result.stdout
    assert "lonely.png" not in result.stdout
    assert len([ln for ln in result.stderr.splitlines() if "lonely.png" in ln]) == 1


@pytest.mark.parametrize(
    "words",
    [
        ["detect"],
        ["eval"],
        ["eval-synthetic"],
        ["export", "onnx"],
        ["demo"],
        ["compare"],
        ["train"],
        ["finetune"],
    ],
    ids=" ".join,
)
def test_model_options_list_the_model_names(words: list[str]) -> None:
    command: Any = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]
    options = [p for p in command.params if {"--model", "--models"} & set(getattr(p, "opts", []))]
    assert options
    for param in options:
        help_text = " ".join((param.help or "").split())
        for name in ("base", "base+", "fast", "dlib", "mediapipe-68"):
            assert re.search(rf"(^|[\s,]){re.escape(name)}([\s,.]|$)", help_text), help_text


def test_progress_bars_draw_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rich.progress
    from PIL import Image
    from test_bad_inputs import GOOD_PTS

    from mvface.data.readers.pts import write_pts

    on_stderr: list[bool] = []
    init = rich.progress.Progress.__init__

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        on_stderr.append(self.live.console.stderr)

    monkeypatch.setattr(rich.progress.Progress, "__init__", recording_init)
    root = tmp_path / "300w"
    root.mkdir()
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(root / "good.png")
    write_pts(root / "good.pts", GOOD_PTS + 20)
    args = ["--root", str(root), "--model", "mediapipe-68", "--out", str(tmp_path / "r")]
    assert invoke("eval", "--dataset", "300w", *args).exit_code == 0
    detect = ["detect", str(root / "good.png"), "--out", str(tmp_path / "d")]
    assert invoke(*detect, "--model", "mediapipe-68").exit_code == 0
    assert len(on_stderr) >= 2 and all(on_stderr), on_stderr
