import numpy as np
import pytest

from mvface.errors import BadInputError
from mvface.models import LandmarkModel, Landmarks, ModelConfig, create_model, list_models
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
