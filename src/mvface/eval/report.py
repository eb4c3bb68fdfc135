"""Evaluation reports: one folder per run with metrics, per-image scores, predictions and a plot.

:func:`write_report` writes, each file atomically (a temporary file in the same folder, then
:func:`os.replace`, so a reader never sees a half-written file):

* ``metrics.json``: dataset, model, ``n``, ``nme_mean``, ``nme_balanced``, ``nme_bins`` and
  ``bin_counts`` (only for yaw-binned protocols), ``auc``, ``failure_rate``, ``threshold``,
  ``extra``, ``protocol`` (every choice behind the numbers) and the run's ``extras``;
* ``per_image.csv``: ``name, nme_percent`` (+ ``yaw_deg, yaw_bin`` when binned);
* ``predictions.npy``: ``(N, 68, 2|3)`` float64 predictions, 0-based pixels, protocol order;
* ``ced.png``: the cumulative error distribution with the AUC in the legend.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from mvface._io import atomic_path, atomic_write_bytes, json_ready
from mvface.errors import BadInputError
from mvface.eval.metrics import to_numpy
from mvface.eval.plots import plot_ced
from mvface.eval.protocols import YAW_BINS, ProtocolResult, yaw_bin_index

__all__ = [
    "REPORT_FILES",
    "EvalReport",
    "format_table",
    "json_text",
    "render_table",
    "write_report",
]

#: Files :func:`write_report` creates in its output folder.
REPORT_FILES: tuple[str, ...] = ("metrics.json", "per_image.csv", "predictions.npy", "ced.png")


@dataclass
class EvalReport:
    """Everything one evaluation run produced.

    Attributes:
        dataset: dataset name as shown to people (e.g. ``"AFLW2000-3D dev (1000)"``).
        model: model name or checkpoint.
        result: the protocol scores (per-image NME in percent, bins, AUC, choices).
        names: ``N`` image names in protocol order.
        predictions: ``(N, 68, 2|3)`` predictions, 0-based pixels, protocol order.
        extras: anything else worth keeping (timing in seconds, device, crop source, the
            multiview consistency error in percent, ...); JSON-serializable values.
    """

    dataset: str
    model: str
    result: ProtocolResult
    names: Sequence[str]
    predictions: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.predictions = to_numpy(self.predictions)
        self.names = [str(n) for n in self.names]
        n = self.result.n
        if len(self.names) != n:
            raise BadInputError("report", f"{len(self.names)} names for {n} scored images")
        if self.predictions.ndim != 3 or self.predictions.shape[0] != n:
            raise BadInputError(
                "report",
                f"predictions must have shape ({n}, 68, 2|3), got {self.predictions.shape}",
            )

    @property
    def n(self) -> int:
        """Number of images scored."""
        return self.result.n

    def metrics(self) -> dict[str, Any]:
        """The content of ``metrics.json`` (JSON-ready; NaN becomes ``null``)."""
        res = self.result.to_dict()
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "model": self.model,
            "n": self.n,
            "protocol_name": res["protocol_name"],
            "nme_mean": res["nme_mean"],
            "nme_balanced": res["nme_balanced"],
        }
        if res["nme_bins"] is not None:
            out["nme_bins"] = res["nme_bins"]
            out["bin_counts"] = res["bin_counts"]
        out.update(
            {
                "auc": res["auc"],
                "failure_rate": res["failure_rate"],
                "threshold": res["threshold"],
                "extra": res["extra"],
                "protocol": res["protocol"],
                "extras": self.extras,
            }
        )
        return out


def json_text(obj: Any) -> str:
    """``obj`` as strict JSON text (indented, ending in a newline) for a report file.

    NaN and infinities (an empty yaw bin, an undefined mean) become ``null``, numpy scalars and
    arrays become numbers and lists, paths become strings; ``allow_nan=False`` guarantees the
    text never holds the ``NaN`` / ``Infinity`` tokens that strict JSON parsers reject.
    """
    return json.dumps(json_ready(obj), indent=2, allow_nan=False) + "\n"


def _per_image_csv(report: EvalReport) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    yaw = report.result.yaw_deg
    if yaw is None:
        writer.writerow(["name", "nme_percent"])
        for name, v in zip(report.names, report.result.per_image.tolist(), strict=True):
            writer.writerow([name, f"{v:.6f}"])
    else:
        bins = yaw_bin_index(yaw)
        writer.writerow(["name", "nme_percent", "yaw_deg", "yaw_bin"])
        rows = zip(report.names, report.result.per_image.tolist(), yaw.tolist(), bins, strict=True)
        for name, v, y, b in rows:
            writer.writerow([name, f"{v:.6f}", f"{y:.4f}", YAW_BINS[int(b)][0]])
    return buf.getvalue()


def write_report(
    report: EvalReport,
    out_dir: str | Path,
    ced_max_threshold: float | None = None,
) -> dict[str, Path]:
    """Write the report files into ``out_dir`` (created if needed), each one atomically.

    Args:
        report: the evaluation run.
        out_dir: output folder; existing report files there are replaced.
        ced_max_threshold: x-axis end of ``ced.png`` in percent (default: the larger of 10
            and twice the protocol threshold).

    Returns:
        File name -> path written, for every name in :data:`REPORT_FILES`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in REPORT_FILES}
    atomic_write_bytes(paths["metrics.json"], json_text(report.metrics()).encode("utf-8"))
    atomic_write_bytes(paths["per_image.csv"], _per_image_csv(report).encode("utf-8"))
    buf = io.BytesIO()
    np.save(buf, report.predictions.astype(np.float64), allow_pickle=False)
    atomic_write_bytes(paths["predictions.npy"], buf.getvalue())
    res = report.result
    max_t = ced_max_threshold if ced_max_threshold is not None else max(10.0, 2 * res.threshold)
    title = f"{res.protocol.get('name', res.name)}: {report.dataset}\nNME: {_normalizer_short(res)}"
    with atomic_path(paths["ced.png"]) as tmp:
        plot_ced(
            {report.model: res.per_image},
            tmp,
            max_threshold=max_t,
            auc_threshold=res.threshold,
            title=title,
        )
    return paths


