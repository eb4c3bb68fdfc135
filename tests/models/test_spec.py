import warnings

import pytest

from mvface.errors import BadInputError
from mvface.models import ModelSpec, parse_model_spec, parse_model_specs


def quiet(text: str) -> ModelSpec:
    """Parse, failing on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return parse_model_spec(text)


class TestParseModelSpec:
    def test_name(self) -> None:
        assert quiet("base") == ModelSpec("base", "base", None)
        assert quiet("  base+ ") == ModelSpec("base+", "base+", None)

    def test_name_and_weights(self) -> None:
        assert quiet("3ddfa-v2:../w") == ModelSpec("3ddfa-v2", "3ddfa-v2", "../w")

    def test_label_and_name(self) -> None:
        assert quiet("mp=base") == ModelSpec("mp", "base", None)

    def test_label_name_and_weights(self) -> None:
        spec = quiet("mine=base+:runs/x/model.safetensors")
        assert spec == ModelSpec("mine", "base+", "runs/x/model.safetensors")

    def test_a_label_may_be_a_model_name(self) -> None:
        # both sides registered: LABEL=NAME, never NAME=WEIGHTS
        assert quiet("base=fast") == ModelSpec("base", "fast", None)

    def test_weights_path_with_colons_and_equals(self) -> None:
        # split on the first ":" only after a model name, on "=" only before one
        assert quiet("dlib:/a:b/c=d.dat") == ModelSpec("dlib", "dlib", "/a:b/c=d.dat")
        assert quiet("x=dlib:/a:b=c") == ModelSpec("x", "dlib", "/a:b=c")

    def test_old_names_warn_and_become_current(self) -> None:
        with pytest.warns(FutureWarning, match="'default' is deprecated; use 'base'"):
            assert parse_model_spec("default") == ModelSpec("base", "base", None)
        with pytest.warns(FutureWarning, match="'dlib-68' is deprecated"):
            assert parse_model_spec("d=dlib-68:/w") == ModelSpec("d", "dlib", "/w")

    def test_old_name_equals_weights_spelling_warns(self) -> None:
        with pytest.warns(FutureWarning, match="NAME=WEIGHTS is deprecated; write 3ddfa-v2:/w"):
            assert parse_model_spec("3ddfa-v2=/w") == ModelSpec("3ddfa-v2", "3ddfa-v2", "/w")
        with pytest.warns(FutureWarning, match="write 3ddfa-v2:/a:b"):
            assert parse_model_spec("3ddfa-v2=/a:b").weights == "/a:b"

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("nope", "not a registered model; available: 3ddfa-v2, base"),
            ("/some/path:base", "not a registered model"),
            ("foo=bar", "neither side names a registered model; available: 3ddfa-v2"),
            ("dlib:", "weights path after ':' is empty"),
            ("x=dlib: ", "weights path after ':' is empty"),
            ("=base", "expected NAME[:WEIGHTS] or LABEL=NAME[:WEIGHTS]"),
            ("base=", "expected NAME[:WEIGHTS] or LABEL=NAME[:WEIGHTS]"),
            ("  ", "empty model spec"),
        ],
    )
    def test_bad_specs_are_one_line_errors(self, text: str, message: str) -> None:
        with pytest.raises(BadInputError, match=message.replace("[", r"\[")) as info:
            parse_model_spec(text)
        assert "\n" not in str(info.value)

    @pytest.mark.parametrize(
        "text", ["base", "3ddfa-v2:/a:b=c", "mp=base", "x=dlib:/w", "base=fast", "l:x=base:/w"]
    )
    def test_text_round_trips(self, text: str) -> None:
        spec = quiet(text)
        assert quiet(spec.text) == spec

    def test_old_spellings_come_back_current(self) -> None:
        with pytest.warns(FutureWarning):
            spec = parse_model_spec("dlib-68=/w")
        assert spec.text == "dlib:/w"

    def test_with_weights(self) -> None:
        assert quiet("base+").with_weights("/w") == ModelSpec("base+", "base+", "/w")
        assert quiet("base+:/w").with_weights(None).weights == "/w"
        with pytest.raises(BadInputError, match="weights given twice"):
            quiet("base+:/w").with_weights("/v")

    def test_named_and_to_dict(self) -> None:
        spec = ModelSpec.named("dlib", "/w")
        assert spec == ModelSpec("dlib", "dlib", "/w")
        assert spec.to_dict() == {"label": "dlib", "name": "dlib", "weights": "/w"}


class TestParseModelSpecs:
    def test_comma_list_and_sequence(self) -> None:
        specs = parse_model_specs("dlib, base ,x=base")
        assert [s.label for s in specs] == ["dlib", "base", "x"]
        assert parse_model_specs(["dlib", "x=base"]) == [specs[0], specs[2]]

    def test_labels_must_be_unique(self) -> None:
        with pytest.raises(BadInputError, match="label used twice: base"):
            parse_model_specs("base,base=base")

    def test_nothing_given(self) -> None:
        with pytest.raises(BadInputError, match="no model given"):
            parse_model_specs(" , ")
