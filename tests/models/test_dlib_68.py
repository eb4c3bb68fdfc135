import numpy as np
import pytest

from _shared import SHARED, requires_shared
from mvface.data.image import load_image
from mvface.data.readers.pts import read_pts
from mvface.data.record import landmark_box
from mvface.detection import create_face_detector, match_detection
from mvface.eval.metrics import interocular_normalizer, nme
from mvface.models import create_model

pytest.importorskip("dlib")

HELEN = SHARED / "data" / "300w" / "helen_testset"


def _faces(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    images = sorted(HELEN.glob("*.jpg"))[:n]
    return [(load_image(p), read_pts(p.with_suffix(".pts"))) for p in images]


@requires_shared("data/300w/helen_testset")
class TestDlib68:
    def test_accurate_on_ground_truth_boxes(self) -> None:
        model = create_model("dlib")
        faces = _faces(8)
        pred = np.stack([model.predict(img, landmark_box(gt)[None]).points[0] for img, gt in faces])
        gt = np.stack([gt for _, gt in faces])
        err = nme(pred, gt, interocular_normalizer(gt))
        # dlib reaches ~3-4 % inter-ocular NME on HELEN test with good boxes.
        assert float(np.median(err)) < 0.06

    def test_batch_equals_loop(self) -> None:
        model = create_model("dlib")
        faces = _faces(3)
        images = [img for img, _ in faces]
        boxes = np.stack([landmark_box(gt) for _, gt in faces])
        batch = model.predict(images, boxes).points
        loop = np.stack(
            [model.predict(i, b[None]).points[0] for i, b in zip(images, boxes, strict=True)]
        )
        np.testing.assert_array_equal(batch, loop)

    @pytest.mark.parametrize("name", ["dlib-hog", "dlib-cnn"])
    def test_detector_boxes_are_canonical(self, name: str) -> None:
        detector = create_face_detector(name)
        img, gt = _faces(1)[0]
        found = detector.detect(img)
        idx = match_detection(found, landmark_box(gt), min_iou=0.5)
        assert idx >= 0, "the calibrated detector box should overlap the landmark box well"


def test_weights_option_rejected() -> None:
    with pytest.raises(ValueError, match="no options"):
        create_model("dlib", foo=1)
