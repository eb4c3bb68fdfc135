"""The speed users get: ``mvface.load()`` and ``mvface detect`` on their default engine, with peers.

``mvface bench inference`` times each model's ``predict`` on both engines; this measures the two
paths a user runs, as they come out of the box, against the peers through the same paths, in
one run (kind ``engine``):

(a) ``mvface.load(NAME)`` (default engine: ONNX Runtime on the CPU), ``FaceLandmarker.predict``
    of one face per call on one thread: ms/face of the default model ``fast`` vs ``3ddfa-v2``
    (goal: ratio <= 1.0), with the PyTorch-eager engine (``engine="torch"``) beside them; then
    the model's ``predict`` of all ``--faces`` faces per call on two threads: faces/s of ``fast``
    vs dlib's 68-point predictor (goal: >= 2x). Calls interleaved round robin
    (:func:`mvface.bench.timing.time_interleaved`), medians.
(b) ``mvface detect FOLDER`` end to end (a fresh process: start-up, model load, decoding, face
    detection, landmarks, ``detections.json``) on the 300-W HELEN test images, one thread
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENCV_FOR_THREADS_NUM`` = 1; the decoding
    thread comes on top): images/s of the default command vs ``--model dlib --detector
    dlib-hog`` (goal: >= 2x) and vs ``--engine torch`` (goal: >= 1.5x). The commands run in
    turn, ``--rounds`` times (median wall time); ``--limit`` takes the first N images only.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_engine.py --results results
    python benchmarks/bench_engine.py --limit 100 --rounds 1 --repeats 50   # a quicker run
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import mvface
from mvface.bench.faces import FaceSet, load_faces
from mvface.bench.machine import load_average, machine_info
from mvface.bench.models import default_shared_root, default_weights
from mvface.bench.results import BenchResult, ResultTable, record_run
from mvface.bench.timing import median, set_threads, time_interleaved
from mvface.data.image import IMAGE_SUFFIXES
from mvface.errors import NotAvailableError
from mvface.models import DEFAULT_MODEL

#: The peer of the per-face goal and of the batched goal.
PEER_PER_FACE, PEER_BATCHED = "3ddfa-v2", "dlib"

#: Environment of the ``mvface detect`` processes: one thread for torch, BLAS and OpenCV.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENCV_FOR_THREADS_NUM": "1"}


def landmarkers(shared: Path, threads: int) -> dict[str, mvface.FaceLandmarker]:
    """The (a) contestants, loaded after the thread count is set (a session keeps its own)."""
    set_threads(threads)
    weights = default_weights(PEER_PER_FACE, shared)
    out = {
        f"{DEFAULT_MODEL}": mvface.load(),
        f"{DEFAULT_MODEL} (torch)": mvface.load(engine="torch"),
    }
    if weights is not None:
        out[PEER_PER_FACE] = mvface.load(PEER_PER_FACE, weights=weights)
        out[f"{PEER_PER_FACE} (torch)"] = mvface.load(
            PEER_PER_FACE, weights=weights, engine="torch"
        )
    try:
        out[PEER_BATCHED] = mvface.load(PEER_BATCHED)
    except NotAvailableError as exc:
        print(f"  {PEER_BATCHED}: not available ({exc})")
    return out


def time_load_path(args: argparse.Namespace, faces: FaceSet) -> list[dict[str, Any]]:
    """(a): ms/face at 1 thread (one face per call), faces/s at 2 threads (all per call)."""
    rows: list[dict[str, Any]] = []
    one = landmarkers(args.shared, 1)

    def single(lm: mvface.FaceLandmarker) -> Any:
        return lambda i: lm.predict(faces.images[i % len(faces)], faces.boxes[i % len(faces)][None])

    t1 = time_interleaved({k: single(lm) for k, lm in one.items()}, args.repeats, args.warmup)
    two = landmarkers(args.shared, 2)

    def batched(lm: mvface.FaceLandmarker) -> Any:
        return lambda i: lm.model.predict(faces.images, faces.boxes)

    t2 = time_interleaved(
        {k: batched(lm) for k, lm in two.items()}, args.batch_repeats, max(1, args.warmup // 10)
    )
    set_threads(1)
    for name, lm in one.items():
        rows.append(
            {
                "model": name,
                "engine": lm.engine,
                "ms_per_face": 1000 * median(t1[name]),
                "faces_per_s": len(faces) / median(t2[name]),
            }
        )
    return rows


def image_folder(root: Path, limit: int | None, work: Path) -> tuple[Path, int]:
    """``root`` itself, or a folder of links to its first ``limit`` images (name order)."""
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is None or limit >= len(images):
        return root, len(images)
    folder = work / "images"
    folder.mkdir(parents=True)
    for path in images[:limit]:
        (folder / path.name).symlink_to(path.resolve())
    return folder, limit


#: (b)'s name of the command of another mvface source tree (``--baseline-src``).
BASELINE = "mvface detect of --baseline-src"


def detect_commands(
    folder: Path, out: Path, baseline_src: Path | None = None
) -> dict[str, list[str]]:
    """(b)'s command lines: the default, dlib's, the PyTorch-eager engine and, given another
    mvface source tree (e.g. ``git worktree add /tmp/old REV``), its default ``detect``."""
    base = [sys.executable, "-m", "mvface", "detect", str(folder), "-q"]
    commands = {
        "mvface detect (default)": [*base, "--out", str(out / "default")],
        "--model dlib --detector dlib-hog": [
            *base, "--out", str(out / "dlib"), "--model", "dlib", "--detector", "dlib-hog",
        ],
        "--engine torch": [*base, "--out", str(out / "torch"), "--engine", "torch"],
    }  # fmt: skip
    if baseline_src is not None:
        # an older tree may lack ``python -m mvface``: call its CLI's app directly
        run_app = (
            "import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from mvface.cli.main import app; app()"
        )
        commands[BASELINE] = [
            sys.executable, "-c", run_app, str(baseline_src / "src"),
            "detect", str(folder), "-q", "--out", str(out / "baseline"),
        ]  # fmt: skip
    return commands


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, exit status and last stderr line (on failure) of one command."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    tail = done.stderr.strip().splitlines()[-1] if done.returncode and done.stderr.strip() else ""
    return seconds, done.returncode, tail


def time_detect(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], int]:
    """(b): median wall seconds of each command over ``args.rounds`` rounds (in turn), and of
    the same command on the first image alone (start-up, model load, one image)."""
    folder, count = image_folder(args.images, args.limit, work)
    first, _ = image_folder(args.images, 1, work / "first")
    env = {**os.environ, **ONE_THREAD}
    commands = detect_commands(folder, work / "out", args.baseline_src)
    startups = detect_commands(first, work / "out-first", args.baseline_src)
    # the first default run builds the ONNX graphs into the cache: done once before timing
    _timed(startups["mvface detect (default)"], env)
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    startup: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, int] = {}
    for round_index in range(args.rounds):
        for name, command in commands.items():
            startup[name].append(_timed(startups[name], env)[0])
            elapsed, codes[name], tail = _timed(command, env)
            seconds[name].append(elapsed)
            print(
                f"  round {round_index + 1}: {name}: {elapsed:.1f} s ({startup[name][-1]:.1f} s "
                f"for one image) {tail}"
            )
    rows = []
    for name, times in seconds.items():
        total, alone = statistics.median(times), statistics.median(startup[name])
        ran = codes[name] in (0, 1)  # 1: some images failed (listed), the rest done
        rows.append(
            {
                "command": name,
                "seconds": total,
                "images_per_s": count / total if ran else None,
                "startup_s": alone,
                "steady_images_per_s": (
                    (count - 1) / (total - alone) if ran and total > alone else None
                ),
                "exit": codes[name],
            }
        )
    return rows, count


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _get(row: dict[str, Any] | None, key: str) -> float | None:
    return None if row is None or row[key] is None else float(row[key])


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def goals(
    load_rows: list[dict[str, Any]], detect_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The four goals of the run (``met`` ``None``: not measured)."""
    by_model = {r["model"]: r for r in load_rows}
    by_command = {r["command"]: r for r in detect_rows}
    ours = by_model.get(DEFAULT_MODEL)
    out: list[dict[str, Any]] = []

    def goal(text: str, a: float | None, b: float | None, unit: str, ok: Any) -> None:
        r = _ratio(a, b)
        measured = "not measured" if r is None else f"{a:.2f} vs {b:.2f} {unit} (ratio {r:.2f})"
        out.append({"goal": text, "measured": measured, "met": None if r is None else ok(r)})

    peer = by_model.get(PEER_PER_FACE)
    goal(
        f"mvface.load() {DEFAULT_MODEL} ms/face <= {PEER_PER_FACE}'s (same path, 1 thread)",
        _get(ours, "ms_per_face"),
        _get(peer, "ms_per_face"),
        "ms",
        lambda r: r <= 1.0,
    )
    dlib = by_model.get(PEER_BATCHED)
    goal(
        f"mvface.load() {DEFAULT_MODEL} batched faces/s >= 2x dlib's (2 threads)",
        _get(ours, "faces_per_s"),
        _get(dlib, "faces_per_s"),
        "faces/s",
        lambda r: r >= 2.0,
    )
    default = by_command.get("mvface detect (default)")
    others = [("--model dlib --detector dlib-hog", 2.0), ("--engine torch", 1.5)]
    if BASELINE in by_command:
        others.append((BASELINE, 1.5))
    for name, target in others:
        other = by_command.get(name)
        what = name if name == BASELINE else f"`mvface detect {name}`"
        goal(
            f"mvface detect images/s >= {target:g}x {what} (1 thread)",
            _get(default, "images_per_s"),
            _get(other, "images_per_s"),
            "images/s",
            lambda r, t=target: r >= t,
        )
    return out


