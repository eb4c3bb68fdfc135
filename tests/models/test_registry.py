import importlib
import re
import warnings
from collections.abc import Callable

import numpy as np
import pytest

import mvface
from mvface._registry import Registry
from mvface.errors import BadInputError
from mvface.models import (
    RENAMED_MODELS,
    LandmarkModel,
    Landmarks,
    ModelConfig,
    create_model,
    list_models,
    resolve_model_name,
)
from mvface.models._registry import _MODELS, register_model


class _Centre(LandmarkModel):
    """A model that puts all 68 points at the box centre: enough to test the interface."""

    def __init__(self) -> None:
        self.config = ModelConfig(name="centre")

    def _predict(self, images, boxes):  # type: ignore[no-untyped-def]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        return Landmarks(points=np.repeat(centre[:, None, :], 68, axis=1))


@pytest.fixture
def centre_model():  # type: ignore[no-untyped-def]
    register_model("test-centre")(lambda weights=None, **cfg: _Centre())
    yield "test-centre"
    del _MODELS["test-centre"]


def test_list_models_has_dlib() -> None:
    assert "dlib" in list_models()
    assert list_models("dl*") == ["dlib"]
    assert list_models("nothing-*") == []


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_model("nope")


def test_register_twice_refused(centre_model: str) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_model(centre_model)(lambda weights=None: _Centre())


def test_predict_broadcasts_one_image(centre_model: str) -> None:
    model = create_model(centre_model)
    image = np.zeros((40, 60, 3), np.uint8)
    out = model.predict(image, np.array([[0, 0, 10, 10], [10, 20, 30, 40]]))
    assert out.points.shape == (2, 68, 2)
    np.testing.assert_allclose(out.points[1, 0], [20, 30])


def test_predict_rejects_bad_input(centre_model: str) -> None:
    model = create_model(centre_model)
    image = np.zeros((40, 60, 3), np.uint8)
    with pytest.raises(BadInputError, match="2 images but 1 boxes"):
        model.predict([image, image], np.array([[0, 0, 10, 10]]))
    with pytest.raises(BadInputError, match="uint8 RGB"):
        model.predict(np.zeros((40, 60), np.uint8)[None], np.array([[0, 0, 10, 10]]))
    with pytest.raises(BadInputError, match="NaN"):
        model.predict(image, np.array([[0, 0, np.nan, 10]]))


def test_predict_no_boxes(centre_model: str) -> None:
    out = create_model(centre_model).predict(np.zeros((4, 4, 3), np.uint8), np.zeros((0, 4)))
    assert out.points.shape == (0, 68, 2)


# ------------------------------------------------------------------ old names


@pytest.mark.parametrize(
    ("old", "current"), [("default", "base"), ("default+", "base+"), ("dlib-68", "dlib")]
)
def test_old_names_warn_and_resolve(old: str, current: str) -> None:
    message = f"model name '{old}' is deprecated; use '{current}'"
    with pytest.warns(FutureWarning, match=re.escape(message)):
        assert resolve_model_name(old) == current
    assert old in RENAMED_MODELS and old not in list_models()


def test_create_model_with_an_old_name_builds_the_current_one() -> None:
    with pytest.warns(FutureWarning, match="'default' is deprecated"):
        model = create_model("default")
    assert model.config.name == "base"


def test_load_with_an_old_name_warns() -> None:
    with pytest.warns(FutureWarning, match="'default' is deprecated"):
        landmarker = mvface.load("default")
    assert landmarker.model.config.name == "base"


def test_current_names_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_model_name("base") == "base"


def test_unknown_model_lists_the_available() -> None:
    with pytest.raises(ValueError, match=re.escape("available: 3ddfa-v2, base, base+, dlib, fast")):
        create_model("nope")


def test_list_models_has_current_names_only() -> None:
    assert {"base", "base+", "fast", "dlib"} <= set(list_models())
    assert not set(RENAMED_MODELS) & set(list_models())


# ------------------------------------------------------------------ the generic registry


