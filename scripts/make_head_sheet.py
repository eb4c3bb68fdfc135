"""Contact sheet of synthetic heads: the egg (``--backend mesh``) above the whole head (``head``).

For each of ``--identities`` faces of a 300-W style folder (``.jpg`` + ``.pts``), the aligned
crop is built into a head by both backends (same crop, same landmarks, the default mirror fill)
and rendered at yaw −90, −60, …, +90 degrees (pitch 0, the rig's radius and look-at point):
one row per backend, the backend's name in the first tile. Written as a JPEG.

Usage::

    python scripts/make_head_sheet.py                          # docs/synth_heads.jpg
    python scripts/make_head_sheet.py --source ../shared/data/300w/afw --identities 8 \\
        --tile 128 --out docs/synth_heads.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.errors import BadInputError
from mvface.synth.backends import create_backend
from mvface.synth.identity import align_crop
from mvface.synth.rig import grid_rig, rig_labels

SHARED = Path(__file__).resolve().parents[2] / "shared"
YAWS_DEG = (-90, -60, -30, 0, 30, 60, 90)


def sheet_rows(
    crop: np.ndarray, landmarks: np.ndarray, backends: list[str], tile: int
) -> list[np.ndarray]:
    """One ``(tile, 7·tile, 3)`` uint8 RGB row per backend: the head at :data:`YAWS_DEG`."""
    cameras = rig_labels(grid_rig(np.radians(YAWS_DEG), [0.0]))
    rows = []
    for name in backends:
        head = create_backend(name).build(crop, landmarks)
        views = head.render(cameras, tile).rgb
        head.release()
        row = np.ascontiguousarray(np.hstack(list(views)))
        cv2.putText(row, name, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(SHARED / "data" / "300w" / "afw"))
    parser.add_argument("--identities", type=int, default=8)
    parser.add_argument("--skip", type=int, default=0, help="skip this many faces first")
    parser.add_argument("--tile", type=int, default=128, help="view side in pixels")
    parser.add_argument("--backends", default="mesh,head")
    parser.add_argument("--out", default="docs/synth_heads.jpg")
    parser.add_argument("--quality", type=int, default=85)
    args = parser.parse_args()

    samples = read_dataset("pts", args.source).samples[args.skip :]
    backends = args.backends.split(",")
    rows: list[np.ndarray] = []
    done = 0
    for sample in samples:
        if done == args.identities:
            break
        if sample.landmarks is None:
            continue
        image = load_image(sample.image) if isinstance(sample.image, Path) else sample.image
        try:
            crop, lm, _ = align_crop(np.asarray(image), sample.landmarks, 256)
            rows += sheet_rows(crop, lm, backends, args.tile)
        except BadInputError as err:
            print(f"{sample.name}: skipped ({err})")
            continue
        done += 1
    sheet = np.vstack(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, args.quality]
    )
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]}, {out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