def result(
    args: argparse.Namespace,
    load_rows: list[dict[str, Any]],
    detect_rows: list[dict[str, Any]],
    faces: str,
    images: int,
    machine: dict[str, Any],
    notes: list[str],
) -> BenchResult:
    """The run as a :class:`~mvface.bench.results.BenchResult` (kind ``engine``)."""
    by_model = {r["model"]: r for r in load_rows}
    peer, dlib = by_model.get(PEER_PER_FACE), by_model.get(PEER_BATCHED)
    load_columns = [
        "mvface.load(...)",
        "engine",
        "ms/face, 1 thread",
        f"÷ {PEER_PER_FACE}",
        f"faces/s, {args.faces} per call, 2 threads",
        f"÷ {PEER_BATCHED}",
    ]
    load_table = [
        [
            r["model"],
            r["engine"],
            r["ms_per_face"],
            _ratio(r["ms_per_face"], _get(peer, "ms_per_face")),
            r["faces_per_s"],
            _ratio(r["faces_per_s"], _get(dlib, "faces_per_s")),
        ]
        for r in load_rows
    ]
    default = next((r for r in detect_rows if r["command"] == "mvface detect (default)"), None)
    detect_columns = [
        "command",
        "seconds (median)",
        "images/s",
        "default ÷ this",
        "one image alone (s)",
        "images/s after start-up",
        "default ÷ this, after start-up",
        "exit",
    ]
    detect_table = [
        [
            r["command"],
            r["seconds"],
            r["images_per_s"],
            _ratio(_get(default, "images_per_s"), r["images_per_s"]),
            r["startup_s"],
            r["steady_images_per_s"],
            _ratio(_get(default, "steady_images_per_s"), r["steady_images_per_s"]),
            r["exit"],
        ]
        for r in detect_rows
    ]
    return BenchResult(
        kind="engine",
        title="The speed users get: mvface.load() and mvface detect on their default engine",
        command="python benchmarks/bench_engine.py " + " ".join(sys.argv[1:]),
        machine=machine,
        tables=[
            ResultTable(
                name=(
                    f"mvface.load(NAME) as users call it. Faces: {faces}. ms/face: "
                    "FaceLandmarker.predict of one face per call, median of "
                    f"{args.repeats} calls after {args.warmup} warm-up rounds; faces/s: the "
                    f"model's predict of all {args.faces} faces per call, median of "
                    f"{args.batch_repeats} calls. All interleaved round robin in one process."
                ),
                columns=load_columns,
                rows=load_table,
                digits={load_columns[4]: 1},
            ),
            ResultTable(
                name=(
                    f"`mvface detect FOLDER` end to end on {images} HELEN test images (a fresh "
                    "process each: start-up, model load, decoding, face detection, landmarks, "
                    "detections.json), one thread (OMP/MKL/OpenCV = 1; plus the decoding "
                    f"thread); median of {args.rounds} round(s), the commands in turn. 'After "
                    "start-up': (images - 1) / (seconds - seconds of the same command on the "
                    "first image alone)."
                ),
                columns=detect_columns,
                rows=detect_table,
                summary=False,
            ),
        ],
        arguments={k: _plain(v) for k, v in vars(args).items() if k != "results"},
        goals=goals(load_rows, detect_rows),
        notes=notes,
    )


