import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mvface.data.readers.pts import write_pts
from mvface.demo import (
    CompareConfig,
    DemoConfig,
    ModelSpec,
    load_models,
    parse_model_spec,
    parse_model_specs,
    read_items,
    run_compare,
    run_demo,
)
from mvface.demo.items import yaw_sweep
from mvface.errors import BadInputError, NotAvailableError
from mvface.viz.compare import nme_percent

#: A "+" model whose weights are certainly absent (skipped with its reason).
MISSING_PLUS = "base+=base+:/nonexistent/base_plus.safetensors"


def face_points(cx: float = 80.0, cy: float = 75.0, s: float = 45.0) -> np.ndarray:
    """A hand-made frontal 68-point layout in pixels."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.c_[cx - s * np.cos(t), cy + 0.9 * s * np.sin(t)]
    brows = np.c_[
        np.r_[
            np.linspace(cx - 0.75 * s, cx - 0.15 * s, 5),
            np.linspace(cx + 0.15 * s, cx + 0.75 * s, 5),
        ],
        np.full(10, cy - 0.45 * s),
    ]
    bridge = np.c_[np.full(4, cx), np.linspace(cy - 0.3 * s, cy + 0.1 * s, 4)]
    base = np.c_[np.linspace(cx - 0.2 * s, cx + 0.2 * s, 5), np.full(5, cy + 0.2 * s)]

    def ring(x: float, y: float, rx: float, ry: float, n: int) -> np.ndarray:
        a = np.linspace(np.pi, -np.pi, n, endpoint=False)
        return np.c_[x + rx * np.cos(a), y + ry * np.sin(a)]

    eyes = [ring(cx + d * 0.45 * s, cy - 0.25 * s, 0.15 * s, 0.06 * s, 6) for d in (-1, 1)]
    lips = [
        ring(cx, cy + 0.5 * s, 0.35 * s, 0.12 * s, 12),
        ring(cx, cy + 0.5 * s, 0.25 * s, 0.05 * s, 8),
    ]
    return np.concatenate([jaw, brows, bridge, base, *eyes, *lips])


def face_image(points: np.ndarray, size: int = 160) -> np.ndarray:
    """A grey image with a skin-coloured oval behind the points and dark eyes and mouth."""
    image = np.full((size, size, 3), 70, np.uint8)
    centre = points.mean(0)
    half = np.ptp(points, axis=0) * 0.6
    axes = (int(half[0]), int(half[1]))
    cv2.ellipse(image, (int(centre[0]), int(centre[1])), axes, 0, 0, 360, (200, 160, 130), -1)
    for group in (range(36, 42), range(42, 48), range(48, 60)):
        cv2.fillPoly(image, [points[list(group)].round().astype(np.int32)], (40, 30, 30))
    return image


@pytest.fixture
def pts_folder(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    root.mkdir()
    for i, shift in enumerate((0.0, 6.0)):
        pts = face_points(cx=80 + shift)
        cv2.imwrite(str(root / f"face{i}.png"), cv2.cvtColor(face_image(pts), cv2.COLOR_RGB2BGR))
        write_pts(root / f"face{i}.pts", pts)
    return root


class TestModelSpecs:
    def test_plain_family(self) -> None:
        assert parse_model_spec("base") == ModelSpec("base", "base", None)

    def test_family_with_weights(self) -> None:
        expected = ModelSpec("3ddfa-v2", "3ddfa-v2", "../w")
        assert parse_model_spec("3ddfa-v2=../w") == expected
        assert parse_model_spec("3ddfa-v2:../w") == expected

    def test_label_and_family(self) -> None:
        assert parse_model_spec("b=base") == ModelSpec("b", "base", None)
        spec = parse_model_spec("3ddfa-v2+=3ddfa-v2:runs/x/model.safetensors")
        assert spec == ModelSpec("3ddfa-v2+", "3ddfa-v2", "runs/x/model.safetensors")

    def test_unknown_names_are_one_line_errors(self) -> None:
        with pytest.raises(BadInputError, match="not a registered model"):
            parse_model_spec("nope")
        with pytest.raises(BadInputError, match="neither side"):
            parse_model_spec("foo=bar")
        with pytest.raises(BadInputError, match="empty"):
            parse_model_spec("dlib:")

    def test_list_and_duplicates(self) -> None:
        specs = parse_model_specs("dlib, base ,x=base")
        assert [s.label for s in specs] == ["dlib", "base", "x"]
        with pytest.raises(BadInputError, match="label used twice: base"):
            parse_model_specs("base,base=base")
        with pytest.raises(BadInputError, match="no model"):
            parse_model_specs(" , ")


def test_load_models_skips_unavailable_with_reason() -> None:
    loaded = load_models(parse_model_specs(f"base,{MISSING_PLUS}"))
    assert loaded.labels == ["base"]
    ((spec, reason),) = loaded.skipped
    assert spec.label == "base+" and "not found" in reason and "\n" not in reason
    with pytest.raises(NotAvailableError, match="no model could be loaded"):
        load_models(parse_model_specs(MISSING_PLUS))


def test_yaw_sweep() -> None:
    assert yaw_sweep(7, 75).tolist() == [-75, -50, -25, 0, 25, 50, 75]
    assert yaw_sweep(1, 75).tolist() == [0.0]
    with pytest.raises(BadInputError):
        yaw_sweep(0, 75)


def test_read_items_with_names_and_ground_truth(pts_folder: Path) -> None:
    items, problems = read_items(pts_folder, "pts", names=("face1", "missing"))
    assert [i.name for i in items] == ["face1"]
    assert items[0].gt is not None and items[0].gt.shape == (68, 2)
    assert problems == [f"{pts_folder}: no sample named 'missing'"]


def test_demo_on_a_folder_with_ground_truth(pts_folder: Path, tmp_path: Path) -> None:
    (pts_folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    cfg = DemoConfig(output=out, input=pts_folder, models=("base", MISSING_PLUS), gt_format="pts")
    seen: list[str] = []
    result = run_demo(cfg, progress=lambda done, total, what: seen.append(what))
    assert [s.label for s in result.models] == ["base"]
    assert [s.label for s, _ in result.skipped_models] == ["base+"]
    assert len(result.images) == 2 and "face0" in seen
    assert any("broken" in line for line in result.failed)  # one line, the rest went on
    assert {p.name for p in result.files} == {"000_face0.jpg", "001_face1.jpg", "overview.jpg"}
    data = json.loads((out / "results.json").read_text())
    assert data["skipped_models"][0]["label"] == "base+"
    image = data["images"][0]
    face = image["faces"][0]
    points = np.array(face["landmarks"]["base"])
    gt = np.array(image["ground_truth"])
    assert points.shape[0] == 68 and gt.shape == (68, 2)
    assert face["nme_percent"]["base"] == pytest.approx(nme_percent(points, gt), abs=0.01)
    assert np.allclose(
        face["box"], [gt[:, 0].min(), gt[:, 1].min(), gt[:, 0].max(), gt[:, 1].max()], atol=0.01
    )
    assert image["ms"]["base"] > 0
    assert data["mean_nme_percent"]["base"] == pytest.approx(result.mean_nme["base"], abs=1e-3)
    drawing = cv2.imread(str(out / "000_face0.jpg"))
    assert drawing is not None and drawing.shape[0] >= 256


def test_demo_without_input_synthesizes_views(tmp_path: Path) -> None:
    cfg = DemoConfig(output=tmp_path / "o", models=("base", MISSING_PLUS), views=3, view_size=128)
    result = run_demo(cfg)
    names = [p.item.name for p in result.images]
    assert names == ["astronaut", "astronaut_yaw-75", "astronaut_yaw+00", "astronaut_yaw+75"]
    photo, *views = result.images
    assert photo.item.gt is None and len(photo.faces) == 1  # found by the face detector
    for view in views:
        assert view.item.gt is not None and view.image.shape == (128, 128, 3)
        assert np.isfinite(view.faces[0].nme["base"])
    frontal = views[1].faces[0].nme["base"]
    assert frontal < 10.0  # the source landmarks came from this model: the frontal view agrees
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [im["meta"].get("yaw_deg") for im in data["images"]] == [None, -75.0, 0.0, 75.0]


def test_demo_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="views"):
        DemoConfig(output=tmp_path, views=0)
    with pytest.raises(BadInputError, match="does not exist"):
        run_demo(DemoConfig(output=tmp_path, input=tmp_path / "missing", models=("base",)))


def test_compare_writes_figure_and_nmes(pts_folder: Path, tmp_path: Path) -> None:
    fig = tmp_path / "fig.png"
    cfg = CompareConfig(
        input=pts_folder,
        output=fig,
        models=("base", "mp=mediapipe-68", MISSING_PLUS),
        gt_format="pts",
    )
    result = run_compare(cfg)
    assert [s.label for s in result.models] == ["base", "mp"]
    assert [s.label for s, _ in result.skipped_models] == ["base+"]
    image = cv2.imread(str(fig))
    assert image is not None and image.shape[1] == 2 * 256 + 3 * 4
    report = json.loads(fig.with_suffix(".json").read_text())
    assert [im["name"] for im in report["images"]] == ["face0", "face1"]
    nmes = report["images"][0]["nme_percent"]
    assert nmes["base"] == pytest.approx(nmes["mp"], abs=1e-6)  # same network and head
    region = np.array(report["images"][0]["region"])
    assert region[2] - region[0] == pytest.approx(region[3] - region[1], abs=0.2)


def test_compare_needs_an_image_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"\.png or \.jpg"):
        CompareConfig(input=tmp_path, output=tmp_path / "fig.txt", models=("base",))
