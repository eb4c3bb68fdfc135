"""Evaluation: metrics, benchmark protocols, multiview consistency, reports and plots.

Numbers here are fractions unless a name or docstring says percent: :mod:`~.metrics` returns
fractions of the normalizer; protocols (:mod:`~.protocols`) report NME in percent, AUC and
failure rate as fractions of 1.
"""

from __future__ import annotations

from mvface.eval.consistency import multiview_consistency_error, reprojection_distances
from mvface.eval.metrics import (
    DEFAULT_AUC_THRESHOLD,
    auc,
    bbox_normalizer,
    box_normalizer,
    ced_curve,
    failure_rate,
    image_size_normalizer,
    interocular_normalizer,
    nme,
    point_errors,
)
from mvface.eval.plots import plot_ced, plot_nme_by_yaw
from mvface.eval.protocols import (
    AFLW2000_3D_AUC_THRESHOLD,
    IBUG_300W_THRESHOLDS,
    YAW_BINS,
    Aflw2000Protocol,
    ProtocolResult,
    aflw2000_3d_protocol,
    ibug_300w_protocol,
    load_aflw2000_3d_protocol,
    yaw_bin_index,
)
from mvface.eval.report import REPORT_FILES, EvalReport, format_table, render_table, write_report

__all__ = [
    "AFLW2000_3D_AUC_THRESHOLD",
    "DEFAULT_AUC_THRESHOLD",
    "IBUG_300W_THRESHOLDS",
    "REPORT_FILES",
    "YAW_BINS",
    "Aflw2000Protocol",
    "EvalReport",
    "ProtocolResult",
    "aflw2000_3d_protocol",
    "auc",
    "bbox_normalizer",
    "box_normalizer",
    "ced_curve",
    "failure_rate",
    "format_table",
    "ibug_300w_protocol",
    "image_size_normalizer",
    "interocular_normalizer",
    "load_aflw2000_3d_protocol",
    "multiview_consistency_error",
    "nme",
    "plot_ced",
    "plot_nme_by_yaw",
    "point_errors",
    "render_table",
    "reprojection_distances",
    "write_report",
    "yaw_bin_index",
]
