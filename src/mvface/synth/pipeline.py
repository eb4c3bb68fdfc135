"""The synthetic-data job: select faces, crop them, build heads, render the rig, write identities.

Each step of the paper's data pipeline is a function of its own; :func:`run_synth` wires them
(``mvface synth`` only calls it):

1. :func:`~mvface.synth.sources.select_sources` — the faces of any registered reader
   (``--format``), with their ground-truth landmarks.
2. :func:`~mvface.synth.identity.align_crop` — an FFHQ/EG3D-style aligned square crop from the
   eyes and mouth, the landmarks moved into it.
3. :func:`~mvface.synth.identity.synthesize_identity` — the head built on the crop (its camera
   estimated by the backend), the rig's views rendered, the landmarks lifted and transferred to
   every view.
4. :func:`run_synth` — one job on one output folder: the lock, resuming finished identities,
   atomic writes, bad sources skipped with a one-line reason, optional worker processes, the
   manifest rebuilt at the end; this module, with the check that one output set never mixes
   identities made with other settings (:func:`check_same_settings`).

Example:
    >>> cfg = SynthConfig(source="samples", format="pts", out="out", views=8)  # doctest: +SKIP
    >>> summary = run_synth(cfg)  # doctest: +SKIP
    >>> summary.done, summary.skipped, summary.failed  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mvface.data.readers.synthetic import MANIFEST_FILE, META_FILE, list_identities
from mvface.data.record import FaceSample
from mvface.errors import BadInputError
from mvface.synth.backends import HeadBackend, list_backends
from mvface.synth.config import SynthConfig, rig_cameras
from mvface.synth.identity import make_backend, synthesize_identity
from mvface.synth.sources import assign_identity_names, select_sources, source_name
from mvface.synth.writer import SyntheticWriter, output_lock

#: The job settings that change what an identity is, with their ``mvface synth`` option: one
#: output set never mixes identities made with two values of any of them.
PRODUCT_SETTINGS: dict[str, str] = {
    "views": "--views",
    "size": "--size",
    "crop_size": "--crop-size",
    "rig": "--rig",
    "max_yaw_deg": "--max-yaw",
    "max_pitch_deg": "--max-pitch",
    "seed": "--seed",
    "backend": "--backend",
    "image_format": "--image-format",
    "quality": "--quality",
    "landmark_model": "--landmark-model",
    "jaw_from": "--jaw-from",
    "jaw_depth": "--jaw-depth",
    "fill": "--fill",
}
#: Product settings added after sets were first written, with the value older sets were made
#: with (instead of today's default).
LEGACY_SETTINGS: dict[str, Any] = {"fill": "none"}


def product_settings(job: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`PRODUCT_SETTINGS` of a job's settings (a manifest's ``job``), those without
    effect left out: the paper rig ignores the angles, only the random rig uses the seed, PNG
    ignores the quality. A key missing (a manifest of an older mvface) takes its default."""
    defaults = {f.name: f.default for f in fields(SynthConfig) if f.default is not MISSING}
    defaults.update(LEGACY_SETTINGS)
    settings = {key: job.get(key, defaults.get(key)) for key in PRODUCT_SETTINGS}
    if settings["rig"] == "paper":
        del settings["max_yaw_deg"], settings["max_pitch_deg"]
    if settings["rig"] != "random":
        del settings["seed"]
    if settings["image_format"] == "png":
        del settings["quality"]
    return settings


def _identity_settings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The product settings an identity's ``meta.json`` records (a subset)."""
    found: dict[str, Any] = {}
    for key in ("views", "crop_size", "rig", "backend", "image_format", "jaw_from", "jaw_depth"):
        if key in meta:
            found[key] = meta[key]
    found["fill"] = meta.get("fill", LEGACY_SETTINGS["fill"])
    if isinstance(meta.get("image_size"), list) and meta["image_size"]:
        found["size"] = meta["image_size"][0]
    if meta.get("rig") == "random" and "seed" in meta:
        found["seed"] = meta["seed"]
    return found


