from pathlib import Path

import pytest
from typer.testing import CliRunner

from mvface.bench import scripts
from mvface.cli.main import app

runner = CliRunner()


def test_bench_lists_its_benchmarks() -> None:
    result = runner.invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    for name in ("inference", "accuracy", "synth", "train"):
        assert name in result.output


def test_missing_script_is_one_line_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scripts, "benchmark_script_dirs", lambda: [tmp_path])
    result = runner.invoke(app, ["bench", "synth"])
    assert result.exit_code == 3
    assert "bench_synth.py not found" in result.output
    assert "Traceback" not in result.output


def test_script_benchmarks_get_the_markdown_file(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, list[str]]] = []

    def fake(name: str, args: list[str]) -> int:
        seen.append((name, list(args)))
        return 0

    monkeypatch.setattr(scripts, "run_benchmark_script", fake)
    assert runner.invoke(app, ["bench", "train", "--repeats", "3"]).exit_code == 0
    assert runner.invoke(app, ["bench", "synth", "--no-markdown", "--skip-realism"]).exit_code == 0
    assert seen == [
        ("train", ["--repeats", "3", "--markdown", "BENCHMARKS.md"]),
        ("synth", ["--skip-realism"]),
    ]


def test_the_real_scripts_are_found() -> None:
    for name in ("synth", "train", "inference", "accuracy"):
        assert scripts.find_benchmark_script(name).name == f"bench_{name}.py"


def test_inference_appends_a_table(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    md = tmp_path / "B.md"
    args = ["bench", "inference", "--model", "mvnet", "--threads", "1", "--repeats", "3"]
    args += ["--warmup", "0", "--batch", "2", "--batch-repeats", "1", "--no-detectors"]
    args += ["--faces", str(tmp_path / "none"), "--markdown", str(md)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = md.read_text()
    assert "## Inference speed" in text and "| mvnet | torch | 1 |" in text
    assert "--repeats 3" in text  # the command that reproduces the run