def _normalizer_short(res: ProtocolResult) -> str:
    if res.name == "aflw2000-3d":
        return "2D, / sqrt(w*h) of GT 68-pt box"
    if res.name == "300w":
        return "2D, / outer-eye-corner distance"
    return str(res.protocol.get("normalizer", "see metrics.json"))


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def format_table(report: EvalReport) -> Table:
    """A rich table of the headline numbers; title and caption state every protocol choice.

    Args:
        report: the evaluation run.

    Returns:
        A :class:`rich.table.Table` with one row per score (NME in percent, AUC as a
        fraction, failure rate in percent) and the run's scalar ``extras``.
    """
    res = report.result
    title = (
        f"{res.protocol.get('name', res.name)} — {report.model} on {report.dataset} (N={report.n})"
    )
    caption = "\n".join(f"{k}: {v}" for k, v in res.protocol.items() if k != "name")
    table = Table(title=title, caption=caption, caption_justify="left", min_width=80)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("images", justify="right")
    if res.nme_bins is not None:
        counts = res.bin_counts or {}
        for name, value in res.nme_bins.items():
            table.add_row(f"NME |yaw| {name}° (%)", _fmt(value), str(counts.get(name, "")))
        table.add_row("NME balanced (mean of bins) (%)", _fmt(res.nme_balanced), str(res.n))
    table.add_row("NME mean over images (%)", _fmt(res.nme_mean), str(res.n))
    table.add_row(f"AUC@{res.threshold:g}%", _fmt(res.auc, 4), str(res.n))
    table.add_row(f"failure rate @{res.threshold:g}% (%)", _fmt(100 * res.failure_rate), "")
    for key, value in res.extra.items():
        if key.startswith("failure_rate"):
            table.add_row(f"failure rate @{key.split('@', 1)[-1]} (%)", _fmt(100 * value), "")
        else:
            table.add_row(key.replace("auc", "AUC"), _fmt(value, 4), "")
    for key, value in report.extras.items():
        if isinstance(value, int | float | np.number) and not isinstance(value, bool):
            table.add_row(key, _fmt(float(value)), "")
        elif isinstance(value, str):
            table.add_row(key, value, "")
    return table


def render_table(report: EvalReport, width: int = 100) -> str:
    """:func:`format_table` as plain text (no colour codes), e.g. for logs and READMEs."""
    console = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, record=True
    )
    console.print(format_table(report))
    return console.export_text()
