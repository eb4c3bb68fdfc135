"""Face detectors: recall, duplicates, misses and speed of the default detector vs the old one
and dlib HOG, measured in one run.

Sets (below ``--data-root``):

* ``aflw2000-dev`` (AFLW2000-3D dev half) and the 300-W sets (``300w/afw``,
  ``300w/helen_testset``, ``300w/helen_trainset``): one annotated face per image; the reference
  is the canonical box (tight box of the 68 points). A face is found when a detection has
  IoU >= 0.5 with it (also reported at 0.3). Other faces in these images are not annotated, so
  extra detections are not counted as errors.
* ``multi-face`` (``samples/dlib_examples/*.jpg``): no human boxes; the reference is the union
  of what dlib HOG and dlib CNN find (their canonical boxes, merged by the duplicate rule). A
  reference face is found at IoU >= 0.5 (and 0.3); detections matching no reference face
  (IoU < 0.3) are listed as extras.

Duplicates: pairs of detections in one image that are one face by the rule of
:func:`mvface.detection.merge.group_duplicates` (IoU > 0.3, or intersection over the smaller box
> 0.6 with area ratio >= 0.15), on every image. Time: ``detect`` per image (image decoding
excluded), the detectors interleaved image by image at ``--threads`` torch / OpenCV threads;
ratios are of mean ms per image within this run.

Usage::

    python benchmarks/bench_detector.py --data-root ../shared/data [--limit 50]

Prints a table per set, writes ``results/detector/<utc>.json`` (``mvface.bench.results``) and
regenerates the summary page beside the results folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from mvface.bench.machine import machine_info
from mvface.bench.results import BenchResult, ResultTable, record_run
from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.record import landmark_box
from mvface.detection import FaceDetector, create_face_detector
from mvface.detection.merge import box_intersection_over_smaller, group_duplicates

#: New default, the configuration it replaces, and dlib HOG (timed and scored alike).
DETECTORS = ("blazeface", "blazeface-single-scale", "dlib-hog")

#: Annotated single-face sets: name -> (reader format, folder below the data root).
ANNOTATED_SETS = {
    "aflw2000-dev": ("aflw2000-3d", "aflw2000_3d_dev"),
    "300w-afw": ("pts", "300w/afw"),
    "300w-helen-test": ("pts", "300w/helen_testset"),
    "300w-helen-train": ("pts", "300w/helen_trainset"),
}
MULTI_FACE = "samples/dlib_examples"


def count_duplicates(boxes: np.ndarray) -> int:
    """Detections beyond the first of each face, by the duplicate rule of the merge."""
    return len(boxes) - len(group_duplicates(boxes, np.ones(len(boxes))))


def best_iou(reference: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(R,)`` best IoU of each reference box ``(R, 4)`` with the detections ``(K, 4)``."""
    if len(boxes) == 0 or len(reference) == 0:
        return np.zeros(len(reference))
    return box_intersection_over_smaller(reference, boxes)[1].max(axis=1)


def timed_detect(detector: FaceDetector, image: np.ndarray) -> tuple[np.ndarray, float]:
    """Canonical boxes ``(K, 4)`` and milliseconds of one ``detect`` call."""
    start = time.perf_counter()
    boxes = detector.detect(image).boxes
    return boxes, 1e3 * (time.perf_counter() - start)


def new_row() -> dict[str, Any]:
    return {"faces": 0, "found_iou50": 0, "found_iou30": 0, "duplicates": 0, "detections": 0}


def finish_row(row: dict[str, Any], ms: list[float]) -> dict[str, Any]:
    row["images"] = len(ms)
    row["recall_iou50"] = row["found_iou50"] / max(row["faces"], 1)
    row["recall_iou30"] = row["found_iou30"] / max(row["faces"], 1)
    row["ms_mean"] = float(np.mean(ms)) if ms else float("nan")
    row["ms_median"] = float(np.median(ms)) if ms else float("nan")
    return row


