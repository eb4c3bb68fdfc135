"""Landmark accuracy metrics: point errors, NME normalizers, NME, CED, AUC and failure rate.

Every function works on numpy arrays (torch tensors are accepted and converted) and returns
numpy values. Errors are returned as *fractions* of the normalizer, one value per sample;
protocols (:mod:`mvface.eval.protocols`) multiply by 100 to report percent.

Shapes use ``N`` for samples, ``K`` for points per sample (68 for the iBUG scheme) and ``D``
for the coordinate count (2 for image ``x, y`` in pixels, 3 when a depth ``z`` follows).
The unit of ``errors`` in :func:`auc`, :func:`failure_rate` and :func:`ced_curve` is whatever
the caller uses (fraction or percent); the thresholds must use the same unit.

Example:
    >>> import numpy as np
    >>> gt = np.zeros((1, 68, 2)); gt[0, :, 0] = np.arange(68); gt[0, :, 1] = np.arange(68)
    >>> pred = gt + np.array([3.0, 4.0])  # every point moved by 5 px
    >>> nme(pred, gt, bbox_normalizer(gt)).round(6).tolist()  # 5 / sqrt(67 * 67)
    [0.074627]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mvface.data.record import landmark_box
from mvface.data.scheme import OUTER_EYE_CORNERS
from mvface.errors import BadInputError

__all__ = [
    "DEFAULT_AUC_THRESHOLD",
    "auc",
    "bbox_normalizer",
    "box_normalizer",
    "ced_curve",
    "failure_rate",
    "image_size_normalizer",
    "interocular_normalizer",
    "nme",
    "point_errors",
]

#: Default AUC / failure threshold, as a fraction of the normalizer (7 %).
DEFAULT_AUC_THRESHOLD = 0.07


def to_numpy(x: Any, dtype: type = np.float64) -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor, nested list, scalar) as a numpy array.

    Torch tensors are detached and moved to the CPU first; torch is never imported here.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _check_points(points: np.ndarray, name: str, min_dims: int = 2) -> None:
    """Raise :class:`BadInputError` unless ``points`` is a finite ``(N, K, D>=min_dims)`` array."""
    if points.ndim != 3 or points.shape[-1] < min_dims:
        raise BadInputError(name, f"expected shape (N, K, D>={min_dims}), got {points.shape}")
    finite = np.isfinite(points).all(axis=(1, 2))
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise BadInputError(f"sample {bad}", f"{name} contain NaN or infinite values")


def _check_normalizer(norm: np.ndarray, what: str) -> np.ndarray:
    """Raise :class:`BadInputError` naming the first sample whose normalizer is not > 0."""
    ok = np.isfinite(norm) & (norm > 0)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise BadInputError(
            f"sample {bad}", f"{what} normalizer is {float(norm[bad])!r}; it must be finite and > 0"
        )
    return norm


def point_errors(pred: Any, gt: Any, dims: int = 2) -> np.ndarray:
    """Euclidean distance between predicted and ground-truth points.

    Args:
        pred: ``(N, K, D)`` predicted points (pixels).
        gt: ``(N, K, D)`` ground-truth points in the same frame and convention.
        dims: how many leading coordinates to use: 2 for the image-plane ``(x, y)`` error
            (2D NME), 3 for ``(x, y, z)`` (3D NME; both inputs need ``D >= 3``).

    Returns:
        ``(N, K)`` float64 distances, in the units of the inputs (pixels).

    Raises:
        BadInputError: shapes differ, ``dims`` is not 2 or 3 or exceeds ``D``, or a sample has
            NaN / infinite coordinates (the message names the sample index).
    """
    if dims not in (2, 3):
        raise BadInputError("dims", f"must be 2 or 3, got {dims}")
    p = to_numpy(pred)
    g = to_numpy(gt)
    if p.shape != g.shape:
        raise BadInputError("pred", f"shape {p.shape} differs from ground truth {g.shape}")
    _check_points(p, "predictions", min_dims=dims)
    _check_points(g, "ground-truth points", min_dims=dims)
    diff = p[..., :dims] - g[..., :dims]
    return np.sqrt(np.sum(diff * diff, axis=-1))


def bbox_normalizer(gt: Any) -> np.ndarray:
    """``sqrt(w * h)`` of the tight box around each sample's ground-truth ``(x, y)`` points.

    This is the AFLW2000-3D normalizer of the 3DDFA benchmark (``llength`` there).

    Args:
        gt: ``(N, K, D>=2)`` ground-truth points (pixels).

    Returns:
        ``(N,)`` float64 normalizers (pixels).

    Raises:
        BadInputError: a sample's box has zero width or height, or contains NaN.
    """
    g = to_numpy(gt)
    _check_points(g, "ground-truth points")
    box = landmark_box(g)
    return _check_normalizer(box_normalizer(box, check=False), "bounding-box")


def box_normalizer(boxes: Any, check: bool = True) -> np.ndarray:
    """``sqrt(w * h)`` of given boxes (e.g. face-detector or annotated face boxes).

    Args:
        boxes: ``(N, 4)`` boxes ``[x0, y0, x1, y1]`` in pixels.
        check: raise on degenerate boxes (``False`` returns them as they are).

    Returns:
        ``(N,)`` float64 normalizers (pixels).

    Raises:
        BadInputError: wrong shape, or (``check``) a box with no area or NaN coordinates.
    """
    b = to_numpy(boxes)
    if b.ndim != 2 or b.shape[1] != 4:
        raise BadInputError("boxes", f"expected shape (N, 4), got {b.shape}")
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    # A negative width and height would give a positive product: refuse it explicitly.
    norm = np.where((w > 0) & (h > 0), np.sqrt(np.abs(w * h)), 0.0)
    norm[~np.isfinite(w * h)] = np.nan
    return _check_normalizer(norm, "box") if check else norm


def interocular_normalizer(gt: Any) -> np.ndarray:
    """Distance between the outer eye corners (0-based points 36 and 45), the 300-W normalizer.

    Args:
        gt: ``(N, 68, D>=2)`` ground-truth points (pixels); only ``(x, y)`` is used.

    Returns:
        ``(N,)`` float64 normalizers (pixels).

    Raises:
        BadInputError: fewer than 68 points, or the two corners coincide in a sample.
    """
    g = to_numpy(gt)
    _check_points(g, "ground-truth points")
    if g.shape[1] != 68:
        raise BadInputError("ground-truth points", f"need the 68-point scheme, got {g.shape[1]}")
    a, b = OUTER_EYE_CORNERS
    norm = np.linalg.norm(g[:, a, :2] - g[:, b, :2], axis=-1)
    return _check_normalizer(norm, "inter-ocular")


def image_size_normalizer(width: Any, height: Any) -> np.ndarray:
    """``sqrt(W * H)`` of the image size(s).

    Args:
        width: image width(s) in pixels, scalar or ``(N,)``.
        height: image height(s) in pixels, scalar or ``(N,)``.

    Returns:
        ``(N,)`` (or ``(1,)`` for scalars) float64 normalizers (pixels).

    Raises:
        BadInputError: a width or height that is not finite and > 0.
    """
    w = np.atleast_1d(to_numpy(width))
    h = np.atleast_1d(to_numpy(height))
    w, h = np.broadcast_arrays(w, h)
    norm = np.where((w > 0) & (h > 0), np.sqrt(np.abs(w * h)), 0.0)
    return _check_normalizer(norm, "image-size")


def nme(
    pred: Any,
    gt: Any,
    normalizer: Any,
    dims: int = 2,
    mask: Any | None = None,
) -> np.ndarray:
    """Normalized mean error per sample: mean point distance divided by the normalizer.

    Args:
        pred: ``(N, K, D)`` predicted points (pixels).
        gt: ``(N, K, D)`` ground-truth points (pixels).
        normalizer: ``(N,)`` positive normalizers in pixels (see the ``*_normalizer``
            functions), or a scalar applied to every sample.
        dims: 2 for the image-plane error, 3 for the ``(x, y, z)`` error.
        mask: optional ``(N, K)`` bool, ``True`` for points that count (e.g. visible ones);
            the mean is taken over those points only.

    Returns:
        ``(N,)`` float64 NME as a fraction of the normalizer (multiply by 100 for percent).

    Raises:
        BadInputError: a normalizer that is zero, negative or NaN (naming the sample index),
            a sample with no point in ``mask``, or bad shapes (see :func:`point_errors`).
    """
    err = point_errors(pred, gt, dims=dims)
    n = err.shape[0]
    norm = np.atleast_1d(to_numpy(normalizer))
    if norm.shape not in ((1,), (n,)):
        raise BadInputError("normalizer", f"expected shape ({n},) or a scalar, got {norm.shape}")
    norm = _check_normalizer(np.broadcast_to(norm, (n,)), "NME")
    if mask is None:
        mean_err = err.mean(axis=1)
    else:
        m = np.asarray(to_numpy(mask, dtype=np.float64) > 0)
        if m.shape != err.shape:
            raise BadInputError("mask", f"expected shape {err.shape}, got {m.shape}")
        counts = m.sum(axis=1)
        if (counts == 0).any():
            bad = int(np.flatnonzero(counts == 0)[0])
            raise BadInputError(f"sample {bad}", "mask leaves no point to evaluate")
        mean_err = (err * m).sum(axis=1) / counts
    return mean_err / norm


def _check_errors(errors: Any) -> np.ndarray:
    e = to_numpy(errors).reshape(-1)
    if e.size == 0:
        raise BadInputError("errors", "no errors given (empty array)")
    ok = np.isfinite(e) & (e >= 0)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise BadInputError(f"sample {bad}", f"error is {float(e[bad])!r}; must be finite, >= 0")
    return e


def _check_threshold(threshold: float, name: str = "threshold") -> float:
    t = float(threshold)
    if not (np.isfinite(t) and t > 0):
        raise BadInputError(name, f"must be finite and > 0, got {threshold!r}")
    return t


def ced_curve(errors: Any, max_threshold: float, num: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: the fraction of samples with error ``<=`` each threshold.

    Args:
        errors: ``(N,)`` non-negative per-sample errors (fraction or percent).
        max_threshold: the last threshold, in the unit of ``errors``.
        num: number of thresholds, evenly spaced from 0 to ``max_threshold`` inclusive.

    Returns:
        ``(thresholds (num,), fraction (num,))``; ``fraction`` is non-decreasing in ``[0, 1]``.

    Raises:
        BadInputError: empty, negative or NaN errors, or a threshold that is not > 0.
    """
    e = np.sort(_check_errors(errors))
    t_max = _check_threshold(max_threshold, "max_threshold")
    if num < 2:
        raise BadInputError("num", f"need at least 2 thresholds, got {num}")
    thresholds = np.linspace(0.0, t_max, num)
    fraction = np.searchsorted(e, thresholds, side="right") / e.size
    return thresholds, fraction.astype(np.float64)