class TestRegistry:
    @staticmethod
    def shapes() -> Registry[Callable[..., int]]:
        reg: Registry[Callable[..., int]] = Registry("shape")
        reg.register("square", lambda scale=1: 4 * scale)
        reg.register("triangle")(lambda scale=1: 3 * scale)
        return reg

    def test_register_list_create(self) -> None:
        reg = self.shapes()
        assert reg.list() == ["square", "triangle"]
        assert reg.list("sq*") == ["square"]
        assert reg.create("square", scale=2) == 8
        assert reg.get("triangle")() == 3
        assert "square" in reg and "circle" not in reg and len(reg) == 2

    def test_unknown_name_lists_the_available(self) -> None:
        with pytest.raises(ValueError, match="unknown shape 'circle'; available: square, triangle"):
            self.shapes().get("circle")

    def test_registered_twice_is_refused(self) -> None:
        reg = self.shapes()
        with pytest.raises(ValueError, match="shape 'square' registered twice"):
            reg.register("square", lambda: 0)

    def test_same_entry_again_only_when_allowed(self) -> None:
        def five() -> int:
            return 5

        strict: Registry[Callable[[], int]] = Registry("n")
        strict.register("five", five)
        with pytest.raises(ValueError, match="registered twice"):
            strict.register("five", five)
        lenient: Registry[Callable[[], int]] = Registry("n", same_again_ok=True)
        lenient.register("five", five)
        lenient.register("five", five)
        with pytest.raises(ValueError, match="registered twice"):
            lenient.register("five", lambda: 5)

    def test_aliases_resolve_silently(self) -> None:
        reg = self.shapes()
        reg.register_aliases({"quad": "square"})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert reg.resolve("quad") == "square"
        assert reg.aliases() == {"quad": "square"}
        assert reg.list() == ["square", "triangle"]

    def test_deprecations_warn_and_resolve(self) -> None:
        reg = self.shapes()
        reg.register_deprecations({"tri": "triangle"})
        with pytest.warns(FutureWarning, match="shape name 'tri' is deprecated; use 'triangle'"):
            assert reg.create("tri", scale=3) == 9
        assert reg.deprecations() == {"tri": "triangle"}
        assert reg.knows("tri") and "tri" not in reg.list()

    def test_other_names_cannot_shadow(self) -> None:
        reg = self.shapes()
        reg.register_deprecations({"tri": "triangle"})
        with pytest.raises(ValueError, match="registered twice"):
            reg.register("tri", lambda: 0)
        with pytest.raises(ValueError, match="registered twice"):
            reg.register_aliases({"square": "triangle"})

    def test_a_name_pointing_at_nothing_is_unknown(self) -> None:
        reg = self.shapes()
        reg.register_aliases({"blob": "circle"})  # the target may be registered later
        with pytest.raises(ValueError, match="unknown shape 'blob'"):
            reg.get("blob")
        reg.register("circle", lambda scale=1: 0)
        assert reg.resolve("blob") == "circle"

    def test_unregister_drops_the_other_names(self) -> None:
        reg = self.shapes()
        reg.register_deprecations({"tri": "triangle"})
        del reg["triangle"]
        assert reg.list() == ["square"] and not reg.knows("tri")

    def test_custom_errors(self) -> None:
        reg: Registry[int] = Registry(
            "backend",
            unknown_error=lambda name, names: KeyError(f"{name} not in {list(names)}"),
            duplicate_error=lambda name: RuntimeError(f"{name} taken"),
        )
        reg.register("a", 1)
        with pytest.raises(KeyError, match=r"b not in \['a'\]"):
            reg.get("b")
        with pytest.raises(RuntimeError, match="a taken"):
            reg.register("a", 2)


@pytest.mark.parametrize(
    ("list_names", "get", "message"),
    [
        (
            "mvface.data.readers:list_readers",
            "mvface.data.readers:get_reader",
            "unknown dataset format 'nope'; known: 300w-lp",
        ),
        (
            "mvface.detection:list_face_detectors",
            "mvface.detection:create_face_detector",
            r"unknown face detector 'nope'; available: \['",
        ),
        (
            "mvface.synth.backends:list_backends",
            "mvface.synth.backends:create_backend",
            r"unknown backend 'nope' \(have \['head', 'mesh'\]\)",
        ),
    ],
)
def test_ported_registries_keep_their_messages(list_names: str, get: str, message: str) -> None:
    def attr(spec: str) -> Callable[..., object]:
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    assert attr(list_names)()  # something registered
    with pytest.raises(Exception, match=message) as info:
        attr(get)("nope")
    assert isinstance(info.value, ValueError | BadInputError)
