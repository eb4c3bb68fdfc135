"""Small named input checks shared by :mod:`mvface.geometry`.

Every check raises :class:`mvface.errors.BadInputError` with a one-line message
``"<name>: <problem>"``. Shape checks are free (they read ``tensor.shape`` only). Value checks
(finite, invertible) read tensor values, which synchronizes a GPU stream; wrap a hot training
loop in :func:`value_checks_disabled` to skip them there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from mvface.errors import BadInputError

_VALUE_CHECKS_ENABLED = True


@contextlib.contextmanager
def value_checks_disabled() -> Iterator[None]:
    """Skip the value checks (finite, invertible) of :mod:`mvface.geometry` inside the block.

    Shape checks stay on. Use it in hot loops where the inputs are known to be good, because a
    value check reads the tensor (a device synchronization).

    Example:
        >>> with value_checks_disabled():
        ...     pass  # geometry calls here do not look at tensor values
    """
    global _VALUE_CHECKS_ENABLED
    previous = _VALUE_CHECKS_ENABLED
    _VALUE_CHECKS_ENABLED = False
    try:
        yield
    finally:
        _VALUE_CHECKS_ENABLED = previous


def value_checks_enabled() -> bool:
    """Whether value checks run (see :func:`value_checks_disabled`)."""
    return _VALUE_CHECKS_ENABLED


def _format_shape(shape: Sequence[object]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_shape(x: torch.Tensor, shape: Sequence[str], name: str) -> None:
    """Check the trailing dimensions of a tensor against a pattern.

    Args:
        x: the tensor to check.
        shape: the pattern, one entry per dimension: a number (``"3"``) must match exactly, a
            letter (``"N"``) matches any size, and a leading ``"*"`` matches any number (zero or
            more) of leading batch dimensions.
        name: what ``x`` is, for the message (``"camera"``, ``"points"``).

    Raises:
        BadInputError: ``x`` is not a tensor or its shape does not match.

    Example:
        >>> check_shape(torch.zeros(2, 3, 4), ["*", "3", "4"], "projection")
    """
    if not isinstance(x, torch.Tensor):
        raise BadInputError(name, f"expected a torch.Tensor, got {type(x).__name__}")
    pattern = list(shape)
    batched = bool(pattern) and pattern[0] == "*"
    fixed = pattern[1:] if batched else pattern
    ok = x.dim() >= len(fixed) if batched else x.dim() == len(fixed)
    if ok:
        trailing = x.shape[x.dim() - len(fixed) :]
        ok = all(not p.isdigit() or int(p) == s for p, s in zip(fixed, trailing, strict=True))
    if not ok:
        raise BadInputError(
            name, f"expected shape {_format_shape(pattern)}, got {_format_shape(tuple(x.shape))}"
        )


def check_floating(x: torch.Tensor, name: str) -> None:
    """Check that a tensor has a floating-point dtype.

    Raises:
        BadInputError: ``x`` is an integer, boolean or complex tensor.
    """
    if not x.is_floating_point():
        raise BadInputError(name, f"expected a floating-point tensor, got {x.dtype}")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Check that every value of a tensor is finite (no NaN, no infinity).

    Skipped inside :func:`value_checks_disabled`.

    Args:
        x: the tensor to check.
        name: what ``x`` is, for the message.

    Raises:
        BadInputError: some value is NaN or infinite; the message says how many.

    Example:
        >>> check_finite(torch.ones(3), "camera")
    """
    if not _VALUE_CHECKS_ENABLED or x.numel() == 0:
        return
    bad = ~torch.isfinite(x.detach())
    if bool(bad.any()):
        raise BadInputError(name, f"{int(bad.sum())} of {x.numel()} values are NaN or infinite")


def check_intrinsics(K: torch.Tensor, name: str = "camera") -> None:
    """Check an intrinsics matrix: shape ``(*, 3, 3)``, finite, invertible.

    Invertible means ``|det K|`` above rounding level relative to the size of its rows
    (``|det K| > 16·ε·Π|row|``; a pinhole ``K`` has ``det K = fx · fy``, so ``fx = 0`` or
    ``fy = 0`` fails). Value checks are skipped inside :func:`value_checks_disabled`.

    Raises:
        BadInputError: wrong shape, NaN/Inf, or a singular matrix.
    """
    check_shape(K, ["*", "3", "3"], name)
    check_floating(K, name)
    check_finite(K, name)
    if not _VALUE_CHECKS_ENABLED or K.numel() == 0:
        return
    Kd = K.detach()
    det = torch.linalg.det(Kd)
    bound = torch.linalg.vector_norm(Kd, dim=-1).prod(-1)
    singular = ~(det.abs() > 16 * torch.finfo(K.dtype).eps * bound)
    if bool(singular.any()):
        raise BadInputError(
            name,
            f"singular intrinsics matrix in {int(singular.sum())} of {det.numel()} cameras"
            " (fx and fy must be non-zero)",
        )


def check_rotation_block(R: torch.Tensor, name: str = "camera") -> None:
    """Check a rotation block ``(*, 3, 3)``: finite and roughly a proper rotation (``det R > 0.5``).

    A rotation has ``det R = 1``; the generous bound accepts rotations stored at reduced precision
    while catching zero, degenerate, mirrored (``det < 0``) or garbage matrices. Value checks are
    skipped inside :func:`value_checks_disabled`.

    Raises:
        BadInputError: wrong shape, NaN/Inf, or a singular or mirrored block.
    """
    check_shape(R, ["*", "3", "3"], name)
    check_floating(R, name)
    check_finite(R, name)
    if not _VALUE_CHECKS_ENABLED or R.numel() == 0:
        return
    det = torch.linalg.det(R.detach())
    bad = ~(det > 0.5)
    if bool(bad.any()):
        raise BadInputError(
            name,
            f"rotation block is singular or not a proper rotation (det <= 0.5) in"
            f" {int(bad.sum())} of {det.numel()} cameras",
        )