def auc(errors: Any, threshold: float = DEFAULT_AUC_THRESHOLD, step: float | None = None) -> float:
    """Area under the CED curve from 0 to ``threshold``, divided by ``threshold`` (in [0, 1]).

    This is the 300-W definition (``AUC_α``). With ``step=None`` the integral of the CED step
    function is computed exactly: ``mean(max(0, 1 - e / threshold))``. With a ``step`` the CED
    is sampled every ``step`` from 0 to ``threshold`` and integrated with the trapezoid rule,
    as the common reference scripts do (they agree to within about ``step / threshold``).

    Args:
        errors: ``(N,)`` non-negative per-sample errors (fraction or percent).
        threshold: the upper integration limit, in the unit of ``errors`` (default 0.07, a
            fraction; pass 7.0 for errors in percent).
        step: sampling step of the numeric variant, or ``None`` for the exact value.

    Returns:
        The normalized area: 1 when every error is 0, 0 when every error is ``>= threshold``.

    Raises:
        BadInputError: empty, negative or NaN errors, or a threshold / step that is not > 0.
    """
    e = _check_errors(errors)
    t = _check_threshold(threshold)
    if step is None:
        return float(np.mean(np.clip(1.0 - e / t, 0.0, None)))
    s = _check_threshold(step, "step")
    num = max(2, round(t / s) + 1)
    x, ced = ced_curve(e, t, num=num)
    area = float(np.sum((ced[1:] + ced[:-1]) * np.diff(x)) / 2.0)
    return area / t


def failure_rate(errors: Any, threshold: float = DEFAULT_AUC_THRESHOLD) -> float:
    """Fraction of samples whose error is strictly above ``threshold`` (``1 - CED(threshold)``).

    Args:
        errors: ``(N,)`` non-negative per-sample errors (fraction or percent).
        threshold: failure threshold in the unit of ``errors``.

    Returns:
        A fraction in ``[0, 1]``.

    Raises:
        BadInputError: empty, negative or NaN errors, or a threshold that is not > 0.
    """
    e = _check_errors(errors)
    t = _check_threshold(threshold)
    return float(np.mean(e > t))
