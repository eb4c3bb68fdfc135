"""Benchmark protocols: AFLW2000-3D (3DDFA yaw-binned NME) and iBUG 300-W (inter-ocular NME).

A protocol turns predictions and ground truth into a :class:`ProtocolResult` whose
``protocol`` dict states every choice behind the numbers (normalizer, coordinates used, which
ground truth, which yaw file, thresholds, units), so a number is never separated from its
definition.

AFLW2000-3D, as the 3DDFA benchmark (``benchmark_aflw2000.py``) computes it:

* per image, ``NME = mean_k ||pred_k[:2] - gt_k[:2]|| / sqrt(w * h)`` where ``w, h`` are the
  width and height of the tight box around the 68 ground-truth ``(x, y)`` points, x100;
* images are binned by ``|yaw|`` in degrees from ``AFLW2000-3D.pose.npy``:
  ``|yaw| <= 30`` -> "0-30", ``30 < |yaw| <= 60`` -> "30-60", ``|yaw| > 60`` -> "60-90"
  (the last bin also takes the few fitted yaws beyond 90 degrees, exactly as 3DDFA does);
* the headline (``nme_balanced``) is the mean of the three bin means; ``nme_mean`` is the
  plain mean over images.

iBUG 300-W: NME normalized by the distance of the outer eye corners (0-based points 36 and
45), x100; AUC and failure rate at 8 % (the usual 300-W threshold) and also at 10 %.

Example:
    >>> import numpy as np
    >>> gt = np.random.default_rng(0).uniform(0, 100, (3, 68, 2))
    >>> r = aflw2000_3d_protocol(gt, gt, np.array([0.0, 45.0, 80.0]))
    >>> r.nme_balanced, r.bin_counts
    (0.0, {'0-30': 1, '30-60': 1, '60-90': 1})
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mvface.data.readers.aflw2000_3d import PROTOCOL_FILES, load_aflw2000_protocol
from mvface.data.scheme import NUM_LANDMARKS
from mvface.errors import BadInputError
from mvface.eval.metrics import (
    auc,
    bbox_normalizer,
    failure_rate,
    interocular_normalizer,
    nme,
    to_numpy,
)

__all__ = [
    "AFLW2000_3D_AUC_THRESHOLD",
    "IBUG_300W_THRESHOLDS",
    "YAW_BINS",
    "Aflw2000Protocol",
    "ProtocolResult",
    "aflw2000_3d_protocol",
    "ibug_300w_protocol",
    "load_aflw2000_3d_protocol",
    "yaw_bin_index",
]

#: Yaw bins of the AFLW2000-3D protocol: ``(name, low, high)`` in degrees of ``|yaw|``.
#: Bin 0 is the closed interval ``[0, 30]``; the others are ``(low, high]``; ``|yaw| > 90``
#: falls in the last bin (3DDFA's ``ind_yaw_3 = yaws_list > 60``).
YAW_BINS: tuple[tuple[str, float, float], ...] = (
    ("0-30", 0.0, 30.0),
    ("30-60", 30.0, 60.0),
    ("60-90", 60.0, 90.0),
)

#: AUC / failure threshold used for AFLW2000-3D, in percent of the box normalizer.
AFLW2000_3D_AUC_THRESHOLD = 7.0

#: 300-W thresholds in percent of the inter-ocular distance: the first is the headline
#: (``auc``, ``failure_rate``), the others go to ``extra``.
IBUG_300W_THRESHOLDS: tuple[float, ...] = (8.0, 10.0)

_ORIGINAL_GT_FILE = PROTOCOL_FILES["pts68"]
_DEFAULT_YAW_FILE = PROTOCOL_FILES["yaw_deg"]


@dataclass(frozen=True, eq=False)
class ProtocolResult:
    """Scores of one prediction set under one protocol.

    Attributes:
        name: protocol name (``"aflw2000-3d"``, ``"300w"``).
        per_image: ``(N,)`` float64 NME per image, in **percent**, in input order.
        nme_mean: plain mean of ``per_image`` (percent).
        nme_balanced: mean of the yaw-bin means (percent); ``None`` where the protocol has no
            bins; NaN when a bin is empty (a pose-balanced mean cannot be formed then).
        nme_bins: bin name -> mean NME of the bin (percent; NaN for an empty bin), or ``None``.
        bin_counts: bin name -> number of images in the bin, or ``None``.
        auc: area under the CED up to ``threshold``, normalized to ``[0, 1]`` (a fraction).
        failure_rate: fraction of images with NME above ``threshold`` (in ``[0, 1]``).
        threshold: the AUC / failure threshold, in percent.
        extra: further scores keyed by name, e.g. ``{"auc@10%": ..., "failure_rate@10%": ...}``.
        yaw_deg: ``(N,)`` yaw in degrees used for binning, or ``None``.
        protocol: every choice behind the numbers (normalizer, coordinates, ground truth, yaw
            file, thresholds, units), as short strings or numbers.
    """

    name: str
    per_image: np.ndarray
    nme_mean: float
    nme_balanced: float | None
    nme_bins: dict[str, float] | None
    bin_counts: dict[str, int] | None
    auc: float
    failure_rate: float
    threshold: float
    extra: dict[str, float] = field(default_factory=dict)
    yaw_deg: np.ndarray | None = None
    protocol: dict[str, str | float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of images scored."""
        return int(self.per_image.shape[0])

    def to_dict(self, per_image: bool = False) -> dict[str, Any]:
        """A JSON-ready summary (NaN becomes ``None``).

        Args:
            per_image: also include the per-image NME list (percent).

        Returns:
            ``{"protocol_name", "n", "nme_mean", "nme_balanced", "nme_bins", "bin_counts",
            "auc", "failure_rate", "threshold", "extra", "protocol"}`` (+ ``"per_image"``).
        """
        out: dict[str, Any] = {
            "protocol_name": self.name,
            "n": self.n,
            "nme_mean": _json_float(self.nme_mean),
            "nme_balanced": _json_float(self.nme_balanced),
            "nme_bins": (
                None
                if self.nme_bins is None
                else {k: _json_float(v) for k, v in self.nme_bins.items()}
            ),
            "bin_counts": None if self.bin_counts is None else dict(self.bin_counts),
            "auc": _json_float(self.auc),
            "failure_rate": _json_float(self.failure_rate),
            "threshold": self.threshold,
            "extra": {k: _json_float(v) for k, v in self.extra.items()},
            "protocol": dict(self.protocol),
        }
        if per_image:
            out["per_image"] = [_json_float(v) for v in self.per_image.tolist()]
        return out


