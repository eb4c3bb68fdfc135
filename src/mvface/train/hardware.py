"""The hardware a run asks for, checked before Lightning starts (its own refusals are tracebacks).

:func:`check_hardware` refuses an accelerator or a device count this machine does not have;
:func:`lightning_trainer` turns Lightning's refusal of the hardware settings into one line.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException

from mvface.errors import NotAvailableError
from mvface.train.config import ConfigError

__all__ = ["check_hardware", "lightning_trainer", "parse_devices"]


def check_hardware(accelerator: str, devices: str) -> None:
    """Refuse an accelerator or a device count this machine does not have, before Lightning
    starts (whose own refusal is a long traceback).

    Args:
        accelerator: ``train.accelerator`` (``"gpu"``/``"cuda"`` and ``"mps"`` are checked).
        devices: ``train.devices``: ``"auto"``, ``"-1"`` (all), a count or a list of indices
            (``"0,1"``, ``"[0, 1]"``).

    Raises:
        NotAvailableError: no such device here, or fewer than asked for.
    """
    kind = accelerator.strip().lower()
    if kind == "mps" or (kind == "gpu" and not torch.cuda.is_available()):
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return  # Lightning's "gpu" is Apple's GPU here; one device
        if kind == "mps":
            raise NotAvailableError(
                "train.accelerator=mps: no Apple GPU (MPS) is available here; "
                "use train.accelerator=cpu (or auto)"
            )
    if kind not in ("gpu", "cuda"):
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise NotAvailableError(
            f"train.accelerator={accelerator}: no CUDA GPU is visible here "
            f"(torch.cuda.is_available() is False); run where there is one, or use "
            f"train.accelerator=cpu (or auto)"
        )
    text = devices.strip().strip("[]").strip()
    if text in ("auto", "-1", ""):
        return
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.lstrip("-").isdigit() for p in parts):
        return  # not a count or indices: Lightning judges it
    if len(parts) == 1 and "," not in devices:
        wanted = int(parts[0])
        if wanted > count:
            raise NotAvailableError(
                f"train.devices={devices} asks for {wanted} CUDA GPUs but {count} "
                f"{'is' if count == 1 else 'are'} visible here; lower train.devices"
            )
        return
    missing = [int(p) for p in parts if not 0 <= int(p) < count]
    if missing:
        raise NotAvailableError(
            f"train.devices={devices} names GPU {missing[0]} but only indices 0-{count - 1} "
            f"are visible here"
        )


def lightning_trainer(**kwargs: Any) -> pl.Trainer:
    """``pl.Trainer(**kwargs)``, its refusals of the hardware settings as one line.

    Raises:
        NotAvailableError: an accelerator whose backend or package is absent here.
        ConfigError: an invalid accelerator, strategy, precision or devices value.
    """
    try:
        return pl.Trainer(**kwargs)
    except (MisconfigurationException, ImportError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        absent = isinstance(exc, ImportError) or any(
            words in first.lower()
            for words in ("not available", "no supported", "can not run", "cannot run")
        )
        if absent:  # e.g. "No supported gpu backend found!", a missing torch_xla
            raise NotAvailableError(
                f"train.accelerator={kwargs.get('accelerator')}: not available here ({first})"
            ) from None
        raise ConfigError(f"train settings refused by Lightning: {first}") from None


def parse_devices(text: str) -> int | str:
    """``train.devices`` as Lightning takes it: a count as an int, anything else as text."""
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text
