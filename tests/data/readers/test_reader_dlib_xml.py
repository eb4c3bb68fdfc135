"""dlib imglab XML reader: multi-face images, ignore flags, absent parts, unsafe XML."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _shared import SHARED, requires_shared
from mvface.data.readers import read_dataset
from mvface.data.readers.dlib_xml import read_dlib_xml
from mvface.errors import BadInputError

DLIB = SHARED / "data" / "samples" / "dlib_examples"


def _parts(offset: int = 0) -> str:
    return "".join(f"<part name='{i:02d}' x='{10 + i + offset}' y='{20 + i}'/>" for i in range(68))


def _write(root: Path, body: str, name: str = "faces.xml") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(
        "<?xml version='1.0' encoding='ISO-8859-1'?>\n"
        "<?xml-stylesheet type='text/xsl' href='image_metadata_stylesheet.xsl'?>\n"
        f"<dataset><name>test</name><images>{body}</images></dataset>\n"
    )
    return path


@pytest.fixture
def fake_xml(tmp_path: Path) -> Path:
    (tmp_path / "imgs").mkdir()
    for name in ("one.jpg", "two.jpg"):
        Image.new("RGB", (200, 150)).save(tmp_path / "imgs" / name)
    body = (
        "<image file='imgs/one.jpg'>"
        f"<box top='20' left='10' width='80' height='90'>{_parts()}</box>"
        "<box top='5' left='100' width='40' height='40' ignore='1'/>"
        "<box top='5' left='100' width='40' height='40'><label>no parts</label></box>"
        f"<box top='x' left='1' width='4' height='4'>{_parts()}</box>"
        "<box top='1' left='1' width='0' height='4'/>"
        "<box top='1' left='1' width='9' height='9'><part name='00' x='1' y='1'/></box>"
        "</image>"
        f"<image file='imgs/two.jpg'><box top='1' left='2' width='30' height='40'>{_parts(5)}</box>"
        "</image>"
        "<image file='imgs/missing.jpg'><box top='1' left='2' width='3' height='4'/></image>"
    )
    return _write(tmp_path, body)


class TestFixture:
    def test_one_sample_per_box(self, fake_xml: Path) -> None:
        ds = read_dataset("dlib-xml", fake_xml)
        assert ds.name == "dlib-xml" and ds.root == fake_xml
        assert [s.name for s in ds.samples] == ["imgs/one#0", "imgs/one#2", "imgs/two#0"]
        first, no_parts, two = ds.samples
        np.testing.assert_array_equal(first.box, [10, 20, 90, 110])
        expected = np.stack([10 + np.arange(68), 20 + np.arange(68)], axis=1)
        np.testing.assert_array_equal(first.landmarks, expected)  # 0-based already: no shift
        assert no_parts.landmarks is None and no_parts.meta["label"] == "no parts"
        assert two.meta["box_index"] == 0 and two.meta["width"] == 200
        np.testing.assert_array_equal(two.landmarks[:, 0], 15 + np.arange(68))

    def test_skipped_reasons(self, fake_xml: Path) -> None:
        skipped = read_dlib_xml(fake_xml).skipped
        joined = "\n".join(skipped)
        assert len(skipped) == 4, joined
        assert "box 3: <box> top='x' is not a number" in joined
        assert "box 4: box has no area" in joined
        assert "box 5: has 1 parts, expected 68" in joined
        assert "imgs/missing.jpg box 0: image not found" in joined

    def test_folder_root_and_limit(self, fake_xml: Path) -> None:
        assert len(read_dlib_xml(fake_xml.parent, limit=1)) == 1
        shutil.copy(fake_xml, fake_xml.parent / "copy.xml")
        with pytest.raises(BadInputError, match=r"several \.xml files"):
            read_dlib_xml(fake_xml.parent)

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            (
                '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                '<!ENTITY lol2 "&lol;&lol;&lol;">]><dataset><images>&lol2;</images></dataset>',
                "DOCTYPE or ENTITY",
            ),
            ("<dataset><images><image file='a.jpg'></dataset>", "not valid XML"),
            ("<dataset><name>no images</name></dataset>", "no <images> element"),
            ("", "empty"),
            ("\x00\x01binary", "not valid XML"),
        ],
    )
    def test_bad_xml(self, tmp_path: Path, text: str, needle: str) -> None:
        path = tmp_path / "bad.xml"
        path.write_text(text)
        with pytest.raises(BadInputError, match=needle):
            read_dlib_xml(path)

    def test_bad_roots(self, tmp_path: Path) -> None:
        with pytest.raises(BadInputError, match=r"holds no \.xml"):
            read_dlib_xml(tmp_path)
        with pytest.raises(BadInputError, match="does not exist"):
            read_dlib_xml(tmp_path / "nope.xml")


@requires_shared("data/samples/dlib_examples/training_with_face_landmarks.xml")
class TestRealDlibExamples:
    def test_training_with_landmarks(self) -> None:
        ds = read_dlib_xml(DLIB / "training_with_face_landmarks.xml")
        assert len(ds) == 18 and ds.skipped == []
        names = [s.name for s in ds.samples]
        assert names[0] == "2007_007763#0" and len(set(names)) == len(names)
        for s in ds.samples:
            assert s.image_path is not None and s.image_path.is_file()
            assert s.landmarks is not None
            x0, y0, x1, y1 = s.box
            size = max(x1 - x0, y1 - y0)
            # dlib's 68 points lie in and around their detection box
            assert np.all(s.landmarks[:, 0] > x0 - size / 2) and np.all(
                s.landmarks[:, 0] < x1 + size / 2
            )
            assert np.all(s.landmarks[:, 1] > y0 - size / 2) and np.all(
                s.landmarks[:, 1] < y1 + size / 2
            )

    def test_testing_with_landmarks_multi_face(self) -> None:
        ds = read_dlib_xml(DLIB / "testing_with_face_landmarks.xml")
        assert len(ds) == 25 and ds.skipped == []
        per_image: dict[str, int] = {}
        for s in ds.samples:
            per_image[s.name.split("#")[0]] = per_image.get(s.name.split("#")[0], 0) + 1
        assert max(per_image.values()) > 1

    def test_boxes_only(self) -> None:
        ds = read_dlib_xml(DLIB / "testing.xml")
        assert len(ds) == 25 and all(s.landmarks is None for s in ds.samples)
