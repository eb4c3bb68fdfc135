"""--engine and --device on every inference command: listed, checked, cuda needs a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mvface.cli.main import app

COMMANDS = ("detect", "eval", "demo", "compare")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_inference_command_takes_engine_and_device(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--engine" in result.output and "--device" in result.output


@pytest.mark.parametrize("command", ["demo", "compare"])
def test_an_unknown_engine_is_a_usage_error(command: str, tmp_path: Path) -> None:
    args = [command, "--engine", "tensorrt", "--output", str(tmp_path / "o.png")]
    if command == "compare":
        args += ["--models", "fast", "--input", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "unknown engine" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_eval_on_cuda_without_a_gpu_exits_3(tmp_path: Path) -> None:
    args = ["eval", "--dataset", "300w", "--root", str(tmp_path), "--model", "fast"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o"), "--device", "cuda"])
    assert result.exit_code == 3, result.output
    assert "no CUDA GPU" in result.output
