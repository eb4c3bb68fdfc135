from pathlib import Path

import pytest

from _shared import SHARED, requires_shared
from mvface.bench.accuracy import AccuracyConfig, accuracy_result, run_accuracy_bench
from mvface.bench.inference import ModelSpec
from mvface.errors import NotAvailableError


def test_no_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotAvailableError, match="no benchmark data found"):
        run_accuracy_bench(AccuracyConfig(shared=tmp_path, out=tmp_path / "out"))


@requires_shared("data/aflw2000_3d_dev")
@requires_shared("data/300w/helen_testset")
def test_small_run_writes_reports_plots_and_a_table(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    cfg = AccuracyConfig(
        models=[ModelSpec.named("dlib"), ModelSpec.named("mvnet")],
        shared=SHARED,
        out=tmp_path / "acc",
        limit=4,
    )
    result = run_accuracy_bench(cfg, log=lambda line: None)
    assert result.models == ["dlib"]
    assert "random initialization" in result.left_out["mvnet"]  # no weights: no accuracy
    assert [s.key for s in result.sets] == ["aflw2000-3d", "300w-helen"]
    for key in ("aflw2000-3d", "300w-helen"):
        assert result.results[("dlib", key)].n == 4
        assert (tmp_path / "acc" / f"dlib-{key}" / "metrics.json").is_file()
        assert result.plots[key].is_file() and result.plots[key].suffix == ".png"
    run = accuracy_result(result, "mvface bench accuracy --limit 4")
    table = run.tables[0]
    assert "AFLW balanced" in table.columns and "300-W HELEN NME" in table.columns
    assert [row[0] for row in table.rows] == ["dlib"]
    assert len(table.rows[0]) == len(table.columns)
    assert run.arguments["limit"] == 4
    assert any("ced-aflw2000-3d.png" in note for note in run.notes)
