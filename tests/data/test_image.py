"""load_image / image_size: every mode to RGB uint8, EXIF, and every failure as BadInputError."""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mvface.data.image import MAX_PIXELS, image_size, load_image
from mvface.errors import BadInputError


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` RGB pixels (with a tiny, bogus IDAT)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    data += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def _two_colour(width: int = 40, height: int = 20) -> Image.Image:
    """Left half red, right half blue."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = (255, 0, 0)
    arr[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(arr)


def _rgb(img: np.ndarray) -> None:
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    assert img.flags.c_contiguous


class TestLoadImageModes:
    def test_rgb_png_and_ppm(self, tmp_path: Path) -> None:
        for suffix in (".png", ".ppm", ".bmp", ".tif"):
            path = tmp_path / f"a{suffix}"
            _two_colour().save(path)
            img = load_image(path)
            _rgb(img)
            assert img.shape == (20, 40, 3)
            assert tuple(img[0, 0]) == (255, 0, 0) and tuple(img[0, -1]) == (0, 0, 255)
            assert image_size(path) == (40, 20)

    def test_accepts_str_paths(self, tmp_path: Path) -> None:
        path = tmp_path / "a.png"
        _two_colour().save(path)
        assert load_image(str(path)).shape == (20, 40, 3)

    def test_exif_orientation_is_applied(self, tmp_path: Path) -> None:
        path = tmp_path / "rotated.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
        _two_colour(40, 20).save(path, exif=exif.tobytes(), quality=95)
        img = load_image(path)
        assert img.shape == (40, 20, 3)  # width and height swapped
        assert image_size(path) == (20, 40)
        top, bottom = img[:20].reshape(-1, 3).mean(0), img[20:].reshape(-1, 3).mean(0)
        assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
        assert bottom[2] > 200 and bottom[0] < 60

    def test_grey_and_bilevel(self, tmp_path: Path) -> None:
        Image.new("L", (5, 4), 77).save(tmp_path / "g.png")
        img = load_image(tmp_path / "g.png")
        assert img.shape == (4, 5, 3) and np.all(img == 77)
        Image.new("1", (5, 4), 1).save(tmp_path / "b.png")
        assert np.all(load_image(tmp_path / "b.png") == 255)

    def test_palette(self, tmp_path: Path) -> None:
        _two_colour().convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(
            tmp_path / "p.png"
        )
        img = load_image(tmp_path / "p.png")
        assert tuple(img[0, 0]) == (255, 0, 0) and tuple(img[0, -1]) == (0, 0, 255)

    def test_palette_with_transparency_composites_on_black(self, tmp_path: Path) -> None:
        im = _two_colour().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        blue_index = im.getpixel((39, 0))
        im.save(tmp_path / "pt.png", transparency=blue_index)
        img = load_image(tmp_path / "pt.png")
        assert tuple(img[0, 0]) == (255, 0, 0) and tuple(img[0, -1]) == (0, 0, 0)

    def test_rgba_composites_on_black(self, tmp_path: Path) -> None:
        arr = np.zeros((1, 3, 4), np.uint8)
        arr[0] = [(200, 100, 50, 255), (200, 100, 50, 0), (200, 100, 50, 128)]
        Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
        img = load_image(tmp_path / "a.png")
        assert tuple(img[0, 0]) == (200, 100, 50)
        assert tuple(img[0, 1]) == (0, 0, 0)
        assert tuple(img[0, 2]) == (100, 50, 25)

    def test_la_composites_on_black(self, tmp_path: Path) -> None:
        arr = np.array([[[90, 255], [90, 0]]], np.uint8)
        Image.fromarray(arr, "LA").save(tmp_path / "la.png")
        img = load_image(tmp_path / "la.png")
        assert tuple(img[0, 0]) == (90, 90, 90) and tuple(img[0, 1]) == (0, 0, 0)

    def test_cmyk(self, tmp_path: Path) -> None:
        im = Image.new("CMYK", (2, 1))
        im.putpixel((0, 0), (0, 0, 0, 0))  # white
        im.putpixel((1, 0), (0, 255, 255, 0))  # red
        for name in ("c.tif", "c.jpg"):
            im.save(tmp_path / name)
            img = load_image(tmp_path / name)
            assert img.shape == (1, 2, 3)
            assert np.all(np.abs(img[0, 0].astype(int) - 255) <= 8)
            assert img[0, 1, 0] > 240 and img[0, 1, 1] < 20 and img[0, 1, 2] < 20

    def test_16_bit_scaled_by_full_range(self, tmp_path: Path) -> None:
        arr = np.array([[0, 65535, 257 * 100, 300]], np.uint16)
        Image.fromarray(arr).save(tmp_path / "i16.png")
        assert Image.open(tmp_path / "i16.png").mode == "I;16"
        img = load_image(tmp_path / "i16.png")
        np.testing.assert_array_equal(img[0, :, 0], [0, 255, 100, 1])
        assert np.all(img[..., 0] == img[..., 2])

    def test_32_bit_int_in_16_bit_range(self, tmp_path: Path) -> None:
        arr = np.array([[0, 65535, 257 * 10]], np.int32)
        Image.fromarray(arr).save(tmp_path / "i32.tif")
        assert Image.open(tmp_path / "i32.tif").mode == "I"
        np.testing.assert_array_equal(load_image(tmp_path / "i32.tif")[0, :, 0], [0, 255, 10])

    def test_32_bit_int_out_of_range_is_stretched(self, tmp_path: Path) -> None:
        arr = np.array([[-1000, 99000, 49000]], np.int32)
        Image.fromarray(arr).save(tmp_path / "i32.tif")
        np.testing.assert_array_equal(load_image(tmp_path / "i32.tif")[0, :, 0], [0, 255, 128])

    def test_float_unit_range_and_stretch(self, tmp_path: Path) -> None:
        Image.fromarray(np.array([[0.0, 1.0, 0.5]], np.float32)).save(tmp_path / "f.tif")
        np.testing.assert_array_equal(load_image(tmp_path / "f.tif")[0, :, 0], [0, 255, 128])
        Image.fromarray(np.array([[-2.0, 6.0, 2.0]], np.float32)).save(tmp_path / "g.tif")
        np.testing.assert_array_equal(load_image(tmp_path / "g.tif")[0, :, 0], [0, 255, 128])
        Image.fromarray(np.full((2, 2), 7.0, np.float32)).save(tmp_path / "h.tif")
        assert np.all(load_image(tmp_path / "h.tif") == 0)

    def test_every_16_bit_value_rounds_as_v_over_257(self, tmp_path: Path) -> None:
        arr = np.arange(65536, dtype=np.uint16).reshape(256, 256)
        Image.fromarray(arr).save(tmp_path / "all.png")
        img = load_image(tmp_path / "all.png")
        expected = np.rint(arr / 257.0).astype(np.uint8)
        np.testing.assert_array_equal(img[..., 0], expected)

    def test_band_by_band_conversion_stretches_with_the_whole_image_range(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import mvface.data.image

        monkeypatch.setattr(mvface.data.image, "_BAND_PIXELS", 8)  # 2 rows of 4 per band
        arr = np.zeros((8, 4), np.float32)
        arr[0, 0], arr[7, 3], arr[4, 2] = 6.0, -2.0, np.nan  # max, min in different bands
        Image.fromarray(arr).save(tmp_path / "f.tif")
        img = load_image(tmp_path / "f.tif")[..., 0]
        assert img[0, 0] == 255 and img[7, 3] == 0 and img[1, 1] == 64 and img[4, 2] == 64

    def test_multi_frame_gif_gives_first_frame(self, tmp_path: Path) -> None:
        frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        img = load_image(tmp_path / "a.gif")
        assert img.shape == (4, 4, 3) and img[0, 0, 0] > 200 and img[0, 0, 1] < 50

    def test_content_decides_not_extension(self, tmp_path: Path) -> None:
        path = tmp_path / "really_a_png.jpg"
        _two_colour().save(path, format="PNG")
        assert tuple(load_image(path)[0, 0]) == (255, 0, 0)


class TestFailures:
    def _fails(self, path: Path, needle: str) -> None:
        for fn in (load_image, image_size):
            with pytest.raises(BadInputError, match=needle) as info:
                fn(path)
            assert info.value.source == str(path)
            assert "\n" not in str(info.value)

    def test_missing(self, tmp_path: Path) -> None:
        self._fails(tmp_path / "nope.jpg", "does not exist")

    def test_directory(self, tmp_path: Path) -> None:
        self._fails(tmp_path, "directory")

    def test_empty(self, tmp_path: Path) -> None:
        (tmp_path / "e.jpg").write_bytes(b"")
        self._fails(tmp_path / "e.jpg", "empty")

    def test_garbage(self, tmp_path: Path) -> None:
        (tmp_path / "g.jpg").write_bytes(os.urandom(2000))
        self._fails(tmp_path / "g.jpg", "not a recognised image")

    def test_text_file(self, tmp_path: Path) -> None:
        (tmp_path / "t.png").write_text("version: 1\n")
        self._fails(tmp_path / "t.png", "not a recognised image")

    @pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
    def test_truncated(self, tmp_path: Path, fmt: str) -> None:
        path = tmp_path / f"t.{fmt.lower()}"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, format=fmt)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        assert image_size(path) == (64, 64)  # the header is intact
        with pytest.raises(BadInputError, match="truncated or corrupt"):
            load_image(path)

    def test_truncated_header(self, tmp_path: Path) -> None:
        path = tmp_path / "t.png"
        _two_colour().save(path)
        path.write_bytes(path.read_bytes()[:20])
        self._fails(path, "t.png")

    @pytest.mark.parametrize(("width", "height"), [(20000, 20000), (12000, 9000)])
    def test_decompression_bomb_refused_from_header(
        self, tmp_path: Path, width: int, height: int
    ) -> None:
        assert width * height > MAX_PIXELS
        path = _png_header_only(tmp_path / "bomb.png", width, height)
        assert path.stat().st_size < 200
        self._fails(path, "megapixel")

    def test_large_but_allowed_header_is_read(self, tmp_path: Path) -> None:
        path = _png_header_only(tmp_path / "big.png", 9000, 9000)  # 81 MP < 100 MP
        assert image_size(path) == (9000, 9000)

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
    )
    def test_permission_denied(self, tmp_path: Path) -> None:
        path = tmp_path / "secret.png"
        _two_colour().save(path)
        path.chmod(0)
        try:
            self._fails(path, "permission denied")
        finally:
            path.chmod(0o644)


def test_permission_denied_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same check as above, also when running as root."""
    path = tmp_path / "secret.png"
    _two_colour().save(path)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    for fn in (load_image, image_size):
        with pytest.raises(BadInputError, match=r"secret\.png: permission denied"):
            fn(path)


_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff\xe0"


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(prefix=st.sampled_from([b"", _PNG, _JPEG, b"P6\n", b"GIF89a", b"BM"]), body=st.binary())
def test_random_bytes_raise_only_bad_input(tmp_path: Path, prefix: bytes, body: bytes) -> None:
    path = tmp_path / "fuzz.img"
    path.write_bytes(prefix + body)
    for fn in (load_image, image_size):
        with contextlib.suppress(BadInputError):
            fn(path)