def _json_float(value: float | None) -> float | None:
    """``value`` as a float, with NaN / infinity mapped to ``None`` (valid JSON)."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def _check_68(points: np.ndarray, name: str) -> None:
    if points.ndim != 3 or points.shape[1] != NUM_LANDMARKS or points.shape[2] < 2:
        raise BadInputError(name, f"expected shape (N, 68, 2|3), got {points.shape}")
    if points.shape[0] == 0:
        raise BadInputError(name, "no samples (N = 0)")


def yaw_bin_index(yaw_deg: Any) -> np.ndarray:
    """Index into :data:`YAW_BINS` for each yaw, following the 3DDFA benchmark.

    Args:
        yaw_deg: ``(N,)`` yaw angles in **degrees** (sign ignored).

    Returns:
        ``(N,)`` int64: 0 for ``|yaw| <= 30``, 1 for ``30 < |yaw| <= 60``, 2 for ``|yaw| > 60``.

    Raises:
        BadInputError: a NaN or infinite yaw (naming the sample index).
    """
    y = to_numpy(yaw_deg).reshape(-1)
    if not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise BadInputError(f"sample {bad}", f"yaw is {float(y[bad])!r}; must be finite degrees")
    a = np.abs(y)
    idx = np.full(a.shape, len(YAW_BINS) - 1, dtype=np.int64)
    for i in reversed(range(len(YAW_BINS) - 1)):
        idx[a <= YAW_BINS[i][2]] = i
    return idx


def _summary(
    per_image: np.ndarray, thresholds: tuple[float, ...]
) -> tuple[float, float, dict[str, float]]:
    """AUC and failure rate at ``thresholds[0]`` (percent) and extras at the rest."""
    head = thresholds[0]
    extra: dict[str, float] = {}
    for t in thresholds[1:]:
        extra[f"auc@{t:g}%"] = auc(per_image, t)
        extra[f"failure_rate@{t:g}%"] = failure_rate(per_image, t)
    return auc(per_image, head), failure_rate(per_image, head), extra


def aflw2000_3d_protocol(
    pred: Any,
    gt: Any,
    yaw_deg: Any,
    *,
    ground_truth: str = f"original ({_ORIGINAL_GT_FILE})",
    yaw_file: str = _DEFAULT_YAW_FILE,
    crop: str = "not stated",
    threshold: float = AFLW2000_3D_AUC_THRESHOLD,
) -> ProtocolResult:
    """Score predictions with the AFLW2000-3D protocol of the 3DDFA benchmark.

    Args:
        pred: ``(N, 68, 2|3)`` predicted points in image pixels (only ``x, y`` are used).
        gt: ``(N, 68, 2|3)`` ground truth in the **same** pixel convention as ``pred``
            (:func:`load_aflw2000_3d_protocol` gives 0-based points).
        yaw_deg: ``(N,)`` yaw in degrees used for the bins (e.g. ``AFLW2000-3D.pose.npy``).
        ground_truth: which annotation ``gt`` is, written into ``protocol``.
        yaw_file: which yaw file ``yaw_deg`` came from, written into ``protocol``.
        crop: how the face crop was obtained (ground-truth box, a detector), for ``protocol``.
        threshold: AUC / failure threshold in percent (default 7).

    Returns:
        A :class:`ProtocolResult` with percent NMEs, three yaw bins and the balanced mean.

    Raises:
        BadInputError: wrong shapes, NaN values, a degenerate ground-truth box (naming the
            sample index) or a yaw array of the wrong length.
    """
    p = to_numpy(pred)
    g = to_numpy(gt)
    _check_68(p, "predictions")
    _check_68(g, "ground truth")
    if p.shape[0] != g.shape[0]:
        raise BadInputError("predictions", f"{p.shape[0]} samples but {g.shape[0]} ground truths")
    y = to_numpy(yaw_deg).reshape(-1)
    if y.shape[0] != g.shape[0]:
        raise BadInputError("yaw", f"{y.shape[0]} yaw values for {g.shape[0]} samples")
    per_image = 100.0 * nme(p[..., :2], g[..., :2], bbox_normalizer(g), dims=2)
    bins = yaw_bin_index(y)
    nme_bins: dict[str, float] = {}
    counts: dict[str, int] = {}
    for i, (bin_name, _, _) in enumerate(YAW_BINS):
        sel = per_image[bins == i]
        counts[bin_name] = int(sel.size)
        nme_bins[bin_name] = float(sel.mean()) if sel.size else math.nan
    balanced = float(np.mean(list(nme_bins.values())))  # NaN if any bin is empty
    auc_v, fr_v, extra = _summary(per_image, (float(threshold),))
    protocol: dict[str, str | float] = {
        "name": "AFLW2000-3D (3DDFA benchmark)",
        "normalizer": "sqrt(w*h) of the tight box around the 68 ground-truth (x, y) points",
        "dims": "2D (x, y); z ignored",
        "points": "68 (iBUG scheme), all points, no visibility mask",
        "ground_truth": ground_truth,
        "yaw_file": yaw_file,
        "yaw_bins": "|yaw| in [0,30], (30,60], >60 degrees (yaw > 90 goes to 60-90)",
        "headline": "nme_balanced = mean of the three bin means",
        "crop": crop,
        "nme_units": "percent",
        "auc_threshold_percent": float(threshold),
        "auc_units": "fraction of 1 (area under CED / threshold)",
        "failure_rate": f"fraction of images with NME > {float(threshold):g} %",
    }
    return ProtocolResult(
        name="aflw2000-3d",
        per_image=_readonly(per_image),
        nme_mean=float(per_image.mean()),
        nme_balanced=balanced,
        nme_bins=nme_bins,
        bin_counts=counts,
        auc=auc_v,
        failure_rate=fr_v,
        threshold=float(threshold),
        extra=extra,
        yaw_deg=_readonly(y),
        protocol=protocol,
    )


def ibug_300w_protocol(
    pred: Any,
    gt: Any,
    *,
    subset: str = "not stated",
    thresholds: tuple[float, ...] = IBUG_300W_THRESHOLDS,
) -> ProtocolResult:
    """Score predictions with the iBUG 300-W protocol (inter-ocular NME).

    Args:
        pred: ``(N, 68, 2|3)`` predicted points in image pixels (only ``x, y`` are used).
        gt: ``(N, 68, 2|3)`` ground truth in the same pixel convention.
        subset: which 300-W part was scored (e.g. ``"afw"``, ``"helen test"``), for ``protocol``.
        thresholds: AUC / failure thresholds in percent; the first is the headline
            (``auc`` and ``failure_rate``), the rest go to ``extra`` as ``"auc@10%"`` etc.

    Returns:
        A :class:`ProtocolResult` with percent NMEs and no yaw bins.

    Raises:
        BadInputError: wrong shapes, NaN values, or coinciding eye corners (naming the sample).
    """
    p = to_numpy(pred)
    g = to_numpy(gt)
    _check_68(p, "predictions")
    _check_68(g, "ground truth")
    if p.shape[0] != g.shape[0]:
        raise BadInputError("predictions", f"{p.shape[0]} samples but {g.shape[0]} ground truths")
    if not thresholds:
        raise BadInputError("thresholds", "need at least one threshold")
    ts = tuple(float(t) for t in thresholds)
    per_image = 100.0 * nme(p[..., :2], g[..., :2], interocular_normalizer(g), dims=2)
    auc_v, fr_v, extra = _summary(per_image, ts)
    protocol: dict[str, str | float] = {
        "name": "iBUG 300-W",
        "normalizer": "outer-eye-corner distance (0-based points 36, 45)",
        "dims": "2D (x, y); z ignored",
        "points": "68 (iBUG scheme), all points, no visibility mask",
        "ground_truth": "300-W .pts annotations",
        "subset": subset,
        "nme_units": "percent",
        "auc_threshold_percent": ts[0],
        "extra_thresholds_percent": ", ".join(f"{t:g}" for t in ts[1:]) or "none",
        "auc_units": "fraction of 1 (area under CED / threshold)",
        "failure_rate": f"fraction of images with NME > {ts[0]:g} %",
    }
    return ProtocolResult(
        name="300w",
        per_image=_readonly(per_image),
        nme_mean=float(per_image.mean()),
        nme_balanced=None,
        nme_bins=None,
        bin_counts=None,
        auc=auc_v,
        failure_rate=fr_v,
        threshold=ts[0],
        extra=extra,
        yaw_deg=None,
        protocol=protocol,
    )


@dataclass(frozen=True, eq=False)
class Aflw2000Protocol:
    """The 3DDFA AFLW2000-3D evaluation arrays, converted to mvface conventions.

    Attributes:
        gt: ``(N, 68, 3)`` (original) or ``(N, 68, 2)`` (re-annotated) float64 ground truth,
            **0-based** pixels (1 subtracted from the files' 1-based ``x, y``; ``z`` as stored).
        yaw_deg: ``(N,)`` float64 yaw in degrees from the yaw file.
        names: image names in protocol order (from ``list.txt`` next to the folder).
        ground_truth: description of the annotation used, for :func:`aflw2000_3d_protocol`.
        yaw_file: file name of the yaw array.
        roi_box: ``(N, 4)`` 3DDFA's crop boxes ``[x0, y0, x1, y1]`` (0-based), if present.
        files: the files the arrays come from: ``"gt"``, ``"yaw"`` and (if present)
            ``"roi_box"``, for messages naming a bad row.
    """

    gt: np.ndarray
    yaw_deg: np.ndarray
    names: tuple[str, ...]
    ground_truth: str
    yaw_file: str
    roi_box: np.ndarray | None = None
    files: dict[str, Path] = field(default_factory=dict)


def load_aflw2000_3d_protocol(
    protocol_dir: str | Path,
    ground_truth: str = "original",
    yaw_file: str = _DEFAULT_YAW_FILE,
    keep_nonfinite_rows: bool = False,
) -> Aflw2000Protocol:
    """Load the 3DDFA AFLW2000-3D protocol arrays (ground truth, yaw, names).

    The files are parsed by :func:`mvface.data.readers.aflw2000_3d.load_aflw2000_protocol`;
    this picks the ground truth and yaw file a protocol run uses.

    Args:
        protocol_dir: folder holding ``AFLW2000-3D.pts68.npy`` and friends
            (``.../aflw2000_3d_dev/3ddfa_protocol``); ``list.txt`` in its parent gives names.
        ground_truth: ``"original"`` (``AFLW2000-3D.pts68.npy``, the 3DDFA default) or
            ``"reannotated"`` (``AFLW2000-3D-Reannotated.pts68.npy``).
        yaw_file: yaw array to bin by (``AFLW2000-3D.pose.npy`` is the 3DDFA default;
            ``AFLW2000-3D-new.pose.npy`` is the alternative split).
        keep_nonfinite_rows: keep rows with NaN or infinite values (the caller skips those
            faces) instead of refusing the whole file.

    Returns:
        An :class:`Aflw2000Protocol` with 0-based ground truth.

    Raises:
        BadInputError: a missing file, an unknown ``ground_truth`` or ``yaw_file``, or arrays
            whose shapes or lengths do not match.
    """
    root = Path(protocol_dir)
    gt_keys = {"original": "pts68", "reannotated": "pts68_reannotated"}
    if ground_truth not in gt_keys:
        raise BadInputError(
            "ground_truth", f"must be one of {sorted(gt_keys)}, got {ground_truth!r}"
        )
    yaw_keys = {PROTOCOL_FILES[k]: k for k in ("yaw_deg", "yaw_deg_new")}
    if yaw_file not in yaw_keys:
        raise BadInputError("yaw_file", f"must be one of {sorted(yaw_keys)}, got {yaw_file!r}")
    gt_key, yaw_key = gt_keys[ground_truth], yaw_keys[yaw_file]
    for key in (gt_key, yaw_key):
        if not (root / PROTOCOL_FILES[key]).is_file():
            raise BadInputError(root / PROTOCOL_FILES[key], "protocol file not found")
    arrays = load_aflw2000_protocol(root.parent, keep_nonfinite_rows=keep_nonfinite_rows)
    gt, yaw = arrays[gt_key], arrays[yaw_key]
    gt.setflags(write=False)
    yaw.setflags(write=False)
    return Aflw2000Protocol(
        gt=gt,
        yaw_deg=yaw,
        names=tuple(str(n) for n in arrays["names"]),
        ground_truth=f"{ground_truth} ({PROTOCOL_FILES[gt_key]}), 1-based converted to 0-based",
        yaw_file=PROTOCOL_FILES[yaw_key],
        roi_box=arrays.get("roi_box"),
        files={
            "gt": root / PROTOCOL_FILES[gt_key],
            "yaw": root / PROTOCOL_FILES[yaw_key],
            "roi_box": root / PROTOCOL_FILES["roi_box"],
        },
    )
