import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mvface.bench import scripts
from mvface.bench.results import BenchResult, summary_markdown, write_result
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


def test_script_benchmarks_get_the_results_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, list[str]]] = []

    def fake(name: str, args: list[str]) -> int:
        seen.append((name, list(args)))
        return 0

    monkeypatch.setattr(scripts, "run_benchmark_script", fake)
    assert runner.invoke(app, ["bench", "train", "--repeats", "3"]).exit_code == 0
    assert runner.invoke(app, ["bench", "synth", "--no-results", "--skip-realism"]).exit_code == 0
    assert seen == [
        ("train", ["--repeats", "3", "--results", "results"]),
        ("synth", ["--skip-realism"]),
    ]


def test_the_real_scripts_are_found() -> None:
    for name in ("synth", "train", "inference", "accuracy"):
        assert scripts.find_benchmark_script(name).name == f"bench_{name}.py"


def test_inference_writes_a_result_file_and_the_summary(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    results = tmp_path / "results"
    args = ["bench", "inference", "--model", "mvnet", "--threads", "1", "--repeats", "3"]
    args += ["--warmup", "0", "--batch", "2", "--batch-repeats", "1", "--no-detectors"]
    args += ["--faces", str(tmp_path / "none"), "--results", str(results)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (path,) = (results / "inference").glob("*.json")
    data = json.loads(path.read_text())
    assert data["kind"] == "inference" and "--repeats 3" in data["command"]
    assert data["machine"]["cpus"] >= 1 and data["arguments"]["repeats"] == 3
    assert ["mvnet", "torch", 1] in [row[:3] for row in data["tables"][0]["rows"]]
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## Inference speed" in text and "| mvnet | torch | 1 |" in text
    assert f"(results/inference/{path.name})" in text  # the link to the run's file


def test_report_regenerates_the_summary_and_needs_results(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "report", "--results", str(tmp_path / "none")])
    assert result.exit_code == 3 and "no result files" in result.output
    write_result(
        BenchResult("train", "Training", "cmd", {"cpu": "C", "cpus": 2}, []), tmp_path / "r"
    )
    out = tmp_path / "page.md"
    args = ["bench", "report", "--results", str(tmp_path / "r"), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.read_text() == summary_markdown(tmp_path / "r", link_base=tmp_path)