def bench_annotated(
    name: str, root: Path, fmt: str, detectors: dict[str, FaceDetector], limit: int | None
) -> dict[str, Any]:
    """Recall at IoU 0.5 / 0.3, misses, duplicates, ms per image on one annotated set."""
    samples = read_dataset(fmt, root, limit).samples
    rows = {d: new_row() | {"misses": []} for d in detectors}
    times: dict[str, list[float]] = {d: [] for d in detectors}
    for sample in samples:
        image = sample.image if isinstance(sample.image, np.ndarray) else load_image(sample.image)
        reference = landmark_box(sample.landmarks)[None]
        for det_name, detector in detectors.items():
            boxes, ms = timed_detect(detector, image)
            times[det_name].append(ms)
            iou = float(best_iou(reference, boxes)[0])
            row = rows[det_name]
            row["faces"] += 1
            row["found_iou50"] += iou >= 0.5
            row["found_iou30"] += iou >= 0.3
            row["duplicates"] += count_duplicates(boxes)
            row["detections"] += len(boxes)
            if iou < 0.5:
                row["misses"].append(f"{Path(str(sample.image)).name} (IoU {iou:.2f})")
    return {d: finish_row(rows[d], times[d]) for d in detectors}


def multi_face_reference(images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Union of dlib HOG and dlib CNN canonical boxes per image, one box per face."""
    hog, cnn = create_face_detector("dlib-hog"), create_face_detector("dlib-cnn")
    reference = {}
    for name, image in images.items():
        boxes = np.concatenate([hog.detect(image).boxes, cnn.detect(image).boxes])
        groups = group_duplicates(boxes, np.ones(len(boxes)))
        reference[name] = boxes[[g[0] for g in groups]].reshape(-1, 4)
    return reference


def bench_multi_face(root: Path, detectors: dict[str, FaceDetector]) -> dict[str, Any]:
    """Recall against dlib HOG + CNN, misses, extras, duplicates, ms per image."""
    images = {p.name: load_image(p) for p in sorted(root.glob("*.jpg"))}
    start = time.perf_counter()
    reference = multi_face_reference(images)
    print(f"multi-face reference (dlib HOG + CNN): {time.perf_counter() - start:.0f} s")
    rows = {d: new_row() | {"misses": [], "extras": []} for d in detectors}
    times: dict[str, list[float]] = {d: [] for d in detectors}
    for name, image in images.items():
        for det_name, detector in detectors.items():
            boxes, ms = timed_detect(detector, image)
            times[det_name].append(ms)
            iou = best_iou(reference[name], boxes)
            row = rows[det_name]
            row["faces"] += len(iou)
            row["found_iou50"] += int((iou >= 0.5).sum())
            row["found_iou30"] += int((iou >= 0.3).sum())
            row["duplicates"] += count_duplicates(boxes)
            row["detections"] += len(boxes)
            for box, value in zip(reference[name], iou, strict=True):
                if value < 0.5:
                    row["misses"].append(
                        f"{name} {np.round(box).astype(int).tolist()} ({value:.2f})"
                    )
            extra = best_iou(boxes, reference[name]) < 0.3
            row["extras"] += [f"{name} {np.round(b).astype(int).tolist()}" for b in boxes[extra]]
    out = {d: finish_row(rows[d], times[d]) for d in detectors}
    out["reference_faces"] = {k: len(v) for k, v in reference.items()}
    return out


def print_table(set_name: str, rows: dict[str, Any]) -> None:
    """One line per detector, then the speed ratios."""
    print(f"\n{set_name}")
    print(
        f"{'detector':<24}{'recall@0.5':>18}{'recall@0.3':>18}{'dup':>5}{'det/img':>9}"
        f"{'ms/img':>9}{'median':>9}"
    )
    for det in DETECTORS:
        if det not in rows:
            continue
        r = rows[det]
        print(
            f"{det:<24}{r['found_iou50']:>6}/{r['faces']:<4} {100 * r['recall_iou50']:5.1f}%"
            f"{r['found_iou30']:>6}/{r['faces']:<4} {100 * r['recall_iou30']:5.1f}%"
            f"{r['duplicates']:>5}{r['detections'] / max(r['images'], 1):>9.2f}"
            f"{r['ms_mean']:>9.1f}{r['ms_median']:>9.1f}"
        )
    new = rows.get(DETECTORS[0])
    if new:
        ratios = [
            f"{DETECTORS[0]} / {d}: {new['ms_mean'] / rows[d]['ms_mean']:.2f}x time"
            for d in DETECTORS[1:]
            if d in rows
        ]
        print("  " + "; ".join(ratios))
        for miss in new["misses"]:
            print(f"  {DETECTORS[0]} misses {miss}")
        for extra in new.get("extras", []):
            print(f"  {DETECTORS[0]} extra {extra}")


def to_result(
    sets: dict[str, Any], command: str, machine: dict[str, Any], arguments: dict[str, Any]
) -> BenchResult:
    """The run as a benchmark result: one row per set (the new default, the configuration it
    replaces and dlib HOG side by side), the new default's misses as notes."""
    new, old, hog = DETECTORS
    rows = []
    for set_name, per in sets.items():
        if not all(d in per for d in DETECTORS):
            continue
        rows.append(
            [
                set_name,
                per[new]["faces"],
                per[new]["recall_iou50"],
                per[old]["recall_iou50"],
                per[hog]["recall_iou50"],
                f"{per[new]['duplicates']} / {per[old]['duplicates']}",
                per[new]["ms_mean"],
                per[new]["ms_mean"] / per[old]["ms_mean"],
                per[new]["ms_mean"] / per[hog]["ms_mean"],
            ]
        )
    notes = [
        f"{set_name}: {new} misses {miss}"
        for set_name, per in sets.items()
        for miss in per.get(new, {}).get("misses", [])
    ]
    table = ResultTable(
        name=f"Recall at IoU >= 0.5 with the canonical box, faces reported twice, time per image "
        f"of {new} (the default) against {old} (the detector it replaces) and {hog}",
        columns=[
            "set",
            "faces",
            f"recall {new}",
            f"recall {old}",
            f"recall {hog}",
            f"duplicates {new} / {old}",
            f"ms/image {new}",
            f"time ÷ {old}",
            f"time ÷ {hog}",
        ],
        rows=rows,
        digits={f"recall {d}": 3 for d in DETECTORS} | {f"ms/image {new}": 1},
    )
    return BenchResult(
        kind="detector",
        title="Face detectors: recall, duplicates, speed",
        command=command,
        machine=machine,
        tables=[table],
        arguments=arguments,
        notes=notes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run every set found below ``--data-root``; print tables; write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=None, help="images per annotated set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sets", nargs="+", default=[*ANNOTATED_SETS, "multi-face"])
    parser.add_argument(
        "--results", type=Path, default=Path("results"), help="results folder (None: no file)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    detectors = {name: create_face_detector(name) for name in DETECTORS}
    warm = np.zeros((480, 640, 3), np.uint8)
    for detector in detectors.values():
        detector.detect(warm)
    results: dict[str, Any] = {}
    for set_name in args.sets:
        if set_name == "multi-face":
            root = args.data_root / MULTI_FACE
            if not root.is_dir():
                print(f"{root}: absent, skipped")
                continue
            results[set_name] = bench_multi_face(root, detectors)
        else:
            fmt, folder = ANNOTATED_SETS[set_name]
            if not (args.data_root / folder).is_dir():
                print(f"{args.data_root / folder}: absent, skipped")
                continue
            results[set_name] = bench_annotated(
                set_name, args.data_root / folder, fmt, detectors, args.limit
            )
        print_table(set_name, results[set_name])
    command = " ".join(
        ["python", "benchmarks/bench_detector.py", *(sys.argv[1:] if argv is None else argv)]
    )
    arguments = {"threads": args.threads, "limit": args.limit, "sets": list(args.sets)}
    result = to_result(results, command, machine_info().to_dict(), arguments)
    if args.results is not None:
        path, page = record_run(result, args.results)
        print(f"\nwrote {path} and {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
