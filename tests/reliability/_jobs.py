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
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any


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


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "train":
        train(args[0], args[1:])
    elif kind == "train-then-resume":
        train_then_resume(args)
    elif kind == "write":
        write(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown job {kind!r}")
