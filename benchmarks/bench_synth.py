"""Speed, memory and realism of the synthetic-data job (``mvface synth``).

Two measurements, both on this machine in the same run:

1. **Speed and memory** (goals: >= 128 views/s, <= 4 s per identity of 512 views at 256 px,
   <= 1.5 GB per worker). :func:`mvface.synth.pipeline.run_synth` is run end to end on the first
   ``--speed-identities`` faces of ``--source`` (AFW), once with ``workers=1`` and once with
   ``workers=2``, each in a fresh subprocess into an empty folder, so the time includes
   everything a user waits for: reading and cropping the source, building the head (MediaPipe
   mesh, proxy, texture), rendering, landmark transfer, JPEG encoding, atomic writes and the
   manifest, plus backend creation and (2 workers) the spawn of the worker processes. Seconds
   per identity = wall time / identities written; views/s = views written / wall time. The
   rate after start-up is printed as well: the identities finished after the first ``workers``
   ones, over the time between those finishes (process start-up, imports and backend creation
   drop out). Peak memory: ``ru_maxrss`` of the job process (``RUSAGE_SELF``) and of its
   largest reaped child (``RUSAGE_CHILDREN``: the largest worker for ``workers=2``).
2. **Realism**: an independent detector (3DDFA-V2 from ``--weights`` when the folder exists,
   else dlib) is run on synthesized views (``--realism-identities`` AFW identities x
   ``--realism-views`` views of the paper rig at ``--size`` px) with the canonical box of the
   transferred landmarks (:func:`mvface.data.record.landmark_box`, the same gt-box crop the
   real-face number uses). Its NME (AFLW2000-3D protocol: sqrt(w*h) of the ground-truth box,
   percent) against the transferred landmarks is reported per |yaw| bin, and compared with
   the same detector's NME on the first ``--real-limit`` AFLW2000-3D dev faces measured in the
   same run (:func:`mvface.eval.runner.evaluate`, gt crop). Goal: synthetic / real <= 1.5 per
   bin. Views listed in ``hidden_views`` or whose transferred landmarks leave the image are
   skipped.

   ``--realism-source aflw`` builds the heads from near-frontal AFLW2000-3D dev faces
   (``|yaw| <= --aflw-max-yaw``, all 68 points visible, so lifting them onto the head is
   right) instead of AFW: their landmarks are in the same convention as the real faces they
   are compared with (3D-consistent jaw, the convention 3DDFA-V2 learned), so the ratio
   measures the rendering alone, not 300-W's contour-jaw labels. No training is involved (the
   dev half stays validation-only).

   Yaw used for the bins: the mesh backend builds every head in the face's own frame (x along
   the eye line, z out of the face; :func:`mvface.synth.face_mesh.estimate_source_camera`), so
   the rig camera's yaw (:func:`mvface.synth.rig.camera_yaw_pitch` of the view's cam2world) is
   the head's yaw as that view sees it -- the same quantity AFLW2000-3D's yaw bins use (head
   pose relative to the camera). This is the primary table ("face yaw"). A second table bins
   by the camera's yaw relative to the source photo's estimated camera (view yaw - source yaw,
   i.e. how far the view turned away from the photographed pose); with the paper rig (yaw
   within +-45 deg) only this one can reach the 60-90 bin.

Both measurements run once per head variant, on the same faces, cameras and machine in one
run, so old and new compare directly: per ``--backend`` (``both``, the default: ``mesh``, the
egg, then ``head``, the whole head of :mod:`mvface.synth.whole_head`) and, for ``mesh``, per
``--fill`` (``both``, the default: ``none``, the texture before the unseen side was filled, then
``mirror``); ``head`` runs with the last of the fills.

Usage::

    python benchmarks/bench_synth.py                       # defaults below, ~5-8 min on 2 cores
    python benchmarks/bench_synth.py --speed-identities 2 --realism-identities 4 --real-limit 100
    python benchmarks/bench_synth.py --results results   # results/synth/<UTC time>.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvface.bench.machine import cpu_model, machine_info
from mvface.bench.results import BenchResult, ResultTable, record_run

SHARED = Path(__file__).resolve().parents[2] / "shared"


# -- 1: speed and memory -----------------------------------------------------------------------


def speed_child(args: argparse.Namespace) -> None:
    """(In a fresh process) one run_synth job; prints a JSON line with time and peak memory."""
    from mvface.synth.config import SynthConfig
    from mvface.synth.pipeline import run_synth

    times: list[float] = []
    cfg = SynthConfig(
        source=args.source,
        out=args.child_out,
        views=args.views,
        size=args.size,
        limit=args.speed_identities,
        workers=args.child_workers,
        fill=args.child_fill,
        backend=args.child_backend,
    )
    start = time.perf_counter()
    summary = run_synth(cfg, lambda event: times.append(time.perf_counter() - start))
    wall = time.perf_counter() - start
    kib = 1024.0  # ru_maxrss is in KiB on Linux
    print(
        json.dumps(
            {
                "seconds": wall,
                "done": len(summary.done),
                "skipped": summary.skipped,
                "failed": summary.failed,
                "event_times": times,
                "self_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
                "child_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib,
            }
        )
    )


def run_speed(args: argparse.Namespace, workers: int, backend: str, fill: str) -> dict[str, Any]:
    """Run :func:`speed_child` in a subprocess (``workers``, ``backend``, ``fill``)."""
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        child = [
            sys.executable,
            __file__,
            "--child-speed",
            "--child-workers",
            str(workers),
            "--child-out",
            str(Path(tmp) / "out"),
            "--source",
            str(args.source),
            "--views",
            str(args.views),
            "--size",
            str(args.size),
            "--speed-identities",
            str(args.speed_identities),
            "--child-fill",
            fill,
            "--child-backend",
            backend,
        ]
        run = subprocess.run(child, check=True, capture_output=True, text=True)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    done = max(out["done"], 1)
    out["workers"] = workers
    out["backend"] = backend
    out["fill"] = fill
    out["s_per_identity"] = out["seconds"] / done
    out["views_per_s"] = out["done"] * args.views / out["seconds"]
    t = out["event_times"]
    out["first_identity_s"] = t[0] if t else float("nan")
    # after start-up: identities finished after the first `workers` ones, over their time span
    if len(t) > workers and t[-1] > t[workers - 1]:
        n_after = len(t) - workers
        out["steady_s_per_identity"] = (t[-1] - t[workers - 1]) / n_after
        out["steady_views_per_s"] = n_after * args.views / (t[-1] - t[workers - 1])
    else:
        out["steady_s_per_identity"] = out["steady_views_per_s"] = float("nan")
    # a worker's peak: the largest child with workers > 1, the job process itself otherwise
    out["worker_peak_mib"] = out["child_peak_mib"] if workers > 1 else out["self_peak_mib"]
    return out


# -- 2: realism --------------------------------------------------------------------------------


def make_detector(args: argparse.Namespace) -> tuple[Any, str, str | None]:
    """3DDFA-V2 from the shared weights when present, else dlib."""
    from mvface.models import create_model

    weights = Path(args.weights)
    if args.detector in ("auto", "3ddfa-v2") and weights.is_dir():
        return create_model("3ddfa-v2", weights=str(weights)), "3ddfa-v2", str(weights)
    if args.detector == "3ddfa-v2":
        raise SystemExit(f"3ddfa-v2 weights not found at {weights}")
    return create_model("dlib"), "dlib", None


def aflw_frontal_sources(args: argparse.Namespace, folder: Path) -> Path:
    """Write near-frontal AFLW2000-3D dev faces as ``.jpg`` + ``.pts`` into ``folder``.

    The first ``2 * --realism-identities`` faces with ``|yaw| <= --aflw-max-yaw`` (the synth
    job may skip some); returns ``folder``.
    """
    import shutil

    from mvface.data.readers import read_dataset
    from mvface.data.readers.pts import write_pts

    folder.mkdir(parents=True, exist_ok=True)
    kept = 0
    for sample in read_dataset("aflw2000-3d", args.aflw_root).samples:
        if sample.pose is None or sample.landmarks is None:
            continue
        if abs(np.degrees(sample.pose[1])) > args.aflw_max_yaw:
            continue
        if not isinstance(sample.image, Path):  # the reader returns paths
            continue
        image = sample.image
        shutil.copyfile(image, folder / image.name)
        write_pts(folder / f"{image.stem}.pts", np.asarray(sample.landmarks)[:, :2])
        kept += 1
        if kept == 2 * args.realism_identities:
            break
    return folder


def synth_realism_set(
    args: argparse.Namespace, source: Path, out: Path, backend: str, fill: str
) -> dict[str, Any]:
    """Synthesize the realism identities (``--realism-rig``) of ``source`` into ``out``."""
    from mvface.synth.config import SynthConfig
    from mvface.synth.pipeline import run_synth

    cfg = SynthConfig(
        source=source,
        out=out,
        views=args.realism_views,
        size=args.size,
        limit=args.realism_identities,
        workers=2,
        rig=args.realism_rig,
        max_yaw_deg=args.realism_max_yaw,
        seed=1,
        fill=fill,  # type: ignore[arg-type]  # one of argparse's choices
        backend=backend,
    )
    summary = run_synth(cfg)
    return {"done": summary.done, "skipped": summary.skipped, "failed": summary.failed}


def score_synthetic(model: Any, root: Path, size: int) -> dict[str, Any]:
    """Detector NME against the transferred landmarks of every usable view under ``root``."""
    from mvface.data.image import load_image
    from mvface.data.readers.synthetic import list_identities, load_identity
    from mvface.data.record import landmark_box
    from mvface.eval.protocols import aflw2000_3d_protocol
    from mvface.synth.rig import camera_yaw_pitch

    preds, gts, yaw_face, yaw_rel = [], [], [], []
    n_views = n_hidden = n_outside = 0
    seconds = 0.0
    for folder in list_identities(root):
        ident = load_identity(folder)
        hidden = set(ident.meta.get("hidden_views", []))
        c2w = torch.from_numpy(ident.cameras[:, :16].reshape(-1, 4, 4))
        yaw = np.degrees(camera_yaw_pitch(c2w)[:, 0].numpy())
        src = np.load(folder / "source_camera.npy").astype(np.float64)
        src_c2w = torch.from_numpy(src[:16].reshape(1, 4, 4))
        src_yaw = float(np.degrees(camera_yaw_pitch(src_c2w)[0, 0].item()))
        keep = []
        for v in range(ident.num_views):
            n_views += 1
            lm = ident.landmarks[v]
            if v in hidden:
                n_hidden += 1
            elif (lm < -0.5).any() or (lm > size - 0.5).any():
                n_outside += 1
            else:
                keep.append(v)
        if not keep:
            continue
        images = [load_image(ident.image_files[v]) for v in keep]
        gt = ident.landmarks[keep]
        start = time.perf_counter()
        pred = model.predict(images, landmark_box(gt))
        seconds += time.perf_counter() - start
        preds.append(np.asarray(pred.points)[..., :2])
        gts.append(gt)
        yaw_face.append(yaw[keep])
        yaw_rel.append(yaw[keep] - src_yaw)
    p, g = np.concatenate(preds), np.concatenate(gts)
    face = aflw2000_3d_protocol(p, g, np.concatenate(yaw_face), crop="landmark_box of gt")
    rel = aflw2000_3d_protocol(p, g, np.concatenate(yaw_rel), crop="landmark_box of gt")
    return {
        "face": face,
        "relative": rel,
        "views": n_views,
        "hidden": n_hidden,
        "outside": n_outside,
        "scored": len(p),
        "ms_per_face": 1000 * seconds / max(len(p), 1),
    }


def score_real(args: argparse.Namespace, model: Any, name: str, weights: str | None) -> Any:
    """The same detector on the first ``--real-limit`` AFLW2000-3D dev faces (gt crop)."""
    from mvface.eval.runner import EvalConfig, evaluate

    cfg = EvalConfig(
        dataset="aflw2000-3d",
        root=args.aflw_root,
        model=name,
        weights=weights,
        limit=args.real_limit,
        crop="gt",
    )
    return evaluate(cfg, model=model, progress=False)


def score_sources(args: argparse.Namespace, model: Any, synth_root: Path) -> dict[str, Any]:
    """Control: the detector on real AFW photos against their 300-W annotations.

    Separates the label convention (300-W contour jaw points, carried onto every view by the
    transfer, against the 3D-consistent points 3DDFA-V2 was trained on) from rendering realism:
    (a) the realism identities' own aligned source crops (``source.jpg``, the photo each head
    was built from) with their crop landmarks, binned by the estimated source camera's yaw;
    (b) the first ``--control-limit`` AFW faces in their original photos (no yaw: pooled).
    """
    from mvface.data.image import load_image
    from mvface.data.readers import read_dataset
    from mvface.data.readers.synthetic import list_identities, load_identity
    from mvface.data.record import landmark_box
    from mvface.eval.protocols import aflw2000_3d_protocol
    from mvface.synth.rig import camera_yaw_pitch

    preds, gts, yaws = [], [], []
    for folder in list_identities(synth_root):
        meta = load_identity(folder).meta
        affine = np.asarray(meta["crop_affine"], np.float64)
        lm = np.asarray(meta["source_landmarks"], np.float64) @ affine[:, :2].T + affine[:, 2]
        image = load_image(folder / "source.jpg")
        preds.append(np.asarray(model.predict(image, landmark_box(lm)[None]).points)[0, :, :2])
        gts.append(lm)
        src = np.load(folder / "source_camera.npy").astype(np.float64)
        c2w = torch.from_numpy(src[:16].reshape(1, 4, 4))
        yaws.append(float(np.degrees(camera_yaw_pitch(c2w)[0, 0].item())))
    crops = aflw2000_3d_protocol(np.stack(preds), np.stack(gts), np.asarray(yaws))
    dataset = read_dataset("pts", args.source, limit=args.control_limit)
    preds, gts = [], []
    for sample in dataset.samples:
        if sample.landmarks is None or len(sample.landmarks) != 68:
            continue
        image = sample.image if isinstance(sample.image, np.ndarray) else load_image(sample.image)
        gt = np.asarray(sample.landmarks, np.float64)[:, :2]
        preds.append(np.asarray(model.predict(image, landmark_box(gt)[None]).points)[0, :, :2])
        gts.append(gt)
    photos = aflw2000_3d_protocol(np.stack(preds), np.stack(gts), np.zeros(len(gts)))
    return {"crops": crops, "photos": photos}


# -- report ------------------------------------------------------------------------------------


SPEED_COLUMNS = [
    "backend",
    "fill",
    "workers",
    "identities",
    "wall s",
    "first identity done at (s)",
    "s / identity (goal <= 4)",
    "views/s (goal >= 128)",
    "after start-up: s / identity",
    "after start-up: views/s",
    "peak RSS per worker (GiB; goal <= 1.5 GB)",
    "job process peak (GiB)",
]
SPEED_DIGITS = {
    "wall s": 1,
    "first identity done at (s)": 1,
    "views/s (goal >= 128)": 0,
    "after start-up: views/s": 0,
}
REALISM_COLUMNS = [
    "yaw bin",
    "synthetic views",
    "synthetic NME",
    "real faces",
    "real NME",
    "synthetic / real (goal <= 1.5)",
]
REALISM_DIGITS = {REALISM_COLUMNS[2]: 3, REALISM_COLUMNS[4]: 3}


def fmt(x: float, spec: str = ".3f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(SHARED / "data" / "300w" / "afw"))
    parser.add_argument("--aflw-root", default=str(SHARED / "data" / "aflw2000_3d_dev"))
    parser.add_argument("--weights", default=str(SHARED / "models" / "3ddfa_v2"))
    parser.add_argument("--detector", default="auto", choices=("auto", "3ddfa-v2", "dlib"))
    parser.add_argument("--views", type=int, default=512, help="views per identity (speed)")
    parser.add_argument("--size", type=int, default=256, help="view side in pixels")
    parser.add_argument("--speed-identities", type=int, default=4)
    parser.add_argument("--realism-identities", type=int, default=8)
    parser.add_argument("--realism-views", type=int, default=64)
    parser.add_argument(
        "--realism-source",
        default="afw",
        choices=("afw", "aflw"),
        help="heads from --source (300-W labels) or from near-frontal AFLW2000-3D dev faces",
    )
    parser.add_argument("--aflw-max-yaw", type=float, default=25.0)
    parser.add_argument("--realism-rig", default="paper", choices=("paper", "random", "grid"))
    parser.add_argument(
        "--realism-max-yaw", type=float, default=45.0, help="yaw range of random/grid rigs"
    )
    parser.add_argument("--real-limit", type=int, default=200)
    parser.add_argument("--control-limit", type=int, default=100)
    parser.add_argument(
        "--fill",
        default="both",
        choices=("both", "mirror", "none"),
        help="the mesh backend's fill of the unseen side; both: none (old) then mirror",
    )
    parser.add_argument(
        "--backend",
        default="both",
        choices=("both", "mesh", "head"),
        help="head backend; both: mesh (the egg, every --fill) then head (the whole head, the "
        "last --fill)",
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-realism", action="store_true")
    parser.add_argument(
        "--results", default="", help="write the run to RESULTS/synth/<UTC time>.json"
    )
    parser.add_argument("--child-speed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--child-fill", default="mirror", help=argparse.SUPPRESS)
    parser.add_argument("--child-backend", default="mesh", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_speed:
        speed_child(args)
        return

    started = time.perf_counter()
    header = (
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), python {platform.python_version()}"
    )
    print(header)
    tables: list[ResultTable] = []
    notes: list[str] = []
    fills = ["none", "mirror"] if args.fill == "both" else [args.fill]
    variants = [("mesh", fill) for fill in fills] if args.backend in ("both", "mesh") else []
    if args.backend in ("both", "head"):
        variants.append(("head", fills[-1]))
    last = variants[-1]

    if not args.skip_speed:
        rows = [run_speed(args, w, backend, fill) for backend, fill in variants for w in (1, 2)]
        print(
            f"\nspeed: {args.views} views at {args.size} px per identity, first "
            f"{args.speed_identities} faces of {args.source}, end to end (run_synth)"
        )
        speed = ResultTable(
            f"**Speed**: {args.views} views at {args.size} px per identity, "
            f"{args.speed_identities} AFW faces, run_synth end to end (fresh process, "
            "backend creation and worker spawn included).",
            SPEED_COLUMNS,
            [],
            SPEED_DIGITS,
        )
        tables.append(speed)
        for r in rows:
            if r["skipped"] or r["failed"]:
                print(f"  workers={r['workers']}: skipped {r['skipped']} failed {r['failed']}")
            print(
                f"  backend={r['backend']} fill={r['fill']} workers={r['workers']}: "
                f"{r['done']} identities in "
                f"{r['seconds']:.1f} s: "
                f"{r['s_per_identity']:.2f} s/identity (goal <= 4), {r['views_per_s']:.0f} views/s "
                f"(goal >= 128); first identity done at {r['first_identity_s']:.1f} s, after "
                f"start-up {fmt(r['steady_s_per_identity'], '.2f')} s/identity = "
                f"{fmt(r['steady_views_per_s'], '.0f')} views/s; peak RSS per worker "
                f"{r['worker_peak_mib'] / 1024:.2f} GiB "
                f"(goal <= 1.5 GB), job process {r['self_peak_mib'] / 1024:.2f} GiB"
            )
            speed.rows.append(
                [
                    r["backend"],
                    r["fill"],
                    r["workers"],
                    r["done"],
                    r["seconds"],
                    r["first_identity_s"],
                    r["s_per_identity"],
                    r["views_per_s"],
                    r["steady_s_per_identity"],
                    r["steady_views_per_s"],
                    r["worker_peak_mib"] / 1024,
                    r["self_peak_mib"] / 1024,
                ]
            )
        ratio = rows[-1]["views_per_s"] / rows[-2]["views_per_s"]
        steady = rows[-1]["steady_views_per_s"] / rows[-2]["steady_views_per_s"]
        print(
            f"  ratio views/s 2 workers / 1 worker: {ratio:.2f} end to end, "
            f"{fmt(steady, '.2f')} after start-up"
        )
        notes.append(
            f"views/s ratio 2 workers / 1 worker ({' '.join(last)}): {ratio:.2f} end to end, "
            f"{fmt(steady, '.2f')} after start-up"
        )

    if not args.skip_realism:
        from mvface.eval.protocols import YAW_BINS

        model, name, weights = make_detector(args)
        runs: dict[tuple[str, str], tuple[dict[str, Any], float, dict[str, Any]]] = {}
        with tempfile.TemporaryDirectory(prefix="bench_synth_real_") as tmp:
            source = Path(args.source)
            if args.realism_source == "aflw":
                source = aflw_frontal_sources(args, Path(tmp) / "aflw_frontal")
            for backend, fill in variants:
                out = Path(tmp) / f"out-{backend}-{fill}"
                t0 = time.perf_counter()
                made = synth_realism_set(args, source, out, backend, fill)
                t_synth = time.perf_counter() - t0
                runs[backend, fill] = (made, t_synth, score_synthetic(model, out, args.size))
            control = score_sources(args, model, out)
        real = score_real(args, model, name, weights).result
        rig_words = (
            "paper-rig"
            if args.realism_rig == "paper"
            else f"{args.realism_rig}-rig (|yaw| <= {args.realism_max_yaw:g} deg)"
        )
        source_words = (
            f"AFLW2000-3D dev (|yaw| <= {args.aflw_max_yaw:g} deg, their own labels)"
            if args.realism_source == "aflw"
            else "AFW (300-W labels)"
        )
        for (backend, fill), (made, t_synth, syn) in runs.items():
            print(
                f"\nrealism, backend {backend}, fill {fill}: detector {name} on "
                f"{len(made['done'])} identities x "
                f"{args.realism_views} {rig_words} views at {args.size} px (synthesized in "
                f"{t_synth:.0f} s); {syn['scored']} of {syn['views']} views scored "
                f"({syn['hidden']} hidden, {syn['outside']} with landmarks outside the view); "
                f"real: first {real.n} AFLW2000-3D dev faces, gt crop"
            )
            realism = (
                f"**Realism, backend `{backend}`, fill `{fill}`**: detector `{name}` (box = "
                "`landmark_box` of the "
                "ground truth on both sides), NME % (AFLW2000-3D normalizer sqrt(w*h) of the "
                "gt box). Synthetic: "
                f"{len(made['done'])} {source_words} identities x {args.realism_views} {rig_words} "
                "views at "
                f"{args.size} px, {syn['scored']} of {syn['views']} views scored ({syn['hidden']} "
                f"hidden, {syn['outside']} with landmarks outside the view skipped), against the "
                f"transferred landmarks. Real: first {real.n} AFLW2000-3D dev faces, against their "
                "ground truth."
            )
            for key, title in (
                (
                    "face",
                    "|yaw| = rig camera yaw in the face's own frame (head yaw seen by the view)",
                ),
                ("relative", "|yaw| = view camera yaw - source photo's camera yaw"),
            ):
                res = syn[key]
                print(f"  bins by {title}")
                table = ResultTable(
                    f"{realism} Bins by {title}.",
                    REALISM_COLUMNS,
                    [],
                    REALISM_DIGITS,
                    summary=key == "face" and (backend, fill) == last,
                )
                tables.append(table)
                for bin_name, _, _ in YAW_BINS:
                    s, r = res.nme_bins[bin_name], real.nme_bins[bin_name]
                    ratio = s / r if np.isfinite(s) and np.isfinite(r) and r > 0 else float("nan")
                    print(
                        f"    {bin_name:>6}: synthetic {fmt(s)} ({res.bin_counts[bin_name]} "
                        f"views)  real {fmt(r)} ({real.bin_counts[bin_name]} faces)  ratio "
                        f"{fmt(ratio, '.2f')}"
                    )
                    table.rows.append(
                        [bin_name, res.bin_counts[bin_name], s, real.bin_counts[bin_name], r, ratio]
                    )
                print(
                    f"    all   : synthetic {fmt(res.nme_mean)}  real {fmt(real.nme_mean)}  ratio "
                    f"{fmt(res.nme_mean / real.nme_mean, '.2f')}"
                )
                table.rows.append(
                    [
                        "all",
                        res.n,
                        res.nme_mean,
                        real.n,
                        real.nme_mean,
                        res.nme_mean / real.nme_mean,
                    ]
                )
        crops, photos = control["crops"], control["photos"]
        bins = ", ".join(
            f"{b} {fmt(crops.nme_bins[b])} ({crops.bin_counts[b]})" for b, _, _ in YAW_BINS
        )
        line1 = (
            f"same detector on the {crops.n} real source crops the heads were built from, vs "
            f"their own landmarks: NME {fmt(crops.nme_mean)} (by source yaw: {bins})"
        )
        line2 = (
            f"same detector on the first {photos.n} real AFW photos vs their 300-W landmarks "
            f"(all yaws pooled): NME {fmt(photos.nme_mean)}; synthetic all / this = "
            f"{fmt(syn['face'].nme_mean / photos.nme_mean, '.2f')}"
        )
        print(f"  control: {line1}\n  control: {line2}")
        notes += [
            f"Control (label convention vs realism; same detector, same normalizer, box = "
            f"`landmark_box` of the ground truth): {line1}",
            f"Control: {line2}",
        ]
    total = time.perf_counter() - started
    print(f"\ntotal benchmark time: {total:.0f} s")
    notes.append(f"Total benchmark time: {total:.0f} s.")
    if args.results:
        run = BenchResult(
            kind="synth",
            title="Synthetic-data job: speed, memory, realism",
            command="python benchmarks/bench_synth.py " + " ".join(sys.argv[1:]),
            machine=machine_info().to_dict(),
            tables=tables,
            arguments={k: v for k, v in vars(args).items() if not k.startswith(("child", "res"))},
            variant=" and ".join(
                [
                    p
                    for p, skip in (("speed", args.skip_speed), ("realism", args.skip_realism))
                    if not skip
                ]
            ),
            notes=notes,
        )
        path, page = record_run(run, args.results)
        print(f"wrote {path}; regenerated {page}")


if __name__ == "__main__":
    main()