def check_same_settings(cfg: SynthConfig) -> None:
    """Refuse a job whose output set holds identities made with other product settings.

    The set's settings are its manifest's ``job`` (written when a job starts); a set without one
    (a killed job of an older mvface) is judged by what its identities' ``meta.json`` record.
    With the same settings, the set's first identity must also have been rendered from this
    job's cameras (a rig that changed between mvface versions would mix two camera sets). A set
    without finished identities takes any settings.

    Raises:
        BadInputError: one line naming each differing option, its value in the set and in
            this job (or saying the cameras differ).
    """
    out = Path(cfg.out)
    identities = list_identities(out) if out.is_dir() else []
    if not identities:
        return
    ours = product_settings(cfg.provenance())
    theirs: dict[str, Any] = {}
    try:
        job = json.loads((out / MANIFEST_FILE).read_text()).get("job")
    except (OSError, ValueError, AttributeError):
        job = None
    if isinstance(job, dict):
        theirs = product_settings(job)
    else:
        for folder in identities:
            with contextlib.suppress(OSError, ValueError):
                theirs = _identity_settings(json.loads((folder / META_FILE).read_text()))
                break
    differing = [k for k in PRODUCT_SETTINGS if k in ours and k in theirs and ours[k] != theirs[k]]
    if differing:

        def shown(value: Any) -> str:
            return "none" if value is None else str(value)

        made = ", ".join(f"{PRODUCT_SETTINGS[k]} {shown(theirs[k])}" for k in differing)
        asked = ", ".join(f"{PRODUCT_SETTINGS[k]} {shown(ours[k])}" for k in differing)
        raise BadInputError(
            out,
            f"holds identities made with {made}; this job asks {asked}: use the same settings "
            "or another --out (one set never mixes two)",
        )
    try:
        theirs_cameras = np.load(identities[0] / "cameras.npy", allow_pickle=False)
    except (OSError, ValueError):
        return  # a damaged identity: the reader reports it
    ours_cameras = rig_cameras(cfg).astype(np.float32)
    if theirs_cameras.shape != ours_cameras.shape or not np.allclose(
        theirs_cameras, ours_cameras, atol=1e-5
    ):
        raise BadInputError(
            out,
            f"holds identities rendered from other cameras than this job's {cfg.rig} rig "
            "(another mvface version's rig?): use another --out (one set never mixes two)",
        )


@dataclass
class SynthEvent:
    """What happened to one source face (passed to ``on_identity``)."""

    name: str
    status: Literal["done", "resumed", "skipped", "failed"]
    reason: str = ""
    source: str = ""


@dataclass
class SynthSummary:
    """The outcome of :func:`run_synth`.

    Attributes:
        done: identities written by this run.
        resumed: identities already finished before this run (left as they were).
        skipped: ``(source, reason)`` of bad sources (unreadable, no face, landmarks outside...).
        failed: ``(source, reason)`` of unexpected errors.
        seconds: wall time of the job.
    """

    done: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


# -- step 4: the job -------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}
#: ``prctl`` option: the signal the kernel sends this process when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1
#: Seconds between a worker's checks that the job that started it is still alive.
PARENT_CHECK_SECONDS = 0.5


def _process(
    item: tuple[str, FaceSample],
    cfg: SynthConfig,
    backend: HeadBackend,
    cameras: np.ndarray,
    writer: SyntheticWriter,
) -> SynthEvent:
    name, sample = item
    source = source_name(sample)
    try:
        writer.write(synthesize_identity(sample, cfg, backend, cameras, name))
    except BadInputError as exc:
        where = "" if exc.source == source else f"{exc.source}: "
        return SynthEvent(name, "skipped", where + exc.problem, source)
    except Exception as exc:  # one broken identity must not stop the job
        return SynthEvent(name, "failed", f"{type(exc).__name__}: {exc}", source)
    return SynthEvent(name, "done", "", source)


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end as soon as the job process ``parent_pid`` is gone.

    A worker must never write on after its job is killed (``kill -9``): the output lock died
    with the job, so a new job could already be writing beside it. On Linux the kernel sends
    ``SIGKILL`` the moment the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon
    thread checks every :data:`PARENT_CHECK_SECONDS` that the parent is still ``parent_pid`` and
    ends the process otherwise (this also covers a parent that died before the ``prctl``).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="mvface-parent-watch", daemon=True).start()


