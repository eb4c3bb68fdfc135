"""Fan identities out over a Ray cluster (``mvface synth --executor ray``).

Each Ray actor owns one head backend (its own OpenGL context) and one writer, like a local worker
process; identities are dispatched to whichever actor is free. The output folder must be on
storage every node sees (a shared file system): actors write their identities there directly,
atomically, so the job's guarantees (resume, no half-written identity) hold on a cluster too.
The driver holds the output lock and rebuilds the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mvface.data.record import FaceSample
from mvface.errors import NotAvailableError


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise NotAvailableError("Ray is not installed: pip install 'mvface[ray]'") from None
    return ray


def ray_events(
    pending: list[tuple[str, FaceSample]],
    cfg: Any,
    cameras: np.ndarray,
    address: str | None = None,
    *,
    worker_init: Callable[[Any, np.ndarray], None],
    worker_run: Callable[[tuple[str, FaceSample]], Any],
) -> Iterator[Any]:
    """Synthesize ``pending`` on Ray actors; yields one ``SynthEvent`` per identity.

    The pipeline hands in its worker functions (a local worker process runs the same two), so
    this module does not import the pipeline that imports it.

    Args:
        pending: ``(identity name, source face)`` still to do.
        cfg: the job's :class:`~mvface.synth.pipeline.SynthConfig` (``workers`` = actors).
        cameras: ``(V, 25)`` rig labels shared by every identity.
        address: a running cluster's address (``"auto"`` to join it); ``None`` starts a local
            Ray with ``cfg.workers`` CPUs for this job and shuts it down afterwards.
        worker_init: ``worker_init(cfg, cameras)`` sets up an actor (its backend and writer),
            once.
        worker_run: ``worker_run((name, face))`` synthesizes one identity on a set-up actor and
            returns its ``SynthEvent``. Both must be importable module functions (Ray pickles
            them by name).
    """
    ray = _import_ray()
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(num_cpus=cfg.workers, include_dashboard=False, log_to_driver=False)
        else:
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError:
                # Ray's own message names its `--address` flag, not mvface's option
                raise NotAvailableError(
                    f"no running Ray cluster found at --ray-address {address!r}: start one with "
                    "`ray start --head` (then use --ray-address auto), or leave out --ray-address "
                    "to run a local Ray for this job"
                ) from None
    try:

        @ray.remote(num_cpus=1)
        class Worker:
            def __init__(self) -> None:
                worker_init(cfg, cameras)

            def run(self, item: tuple[str, FaceSample]) -> Any:
                return worker_run(item)

        n = min(cfg.workers, len(pending))
        actors = [Worker.remote() for _ in range(n)]  # type: ignore[attr-defined]
        pool = ActorPool(actors)
        yield from pool.map_unordered(lambda actor, item: actor.run.remote(item), pending)
    finally:
        if started_here:
            ray.shutdown()
