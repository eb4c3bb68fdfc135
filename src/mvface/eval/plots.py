"""Evaluation plots: cumulative error distribution (CED) and NME per yaw bin.

Figures are drawn on matplotlib's Agg canvas directly (no ``pyplot``, no display, no change of
the global backend), so they work on headless machines and inside other applications.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mvface.errors import BadInputError
from mvface.eval.metrics import auc, ced_curve, to_numpy

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mvface.eval.protocols import ProtocolResult

__all__ = ["plot_ced", "plot_nme_by_yaw"]


def _figure() -> Figure:
    """A new figure; matplotlib is imported here, not with the package (0.5 s of every
    ``mvface`` start-up, which most commands never need)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(6.4, 4.8))


def _save(fig: Figure, out_path: str | Path, dpi: int) -> Path:
    path = Path(out_path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches an Agg canvas to the figure
    fig.savefig(path, dpi=dpi, format="png")
    return path


def plot_ced(
    curves: Mapping[str, Any],
    out_path: str | Path,
    max_threshold: float = 10.0,
    auc_threshold: float | None = None,
    title: str = "Cumulative error distribution",
    xlabel: str = "NME (%)",
    dpi: int = 120,
) -> Path:
    """Plot one CED curve per method, with its AUC in the legend, to a PNG file.

    Args:
        curves: method name -> ``(N,)`` per-image errors in **percent**.
        out_path: PNG file to write (its folder must exist).
        max_threshold: right end of the x axis, in percent.
        auc_threshold: threshold of the AUC shown in the legend (percent); defaults to
            ``max_threshold``. A dotted line marks it when it is inside the axis.
        title: figure title (state the protocol here).
        xlabel: x-axis label.
        dpi: resolution of the PNG.

    Returns:
        The path written.

    Raises:
        BadInputError: no curves, or a curve with empty / negative / NaN errors.
    """
    if not curves:
        raise BadInputError("curves", "nothing to plot (no methods given)")
    t_auc = float(max_threshold if auc_threshold is None else auc_threshold)
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for name, errors in curves.items():
        e = to_numpy(errors).reshape(-1)
        x, frac = ced_curve(e, max_threshold, num=1000)
        area = auc(e, t_auc)
        ax.plot(x, 100.0 * frac, lw=2, label=f"{name}  (AUC@{t_auc:g}% = {area:.4f}, N={e.size})")
    if t_auc < max_threshold:
        ax.axvline(t_auc, color="0.5", ls=":", lw=1)
    ax.set_xlim(0.0, max_threshold)
    ax.set_ylim(0.0, 100.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Images (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return _save(fig, out_path, dpi)


def plot_nme_by_yaw(
    results: Mapping[str, ProtocolResult],
    out_path: str | Path,
    title: str = "NME by |yaw| (AFLW2000-3D protocol)",
    dpi: int = 120,
) -> Path:
    """Grouped bar chart of the NME (percent) per yaw bin, plus the balanced mean, per method.

    Args:
        results: method name -> a yaw-binned :class:`~mvface.eval.protocols.ProtocolResult`.
        out_path: PNG file to write (its folder must exist).
        title: figure title.
        dpi: resolution of the PNG.

    Returns:
        The path written.

    Raises:
        BadInputError: no results, or a result without yaw bins.
    """
    if not results:
        raise BadInputError("results", "nothing to plot (no methods given)")
    bin_names: list[str] = []
    for name, res in results.items():
        if res.nme_bins is None:
            raise BadInputError(name, f"protocol {res.name!r} has no yaw bins")
        bin_names += [b for b in res.nme_bins if b not in bin_names]
    groups = [*bin_names, "balanced"]
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    pos = np.arange(len(groups), dtype=np.float64)
    width = 0.8 / len(results)
    for i, (name, res) in enumerate(results.items()):
        bins = res.nme_bins or {}
        values = [bins.get(g, np.nan) for g in groups[:-1]] + [
            np.nan if res.nme_balanced is None else res.nme_balanced
        ]
        heights = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
        bars = ax.bar(pos + (i - (len(results) - 1) / 2) * width, heights, width, label=name)
        labels = ["n/a" if not np.isfinite(v) else f"{v:.2f}" for v in values]
        ax.bar_label(bars, labels=labels, fontsize="x-small", padding=2)
    counts = next(iter(results.values())).bin_counts or {}
    ax.set_xticks(pos)
    ax.set_xticklabels(
        [f"{g}°\n(n={counts[g]})" if g in counts else "balanced\n(mean of bins)" for g in groups]
    )
    ax.set_ylabel("NME (%)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    ax.margins(y=0.15)
    fig.tight_layout()
    return _save(fig, out_path, dpi)
