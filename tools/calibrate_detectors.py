"""Fit face detectors' raw-box -> canonical-box transforms on 300-W AFW + HELEN test.

Prints the :class:`~mvface.models.boxes.BoxTransform` to hard-code in the detector (for
BlazeFace: ``CANONICAL_TRANSFORMS`` in ``mvface/detection/blazeface.py``). Tooling, not needed at
run time.

Usage::

    python tools/calibrate_detectors.py --data-root ../shared/data [--detectors blazeface-short]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mvface.data.image import load_image
from mvface.data.readers import read_dataset
from mvface.detection import calibrate_detector, create_face_detector

#: The calibration images: 300-W AFW and HELEN test (below the shared data root).
CALIBRATION_SETS = ("300w/afw", "300w/helen_testset")


def calibration_samples(data_root: Path) -> list[Any]:
    """The annotated faces of :data:`CALIBRATION_SETS` below ``data_root``."""
    samples: list[Any] = []
    for subset in CALIBRATION_SETS:
        samples += read_dataset("pts", data_root / subset).samples
    return samples


def load_sample(sample: Any) -> np.ndarray:
    """A sample's ``(H, W, 3)`` uint8 RGB image."""
    return sample.image if isinstance(sample.image, np.ndarray) else load_image(sample.image)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: fit and print each detector's transform.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path("../shared/data"),
        help="shared data folder (default ../shared/data, next to the repository)",
    )
    parser.add_argument("--detectors", nargs="+", default=["blazeface-short", "blazeface-full"])
    args = parser.parse_args(argv)
    samples = calibration_samples(args.data_root)
    for name in args.detectors:
        transform, matched = calibrate_detector(create_face_detector(name), samples, load_sample)
        print(
            f"{name}: BoxTransform(scale_w={transform.scale_w:.4f}, "
            f"scale_h={transform.scale_h:.4f}, shift_x={transform.shift_x:.4f}, "
            f"shift_y={transform.shift_y:.4f})  # {matched} of {len(samples)} faces matched"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