def _worker_init(cfg: SynthConfig, cameras: np.ndarray, parent_pid: int | None = None) -> None:
    if parent_pid is not None:  # a local worker process (Ray actors are not our children)
        die_with_parent(parent_pid)
    os.environ.setdefault("LP_NUM_THREADS", "1")  # Mesa's rasterizer: one thread per worker
    torch.set_num_threads(1)
    _WORKER.update(
        cfg=cfg,
        cameras=cameras,
        backend=make_backend(cfg),
        writer=SyntheticWriter(cfg.out, cfg.image_format, cfg.quality),
    )


def _worker_run(item: tuple[str, FaceSample]) -> SynthEvent:
    w = _WORKER
    return _process(item, w["cfg"], w["backend"], w["cameras"], w["writer"])


def _events(
    pending: list[tuple[str, FaceSample]],
    cfg: SynthConfig,
    cameras: np.ndarray,
    writer: SyntheticWriter,
) -> Iterator[SynthEvent]:
    if not pending:
        return
    if cfg.executor == "ray":
        from mvface.synth.ray_executor import ray_events

        yield from ray_events(
            pending, cfg, cameras, cfg.ray_address, worker_init=_worker_init, worker_run=_worker_run
        )
        return
    if cfg.workers == 1 or len(pending) == 1:
        backend = make_backend(cfg)
        for item in pending:
            yield _process(item, cfg, backend, cameras, writer)
        return
    ctx = multiprocessing.get_context("spawn")
    n = min(cfg.workers, len(pending))
    initargs = (cfg, cameras, os.getpid())
    with ctx.Pool(n, initializer=_worker_init, initargs=initargs) as pool:
        yield from pool.imap_unordered(_worker_run, pending)


def run_synth(
    cfg: SynthConfig, on_identity: Callable[[SynthEvent], None] | None = None
) -> SynthSummary:
    """Run one synthesis job (see the module docstring).

    Args:
        cfg: the job settings.
        on_identity: called once per source face as it is finished, resumed, skipped or failed.

    Returns:
        The :class:`SynthSummary`.

    Raises:
        OutputLockedError: another job is writing into ``cfg.out``.
        BadInputError: the source cannot be read at all.
    """
    start = time.perf_counter()
    out = Path(cfg.out)
    summary = SynthSummary()
    notify = on_identity or (lambda event: None)
    if cfg.backend not in list_backends():
        raise BadInputError("backend", f"unknown backend {cfg.backend!r} (have {list_backends()})")
    with output_lock(out):
        check_same_settings(cfg)
        writer = SyntheticWriter(out, cfg.image_format, cfg.quality)
        writer.remove_stale_temporaries()
        samples, reader_skipped = select_sources(cfg)
        for line in reader_skipped:
            src, reason = _split_reason(line)
            summary.skipped.append((src, reason))
            notify(SynthEvent("", "skipped", reason, src))
        named, repeated = assign_identity_names(samples)
        for name, src, reason in repeated:
            summary.skipped.append((src, reason))
            notify(SynthEvent(name, "skipped", reason, src))
        pending = []
        for name, sample in named:
            if writer.is_done(name):
                summary.resumed.append(name)
                notify(SynthEvent(name, "resumed"))
            elif writer.is_taken(name):
                reason = f"{out / name}: exists, not an identity mvface finished; left as it is"
                summary.skipped.append((source_name(sample), reason))
                notify(SynthEvent(name, "skipped", reason, source_name(sample)))
            else:
                pending.append((name, sample))
        cameras = rig_cameras(cfg)
        # the set's settings are on disk before its first new identity (a killed job keeps them)
        writer.write_manifest(job=cfg.provenance())
        for event in _events(pending, cfg, cameras, writer):
            if event.status == "done":
                summary.done.append(event.name)
            elif event.status == "skipped":
                summary.skipped.append((event.source, event.reason))
            else:
                summary.failed.append((event.source, event.reason))
            notify(event)
        writer.write_manifest(
            skipped=[{"source": s, "reason": r} for s, r in summary.skipped],
            failed=[{"source": s, "reason": r} for s, r in summary.failed],
            job=cfg.provenance(),
        )
    summary.seconds = time.perf_counter() - start
    return summary


def _split_reason(line: str) -> tuple[str, str]:
    """``"path: reason"`` → ``(path, reason)`` (the whole line as reason when no colon)."""
    source, sep, reason = line.partition(": ")
    return (source, reason) if sep else ("", line)
