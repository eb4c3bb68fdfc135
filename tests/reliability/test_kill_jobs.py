"""``kill -9`` at random points: a training job and a synthetic-data writing job, then restart.

The random points are drawn from a seed printed in every assertion message, so a failure can be
replayed (set ``MVFACE_KILL_SEED``).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from mvface.data.readers.synthetic import MANIFEST_FILE, list_identities, load_identity
from mvface.train.trainer import read_checkpoint
from train.conftest import tiny_finetune_overrides, write_real, write_synthetic

JOB = Path(__file__).with_name("_jobs.py")
TESTS = Path(__file__).resolve().parents[1]
CKPT = re.compile(r"^step=(\d+)\.ckpt$")


def _seed() -> int:
    return int(os.environ.get("MVFACE_KILL_SEED") or random.SystemRandom().randrange(10**6))


def _start(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(JOB), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _losses(path: Path) -> dict[int, float]:
    if not path.exists():
        return {}
    out: dict[int, float] = {}
    for line in path.read_text().splitlines():
        step, _, loss = line.partition(" ")
        if loss:  # a line cut by the kill has no loss yet
            out[int(step)] = float(loss)
    return out


def _wait_for(predicate: object, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if proc.poll() is not None:
            err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            raise AssertionError(f"job ended (rc {proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _visible_checkpoints(folder: Path) -> dict[int, Path]:
    """Every visible file of the checkpoint folder: each must be a complete checkpoint."""
    found: dict[int, Path] = {}
    for path in folder.iterdir() if folder.is_dir() else []:
        if path.name.startswith("."):
            continue  # a temporary file of a killed write: never under a checkpoint's name
        match = CKPT.match(path.name)
        assert match, f"unexpected file in the checkpoint folder: {path.name}"
        assert read_checkpoint(path)["global_step"] == int(match.group(1))
        found[int(match.group(1))] = path
    return found


def test_training_killed_at_a_random_point_resumes_with_identical_losses(tmp_path: Path) -> None:
    seed = _seed()
    rng = random.Random(seed)
    steps = 8
    real = write_real(tmp_path / "real", 6, seed=1)
    synthetic = write_synthetic(tmp_path / "synthetic", 3, 6, seed=0)
    logs = {k: tmp_path / f"{k}.txt" for k in ("full", "cut", "resumed")}
    go = tmp_path / "killed"
    cut_out = tmp_path / "cut"
    args = tiny_finetune_overrides(real, synthetic, tmp_path / "full", steps)
    reference = _start(
        "train-then-resume", str(logs["full"]), str(logs["resumed"]), str(go), str(cut_out), *args
    )
    cut = _start("train", str(logs["cut"]), *args, f"train.out={cut_out}")

    kill_after = rng.randint(1, steps - 3)  # a logged step; then a random fraction of a step
    delay = rng.uniform(0.0, 0.3)
    _wait_for(lambda: max(_losses(logs["cut"]), default=0) >= kill_after, cut, 300, "the step")
    time.sleep(delay)
    cut.send_signal(signal.SIGKILL)
    assert cut.wait(60) == -signal.SIGKILL, f"seed {seed}: the job finished before the kill"
    before = _visible_checkpoints(cut_out / "checkpoints")  # all complete, none half-written
    resumed_from = max(before, default=0)
    go.touch()
    rc = reference.wait(300)
    assert rc == 0, reference.stderr.read().decode()[-2000:] if reference.stderr else ""

    full_losses, cut_losses = _losses(logs["full"]), _losses(logs["cut"])
    resumed_losses = _losses(logs["resumed"])
    msg = f"seed {seed}: killed after step {kill_after} + {delay:.2f} s, resumed at {resumed_from}"
    assert sorted(full_losses) == list(range(1, steps + 1)), msg
    assert sorted(resumed_losses) == list(range(resumed_from + 1, steps + 1)), msg
    for step, loss in {**cut_losses, **resumed_losses}.items():
        assert loss == full_losses[step], f"{msg}: step {step} {loss!r} != {full_losses[step]!r}"
    after = _visible_checkpoints(cut_out / "checkpoints")
    assert sorted(after) == [steps - 2, steps], msg  # keep_last=2
    assert not [p for p in (cut_out / "checkpoints").iterdir() if p.name.startswith(".")], msg


def _check_dataset(out: Path, msg: str) -> list[str]:
    """No half-written identity visible; the manifest (if any) lists finished ones, once each."""
    finished = [f.name for f in list_identities(out)]
    for entry in out.iterdir():
        if entry.name.startswith("."):
            continue  # the lock, and the temporary folder of the identity being written
        if entry.name == MANIFEST_FILE:
            continue
        assert entry.is_dir() and entry.name in finished, f"{msg}: half-written {entry.name}"
        load_identity(entry)  # every file complete and consistent
    if (out / MANIFEST_FILE).exists():
        listed = [
            i["identity"] for i in json.loads((out / MANIFEST_FILE).read_text())["identities"]
        ]
        assert len(listed) == len(set(listed)) and set(listed) <= set(finished), msg
    return finished


def test_writing_job_killed_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    seed = _seed()
    rng = random.Random(seed)
    out, total = tmp_path / "out", 40
    expected = [f"id{i:03d}" for i in range(total)]
    kills = 0
    for round_ in range(2):
        before = len(list_identities(out)) if out.exists() else 0
        job = _start("write", str(out), "0", str(total))
        deadline = time.monotonic() + 120
        while job.poll() is None and (not out.exists() or len(list_identities(out)) <= before):
            assert time.monotonic() < deadline, f"seed {seed}: no identity written"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere in the next identity or manifest write
        job.send_signal(signal.SIGKILL)
        kills += job.wait(60) == -signal.SIGKILL
        finished = _check_dataset(out, f"seed {seed}, round {round_}")
        assert finished == expected[: len(finished)], f"seed {seed}: {finished}"
    assert kills >= 1, f"seed {seed}: no kill landed before the job finished"

    job = _start("write", str(out), "0", str(total))
    assert job.wait(120) == 0, job.stderr.read().decode()[-2000:] if job.stderr else ""
    assert _check_dataset(out, f"seed {seed}, final") == expected
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert [i["identity"] for i in manifest["identities"]] == expected
    assert sorted(p.name for p in out.iterdir()) == [*expected, MANIFEST_FILE]  # no temp, no lock
