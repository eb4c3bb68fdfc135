"""Relabel a folder of iBUG ``.pts`` faces with a model's own predictions (self-distillation data).

The 3ddfa-v2+ recipe (``docs/results.md``) fine-tunes 3DDFA-V2 on data labelled in *its own*
landmark convention (that of 300W-LP / AFLW2000-3D) instead of 300-W's manual one: the model is
run on every annotated face (crop from the annotated box) and its 68 points are written as the
new ``.pts``, next to a symlink of the image. ``--max-yaw`` keeps only faces the model sees as
near-frontal, whose 68 points are all visible and can be lifted onto the head by ``mvface synth``.

    python scripts/pseudo_label.py --source ../shared/data/300w/afw --out runs/afw-3ddfa \
        --model 3ddfa-v2 --weights ../shared/models/3ddfa_v2 [--max-yaw 30]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.data.readers.pts import write_pts
from mvface.data.record import landmark_box
from mvface.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--weights")
    parser.add_argument("--max-yaw", type=float, default=None, help="degrees (model's pose)")
    args = parser.parse_args()
    model = create_model(args.model, weights=args.weights)
    args.out.mkdir(parents=True, exist_ok=True)
    kept = 0
    samples = read_dataset("pts", args.source).samples
    for sample in samples:
        assert sample.landmarks is not None
        pred = model.predict(load_image(sample.image), landmark_box(sample.landmarks)[None])
        if args.max_yaw is not None:
            if pred.pose is None:
                raise SystemExit(f"{args.model} gives no head pose; drop --max-yaw")
            if abs(math.degrees(float(pred.pose[0, 1]))) > args.max_yaw:
                continue
        image = Path(sample.image)
        link = args.out / image.name
        if not link.exists():
            link.symlink_to(image.resolve())
        write_pts(link.with_suffix(".pts"), np.asarray(pred.points[0, :, :2]))
        kept += 1
    print(f"{kept} of {len(samples)} faces relabelled by {args.model} in {args.out}")


if __name__ == "__main__":
    main()