def main() -> None:
    shared = default_shared_root()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=shared)
    parser.add_argument(
        "--images", type=Path, default=shared / "data" / "300w" / "helen_testset",
        help="folder for (b) and the faces of (a) (.pts beside the images)",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, default=None, help="(b): the first N images only")
    parser.add_argument("--rounds", type=int, default=2, help="(b): runs of each command")
    parser.add_argument("--repeats", type=int, default=200, help="(a): timed one-face calls")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--faces", type=int, default=16, help="(a): faces per batched call")
    parser.add_argument("--batch-repeats", type=int, default=30)
    parser.add_argument("--skip-detect", action="store_true", help="measure (a) only")
    parser.add_argument(
        "--baseline-src", type=Path, default=None,
        help="(b): also time the default detect of this mvface source tree (a git worktree)",
    )  # fmt: skip
    parser.add_argument("--results", default="", help="write RESULTS/engine/<UTC time>.json")
    args = parser.parse_args()
    started = time.perf_counter()
    machine = machine_info()
    print(f"machine: {machine.describe()}")
    faces = load_faces(args.images, args.faces)
    print(f"(a) mvface.load(): {faces.source}")
    load_rows = time_load_path(args, faces)
    for r in load_rows:
        print(
            f"  {r['model']:<18} {r['engine']:<6} {r['ms_per_face']:7.2f} ms/face, "
            f"{r['faces_per_s']:7.1f} faces/s batched (2 threads)"
        )
    detect_rows: list[dict[str, Any]] = []
    count = 0
    if not args.skip_detect:
        print(f"(b) mvface detect {args.images} ...")
        with tempfile.TemporaryDirectory(prefix="mvface-bench-engine-") as work:
            detect_rows, count = time_detect(args, Path(work))
        for r in detect_rows:
            print(
                f"  {r['command']:<34} {r['seconds']:6.1f} s, {r['images_per_s']} images/s "
                f"({r['startup_s']:.1f} s for one image), exit {r['exit']}"
            )
    load_end = load_average()
    notes = [
        f"Load average (1 / 5 / 15 min) at the start {machine.load}, at the end {load_end} on "
        f"{machine.cpus} CPUs (a shared machine: ratios within the run are what "
        "count).",
        f"Total benchmark time {time.perf_counter() - started:.0f} s.",
    ]
    run = result(args, load_rows, detect_rows, faces.source, count, machine.to_dict(), notes)
    for g in run.goals:
        print(f"  goal: {g['goal']}: {g['measured']} -> {g['met']}")
    if args.results:
        path, page = record_run(run, args.results)
        print(f"wrote {path}; regenerated {page}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
