"""What each ingredient of the ``teacher`` model gains, on the AFLW2000-3D dev half and HELEN.

Each member model runs once on ground-truth-box crops (the evaluation runner's ``--crop gt``)
of both benchmarks; the fused predictions are then scored for several shares, so every row is
measured on the same predictions in the same run:

* the members alone: ``3ddfa-v2``, ``3ddfa-v2`` flip-averaged, ``base+`` (flip-averaged, as
  shipped);
* ``w · 3ddfa-v2 (flip) + (1 − w) · base+`` for several shares ``w`` (``teacher`` ships
  :data:`mvface.models.ensemble.TEACHER_SHARES`);
* per-point shares: one share for the 17 jaw points, another for the 51 inner points.

AFLW2000-3D: 3DDFA protocol, balanced NME (mean of the three yaw-bin means), percent; HELEN:
the held-out first 165 faces of 300-W HELEN test, inter-ocular NME, percent. The first 200 dev
faces are the validation subset training runs select on; both halves of that split are printed.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_teacher.py --weights-3ddfa ../shared/models/3ddfa_v2 \
        [--limit N] [--cache runs/teacher-preds] [--json results/teacher/run.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from mvface.eval.protocols import (
    aflw2000_3d_protocol,
    ibug_300w_protocol,
    load_aflw2000_3d_protocol,
)
from mvface.eval.runner import EvalConfig, evaluate
from mvface.models import create_model
from mvface.models.ensemble import TEACHER_SHARES

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
#: HELEN test faces 0-164 are held out of every mvface training set (configs/splits).
HELEN_HELD_OUT = 165
#: Dev faces the training runs validate (and select) on.
SELECTION = 200

MEMBERS: dict[str, dict[str, Any]] = {
    "3ddfa-v2": {"name": "3ddfa-v2"},
    "3ddfa-v2 flip": {"name": "3ddfa-v2", "flip_average": True},
    "base+": {"name": "base+"},
}


def predict_all(
    aflw_root: Path, helen_root: Path, tddfa: str, limit: int | None, cache: Path | None
) -> dict[str, dict[str, np.ndarray]]:
    """``{member: {"aflw": (N, 68, 2), "helen": (165, 68, 2)}}`` on ground-truth-box crops."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for label, spec in MEMBERS.items():
        opts = {k: v for k, v in spec.items() if k != "name"}
        weights = tddfa if spec["name"] == "3ddfa-v2" else None
        model = create_model(spec["name"], weights=weights, **opts)
        out[label] = {}
        for key, dataset, root, n in (
            ("aflw", "aflw2000-3d", aflw_root, limit),
            ("helen", "300w", helen_root, HELEN_HELD_OUT),
        ):
            file = cache / f"{label.replace(' ', '_')}_{key}_{limit}.npy" if cache else None
            if file is not None and file.exists():
                out[label][key] = np.load(file)
                continue
            start = time.perf_counter()
            cfg = EvalConfig(dataset=dataset, root=root, model=label, limit=n)
            report = evaluate(cfg, model=model, progress=False)
            if report.extras.get("skipped"):
                raise SystemExit(f"{label} on {dataset}: faces skipped: {report.extras['skipped']}")
            out[label][key] = report.predictions[..., :2]
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                np.save(file, out[label][key])
            print(f"  {label} on {dataset}: {time.perf_counter() - start:.0f} s", flush=True)
    return out


def fused(
    preds: dict[str, dict[str, np.ndarray]], key: str, jaw: float, inner: float
) -> np.ndarray:
    """``w · 3ddfa-v2 flip + (1 − w) · base+`` with ``w = jaw`` on points 0-16, else ``inner``."""
    share = np.full(68, inner)
    share[:17] = jaw
    s = share[None, :, None]
    return s * preds["3ddfa-v2 flip"][key] + (1 - s) * preds["base+"][key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aflw-root", type=Path, default=SHARED / "data" / "aflw2000_3d_dev")
    parser.add_argument("--helen-root", type=Path, default=SHARED / "data/300w/helen_testset")
    parser.add_argument("--weights-3ddfa", default=str(SHARED / "models" / "3ddfa_v2"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N dev faces")
    parser.add_argument("--cache", type=Path, default=None, help="folder for member predictions")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args()

    protocol = load_aflw2000_3d_protocol(args.aflw_root / "3ddfa_protocol")
    n = args.limit or len(protocol.gt)
    gt, yaw = protocol.gt[:n, :, :2], protocol.yaw_deg[:n]
    preds = predict_all(args.aflw_root, args.helen_root, args.weights_3ddfa, args.limit, args.cache)
    from mvface.data.readers import read_dataset

    helen = read_dataset("pts", args.helen_root, limit=HELEN_HELD_OUT).samples
    helen_gt = np.stack([np.asarray(s.landmarks)[:, :2] for s in helen])

    rows: list[dict[str, Any]] = []

    def score(label: str, aflw: np.ndarray, helen_pred: np.ndarray) -> None:
        r = aflw2000_3d_protocol(aflw, gt, yaw)
        row: dict[str, Any] = {
            "model": label,
            "bins": [round(float(v), 3) for v in (r.nme_bins or {}).values()],
            "balanced": round(float(r.nme_balanced or 0.0), 3),
            "mean": round(float(r.nme_mean), 3),
            "helen": round(float(ibug_300w_protocol(helen_pred, helen_gt).nme_mean), 3),
        }
        if n > SELECTION:
            head = aflw2000_3d_protocol(aflw[:SELECTION], gt[:SELECTION], yaw[:SELECTION])
            rest = aflw2000_3d_protocol(aflw[SELECTION:], gt[SELECTION:], yaw[SELECTION:])
            row["balanced_first_200"] = round(float(head.nme_balanced or 0.0), 3)
            row["balanced_rest"] = round(float(rest.nme_balanced or 0.0), 3)
        rows.append(row)

    for label in MEMBERS:
        score(label, preds[label]["aflw"], preds[label]["helen"])
    for w in (0.5, 0.6, 0.7, 0.8, 0.9):
        tag = " (teacher)" if w == TEACHER_SHARES[0] else ""
        score(
            f"{w:.1f} 3ddfa-v2 flip + {1 - w:.1f} base+{tag}",
            *(fused(preds, k, w, w) for k in ("aflw", "helen")),
        )
    for jaw, inner in ((0.8, 0.6), (0.6, 0.8), (0.7, 0.9)):
        score(
            f"jaw {jaw:.1f} / inner {inner:.1f} 3ddfa-v2 flip",
            *(fused(preds, k, jaw, inner) for k in ("aflw", "helen")),
        )

    print(
        f"\nAFLW2000-3D dev ({n} faces, GT-box crops, original GT, 3DDFA yaw bins) and HELEN "
        f"held-out ({HELEN_HELD_OUT}); NME %"
    )
    print(
        f"{'model':44s} {'[0,30]':>7s} {'(30,60]':>8s} {'(60,90]':>8s} {'bal':>6s} "
        f"{'mean':>6s} {'HELEN':>6s}"
    )
    for row in rows:
        b = row["bins"] + [float("nan")] * (3 - len(row["bins"]))
        print(
            f"{row['model']:44s} {b[0]:7.3f} {b[1]:8.3f} {b[2]:8.3f} {row['balanced']:6.3f} "
            f"{row['mean']:6.3f} {row['helen']:6.3f}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"faces": n, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
