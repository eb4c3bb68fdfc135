"""mvface.bench.results: one JSON file per run, the summary page generated from them."""

import json
import math
import threading
from pathlib import Path

import pytest

from mvface.bench.results import (
    SCHEMA,
    SUMMARY_COMMAND,
    BenchResult,
    ResultTable,
    latest_runs,
    load_results,
    read_result,
    record_run,
    summary_markdown,
    write_result,
    write_summary,
)
from mvface.errors import BadInputError

REPO = Path(__file__).resolve().parents[2]


def _run(
    kind: str, utc: str, value: float, cpu: str = "Some CPU", variant: str = ""
) -> BenchResult:
    table = ResultTable(
        "Speed of two models.",
        ["model", "ms/face", "÷ peer"],
        [["ours", value, value / 4.0], ["peer", 4.0, 1.0]],
        digits={"ms/face": 3},
    )
    return BenchResult(
        kind=kind,
        title=kind.capitalize(),
        command=f"mvface bench {kind} --repeats 3",
        machine={"cpu": cpu, "cpus": 2, "thread_env": {"OMP_NUM_THREADS": "1"}},
        tables=[table],
        arguments={"repeats": 3, "faces": Path("/x")},
        variant=variant,
        utc=utc,
        goals=[{"goal": "ours <= peer", "measured": f"{value}", "met": value <= 4.0}],
        notes=["a note"],
    )


class TestResultFile:
    def test_round_trip_is_strict_json_with_nan_as_null(self, tmp_path: Path) -> None:
        run = _run("inference", "2026-01-02T03:04:05Z", float("nan"))
        path = write_result(run, tmp_path)
        assert path == tmp_path / "inference" / "2026-01-02T03-04-05Z.json"
        assert '["peer", 4.0, 1.0]' in path.read_text()  # one line per row
        data = json.loads(path.read_text())  # strict: json.loads would accept NaN, so check
        assert "NaN" not in path.read_text() and data["schema"] == SCHEMA
        assert data["tables"][0]["rows"][0] == ["ours", None, None]
        assert data["arguments"] == {"repeats": 3, "faces": "/x"}
        back = read_result(path)
        assert back.machine == run.machine and back.goals[0]["met"] is False
        assert back.tables[0].rows[1] == ["peer", 4.0, 1.0]

    def test_same_second_never_overwrites(self, tmp_path: Path) -> None:
        run = _run("inference", "2026-01-02T03:04:05Z", 1.0)
        threads = [threading.Thread(target=write_result, args=(run, tmp_path)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        names = sorted(p.name for p in (tmp_path / "inference").iterdir())
        assert len(names) == 6 and "2026-01-02T03-04-05Z-6.json" in names
        assert not [n for n in names if not n.endswith(".json")]  # no temporary files left

    def test_ragged_table_is_refused(self) -> None:
        with pytest.raises(ValueError, match="row has 1 cells"):
            ResultTable("t", ["a", "b"], [[1]])

    @pytest.mark.parametrize(
        "text",
        [
            "{",
            '{"schema": "other"}',
            json.dumps({"schema": SCHEMA, "kind": "x"}),
            json.dumps(
                {
                    **BenchResult("k", "t", "c", {}, []).to_dict(),
                    "tables": [{"name": None, "columns": [], "rows": []}],
                }
            ),
        ],
    )
    def test_bad_files_are_one_line_errors(self, tmp_path: Path, text: str) -> None:
        path = tmp_path / "bad.json"
        path.write_text(text)
        with pytest.raises(BadInputError, match=r"bad\.json: "):
            read_result(path)


class TestSummary:
    def test_latest_run_per_kind_machine_and_variant(self, tmp_path: Path) -> None:
        write_result(_run("inference", "2026-01-01T00:00:00Z", 5.0), tmp_path)
        write_result(_run("inference", "2026-01-02T00:00:00Z", 3.0), tmp_path)
        write_result(_run("inference", "2026-01-01T00:00:00Z", 7.0, cpu="Other CPU"), tmp_path)
        write_result(_run("train", "2026-01-01T00:00:00Z", 2.0, variant="a"), tmp_path)
        write_result(_run("train", "2026-01-01T00:00:00Z", 6.0, variant="b"), tmp_path)
        results, skipped = load_results(tmp_path)
        assert len(results) == 5 and skipped == []
        latest = latest_runs(results)
        assert set(latest) == {
            ("inference", "Some CPU, 2 CPUs", ""),
            ("inference", "Other CPU, 2 CPUs", ""),
            ("train", "Some CPU, 2 CPUs", "a"),
            ("train", "Some CPU, 2 CPUs", "b"),
        }
        assert latest[("inference", "Some CPU, 2 CPUs", "")][1].utc.startswith("2026-01-02")

    def test_page_from_files_built_here(self, tmp_path: Path) -> None:
        results = tmp_path / "results"
        write_result(_run("inference", "2026-01-01T00:00:00Z", 5.0), results)
        newest = write_result(_run("inference", "2026-01-02T00:00:00Z", 3.0), results)
        write_result(_run("accuracy", "2026-01-01T00:00:00Z", 1.0), results)
        (results / "accuracy" / "broken.json").write_text("not json")
        page = write_summary(results, tmp_path / "BENCHMARKS.md").read_text()
        assert f"Generated by `{SUMMARY_COMMAND}`" in page and "do not edit" in page
        assert page.index("## Accuracy") < page.index("## Inference")
        assert f"[{newest.name}](results/inference/{newest.name})" in page  # relative link
        assert "| ours | 3.000 | 0.75 |" in page and "| ours | 5.000 |" not in page
        assert "- Goals: ours <= peer: 3.0 — met" in page
        assert "broken.json: not JSON" in page  # listed, not fatal
        assert page == summary_markdown(results, link_base=tmp_path)  # deterministic

    def test_record_run_writes_file_and_regenerates_page(self, tmp_path: Path) -> None:
        path, page = record_run(_run("synth", "2026-01-01T00:00:00Z", 1.0), tmp_path / "res")
        assert path.parent == tmp_path / "res" / "synth"
        assert page == tmp_path / "BENCHMARKS.md" and path.name in page.read_text()

    def test_missing_values_print_as_na(self, tmp_path: Path) -> None:
        write_result(_run("inference", "2026-01-01T00:00:00Z", math.inf), tmp_path)
        assert "| ours | n/a | n/a |" in summary_markdown(tmp_path)


class TestRepositorySummary:
    """BENCHMARKS.md in the repository is the generator's output for results/, unedited."""

    def test_committed_page_matches_the_generator(self) -> None:
        page = REPO / "BENCHMARKS.md"
        expected = summary_markdown(REPO / "results", link_base=REPO)
        assert page.read_text(encoding="utf-8") == expected, (
            "BENCHMARKS.md differs from the results: run `mvface bench report` in the "
            "repository root instead of editing it"
        )

    def test_committed_page_is_short_and_every_result_file_reads(self) -> None:
        assert len((REPO / "BENCHMARKS.md").read_text().splitlines()) <= 200
        results, skipped = load_results(REPO / "results")
        assert skipped == [] and results
        assert {r.kind for _, r in results} >= {"inference", "accuracy", "synth", "train"}
