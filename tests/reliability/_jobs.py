"""Jobs the kill tests run in a subprocess (``python _jobs.py KIND ...``) and then ``kill -9``.

* ``train LOSSES OVERRIDE...``: :func:`mvface.train.run` on a tiny recipe, appending one line
  ``"<global step> <loss repr>"`` to ``LOSSES`` after every optimizer step (one thread, so a
  resumed run can repeat the uninterrupted one's losses bit for bit).
Run with the ``tests`` folder on ``PYTHONPATH`` (the tests' own data helpers are used).

* ``train-then-resume FULL_LOG RESUMED_LOG GO_FILE CUT_OUT OVERRIDE...``: the uninterrupted
  reference run, then the resume of the killed run (see :func:`train_then_resume`).
* ``write OUT FIRST COUNT``: a :class:`~mvface.synth.writer.SyntheticWriter` loop writing
  identities ``idFIRST..`` as the pipeline does (skip the finished ones, rebuild the manifest
  after each), under the output lock.
* ``lock-race OUT ROUNDS LOG GO``: append ``ready`` to ``LOG``, wait for the file ``GO``, then
  take :func:`~mvface.synth.writer.output_lock` ``ROUNDS`` times; inside, claim a holder file
  with ``O_EXCL``: a second holder at once appends ``overlap`` to ``LOG``; each acquisition
  appends ``held``.
* ``synth-workers SRC OUT STARTED``: ``run_synth`` with 2 worker processes whose every identity
  writes ``STARTED/<worker pid>`` and then never ends (so the job can be killed mid-identity).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

_STARTED_ENV = "MVFACE_TEST_STARTED_DIR"


def _train_logged(losses: str, overrides: list[str]) -> None:
    import lightning.pytorch as pl

    from mvface.train.config import TrainConfig
    from mvface.train.trainer import run

    class LossLog(pl.Callback):
        def __init__(self, path: str) -> None:
            self.file = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job

        def on_train_batch_end(
            self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, i: int
        ) -> None:
            self.file.write(f"{trainer.global_step} {float(outputs['loss'])!r}\n")
            self.file.flush()

    run(TrainConfig().with_overrides(overrides), callbacks=[LossLog(losses)])


def train(losses: str, overrides: list[str]) -> None:
    """Run a training job, logging every step's exact loss."""
    import torch

    torch.set_num_threads(1)
    _train_logged(losses, overrides)


def train_then_resume(args: list[str]) -> None:
    """``FULL_LOG RESUMED_LOG GO_FILE CUT_OUT OVERRIDE...``: an uninterrupted run, then, once
    ``GO_FILE`` exists (the other job was killed), resume the killed run in ``CUT_OUT``.

    One process does both to pay for the imports once.
    """
    import torch

    torch.set_num_threads(1)
    full_log, resumed_log, go_file, cut_out, *overrides = args
    _train_logged(full_log, overrides)
    while not Path(go_file).exists():
        time.sleep(0.01)
    _train_logged(resumed_log, [*overrides, f"train.out={cut_out}", "train.resume=last"])


def write(out: str, first: int, count: int) -> None:
    """Write identities ``id{first}`` .. ``id{first + count - 1}``, resuming like a synth job."""
    from mvface.synth.writer import SyntheticWriter, output_lock
    from train.conftest import make_identity  # the tests folder is on PYTHONPATH

    with output_lock(Path(out)):
        writer = SyntheticWriter(out, image_format="png")
        writer.remove_stale_temporaries()
        for i in range(first, first + count):
            name = f"id{i:03d}"
            if not writer.is_done(name):
                writer.write(make_identity(name, views=24, seed=i, size=48))
                writer.write_manifest()
        writer.write_manifest()


def lock_race(out: str, rounds: int, log: str, go: str) -> None:
    """Take the output lock ``rounds`` times and log whether anyone else held it meanwhile."""
    from mvface.synth.writer import OutputLockedError, output_lock

    root, holder = Path(out), Path(out) / "holder"
    with open(log, "a", buffering=1) as f:
        f.write("ready\n")
        while not Path(go).exists():  # all racers start together
            time.sleep(0.001)
        for _ in range(rounds):
            try:
                with output_lock(root):
                    try:
                        fd = os.open(holder, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                    except FileExistsError:
                        f.write("overlap\n")
                        continue
                    f.write("held\n")
                    time.sleep(0.001)
                    os.close(fd)
                    holder.unlink()
            except OutputLockedError:
                pass


def _never_ending_identity(*args: Any, **kwargs: Any) -> Any:
    """Stands in for ``synthesize_identity`` in the workers: says it started, then blocks."""
    Path(os.environ[_STARTED_ENV], str(os.getpid())).touch()
    time.sleep(3600)


def synth_workers(source: str, out: str, started: str) -> None:
    """A 2-worker synthesis job whose workers block mid-identity (see the module docstring)."""
    from mvface.synth.config import SynthConfig
    from mvface.synth.pipeline import run_synth

    os.environ[_STARTED_ENV] = started  # the spawned workers inherit it
    run_synth(SynthConfig(source=source, out=out, views=4, size=32, crop_size=64, workers=2))


if __name__ == "__mp_main__" and os.environ.get(_STARTED_ENV):
    # a worker process spawned by `synth-workers` (spawn runs this file as __mp_main__)
    from mvface.synth import pipeline

    pipeline.synthesize_identity = _never_ending_identity  # type: ignore[assignment]


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "train":
        train(args[0], args[1:])
    elif kind == "train-then-resume":
        train_then_resume(args)
    elif kind == "write":
        write(args[0], int(args[1]), int(args[2]))
    elif kind == "lock-race":
        lock_race(args[0], int(args[1]), args[2], args[3])
    elif kind == "synth-workers":
        synth_workers(args[0], args[1], args[2])
    else:
        raise SystemExit(f"unknown job {kind!r}")
