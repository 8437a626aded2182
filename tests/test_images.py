"""kdcore.pictures and kdcore.tasks.digits.pictures: real MNIST digits and drawn canvases come out MNIST-like; hostile
files come out as ImageError.

Every picture is made here with Pillow or numpy; nothing is committed.
"""
from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from kdcore import pictures as images
from kdcore.tasks.digits.pictures import ImageError, preprocess

ACCEPTED = "accepted: PNG, JPEG, GIF, BMP, WebP, TIFF"


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def stroke_mask(size: int = 280, offset=(0, 0), width: int = 18, shape: str = "7") -> Image.Image:
    """Strokes (255) on nothing (0), drawn like a mouse on the dashboard's canvas."""
    s = size / 280
    dx, dy = offset
    paths = {"7": [(80, 60), (200, 60), (120, 230)], "1": [(140, 50), (140, 230)]}
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).line([((x + dx) * s, (y + dy) * s) for x, y in paths[shape]],
                              fill=255, width=max(1, round(width * s)), joint="curve")
    return mask


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    x = x[..., 0] if x.ndim == 3 else x
    i = np.arange(x.shape[0])
    return float(x.sum(axis=1) @ i / x.sum()), float(x.sum(axis=0) @ i / x.sum())


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def assert_mnist_like(x: np.ndarray) -> None:
    assert x.shape == (28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


@pytest.fixture(scope="module")
def reference():
    """The drawn "7" as white ink on black, preprocessed: what every other encoding must match."""
    return preprocess(stroke_mask())


# --- real MNIST digits round-trip -----------------------------------------------------------

@pytest.mark.parametrize("scale", [1, 10])
def test_real_mnist_digits_survive_a_round_trip_as_dark_ink_on_white_png(mnist5k, scale):
    """One real digit per class, saved inverted (black on white) as PNG, possibly 10x larger.

    MNIST itself centres with whole-pixel shifts, so a re-centred digit may sit one pixel
    away from the original: the best match within one pixel must be near-perfect.
    """
    plain, shifted = [], []
    for digit in range(10):
        original = mnist5k.x_test[np.flatnonzero(mnist5k.y_test == digit)[0], ..., 0]
        paper = Image.fromarray(255 - np.rint(original * 255).astype(np.uint8))
        if scale > 1:
            paper = paper.resize((28 * scale, 28 * scale), Image.Resampling.LANCZOS)
        out = preprocess(encode(paper))
        assert_mnist_like(out)
        plain.append(corr(out, original))
        shifted.append(max(corr(np.roll(out[..., 0], (dy, dx), (0, 1)), original)
                           for dy in (-1, 0, 1) for dx in (-1, 0, 1)))
    assert min(shifted) > 0.9, shifted
    assert np.mean(plain) > (0.99 if scale == 1 else 0.8), plain


# --- the drawing canvas ----------------------------------------------------------------------

def canvas(background, ink, offset=(-50, -40)) -> np.ndarray:
    """A 280x280x4 uint8 array like streamlit-drawable-canvas's image_data (stroke width 18)."""
    mask = np.asarray(stroke_mask(offset=offset), dtype=np.float32)[..., None] / 255
    rgba = np.asarray(background, np.float32) * (1 - mask) + np.asarray(ink, np.float32) * mask
    return np.rint(rgba).astype(np.uint8)


@pytest.mark.parametrize("background, ink", [
    ((0, 0, 0, 255), (255, 255, 255, 255)),        # the Draw page: black canvas, white strokes
    ((255, 255, 255, 255), (0, 0, 0, 255)),        # white canvas, black strokes
    ((0, 0, 0, 0), (255, 255, 255, 255)),          # transparent canvas, white strokes
    ((0, 0, 0, 0), (0, 0, 0, 255)),                # transparent canvas, black strokes: alpha is all there is
    ((238, 238, 238, 255), (20, 20, 20, 255)),     # the component's default grey background
])
def test_a_canvas_drawing_off_centre_comes_out_centred(reference, background, ink):
    out = preprocess(canvas(background, ink))
    assert_mnist_like(out)
    assert corr(out, reference) > 0.99
    rows = np.flatnonzero(out[..., 0].any(axis=1))
    assert rows[-1] - rows[0] + 1 <= 21  # the ink's longer side was scaled to the 20-pixel box


@pytest.mark.parametrize("source, why", [
    (np.zeros((280, 280, 4), np.uint8), "fully transparent"),
    (np.full((280, 280, 4), (0, 0, 0, 255), np.uint8), "flat colour"),
    (np.full((280, 280, 4), 255, np.uint8), "flat colour"),
    (np.full((280, 280), 0.4, np.float32), "flat colour"),
    (encode(Image.new("RGB", (200, 100), "white")), "flat colour"),
    (encode(Image.new("L", (200, 100), 0), "JPEG"), "flat colour"),
    (encode(Image.new("RGBA", (64, 64), (255, 0, 0, 0))), "fully transparent"),
])
def test_a_blank_picture_or_empty_canvas_is_no_digit(source, why):
    with pytest.raises(ImageError, match=f"no digit found: .*{why}"):
        preprocess(source)


def test_a_speck_of_ink_is_no_digit():
    paper = np.zeros((280, 280), np.uint8)
    paper[100:102, 100:102] = 255
    with pytest.raises(ImageError, match="no digit found: .*speck"):
        preprocess(paper)


def test_faint_noise_on_a_blank_page_is_no_digit():
    paper = np.random.default_rng(0).integers(240, 256, (100, 100)).astype(np.uint8)
    with pytest.raises(ImageError, match="no digit found"):
        preprocess(paper)


# --- encodings, colour modes and orientation -------------------------------------------------

def _black_ink_on_white(size: int = 280) -> Image.Image:
    return Image.eval(stroke_mask(size), lambda v: 255 - v)


def _palette_with_transparency() -> bytes:
    """Ink and background share the colour black: only the transparent palette entry tells them apart."""
    p = Image.new("P", (280, 280), 0)
    p.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    p.paste(1, mask=stroke_mask().point(lambda v: 255 if v > 127 else 0))
    return encode(p, transparency=0)


def _la_black_on_transparent_black() -> bytes:
    return encode(Image.merge("LA", [Image.new("L", (280, 280), 0), stroke_mask()]))


def _rgba_white_on_transparent_white() -> bytes:
    return encode(Image.merge("RGBA", [Image.new("L", (280, 280), 255)] * 3 + [stroke_mask()]))


def _sixteen_bit(fmt: str) -> bytes:
    """Grey ink (20,000 of 65,535) on a light page (50,000): both would be white if clipped at 255."""
    page = np.where(np.asarray(stroke_mask()) > 127, 20000, 50000).astype(np.uint16)
    img = Image.fromarray(page)
    assert img.mode == "I;16"
    return encode(img, fmt)


def _animated_gif() -> bytes:
    """Frame 1 is the "7"; frame 2, a "1", must be ignored."""
    first, second = _black_ink_on_white(), Image.eval(stroke_mask(shape="1"), lambda v: 255 - v)
    return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


ENCODINGS = {
    "png-L": lambda: encode(_black_ink_on_white()),
    "png-1bit": lambda: encode(_black_ink_on_white().convert("1")),
    "png-P-transparency": _palette_with_transparency,
    "png-LA": _la_black_on_transparent_black,
    "png-RGBA": _rgba_white_on_transparent_white,
    "png-16bit": lambda: _sixteen_bit("PNG"),
    "tiff-16bit": lambda: _sixteen_bit("TIFF"),
    "jpeg-RGB": lambda: encode(_black_ink_on_white().convert("RGB"), "JPEG", quality=85),
    "jpeg-CMYK": lambda: encode(_black_ink_on_white().convert("CMYK"), "JPEG"),
    "jpeg-2560px-photo": lambda: encode(_black_ink_on_white(2560).convert("RGB"), "JPEG", quality=80),
    "png-2100px": lambda: encode(_black_ink_on_white(2100)),
    "gif-animated": _animated_gif,
    "bmp": lambda: encode(_black_ink_on_white().convert("RGB"), "BMP"),
    "webp": lambda: encode(_black_ink_on_white().convert("RGB"), "WEBP", quality=80),
    "tiff-RGB": lambda: encode(_black_ink_on_white().convert("RGB"), "TIFF"),
}


@pytest.mark.parametrize("name", ENCODINGS)
def test_every_accepted_format_and_colour_mode_gives_the_same_digit(reference, name):
    out = preprocess(ENCODINGS[name]())
    assert_mnist_like(out)
    assert corr(out, reference) > 0.97


def test_every_kind_of_source_is_accepted(tmp_path, reference):
    """bytes, str and Path paths, an already-read upload (BytesIO with a name), a PIL image, an array."""
    data = encode(_black_ink_on_white())
    path = tmp_path / "digit.png"
    path.write_bytes(data)
    upload = io.BytesIO(data)
    upload.name = "digit.png"
    upload.read()  # Streamlit may hand over an upload whose position is at the end
    for source in (data, bytearray(data), str(path), path, upload, _black_ink_on_white(),
                   np.asarray(_black_ink_on_white()), np.asarray(_black_ink_on_white()) / 255.0):
        assert corr(preprocess(source), reference) > 0.99, type(source)
    assert images.load_image(data).size == (280, 280)


def test_exif_orientation_is_honoured():
    """Pixels stored sideways with Orientation=6 ("rotate 90 degrees clockwise to view") come out upright."""
    upright = Image.eval(stroke_mask(offset=(-30, 0)), lambda v: 255 - v).convert("RGB")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = preprocess(encode(sideways, "JPEG", quality=90, exif=exif.tobytes()))
    expected = preprocess(encode(upright, "JPEG", quality=90))
    assert corr(tagged, expected) > 0.97
    assert corr(preprocess(encode(sideways, "JPEG", quality=90)), expected) < 0.5


# --- refusals --------------------------------------------------------------------------------

def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, followed by a few bytes of pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_pillows_pixel_limit_is_set_to_ours():
    assert Image.MAX_IMAGE_PIXELS == images.MAX_PIXELS == 4096 * 4096


@pytest.mark.parametrize("width, height", [(4097, 4096), (5000, 5000), (40000, 40000)])
@pytest.mark.parametrize("warnings_as_errors", [False, True])
def test_a_decompression_bomb_is_refused_from_its_header(width, height, warnings_as_errors):
    """Pillow warns between 1x and 2x the limit and raises beyond: both become ImageError before decoding."""
    with warnings.catch_warnings():
        warnings.simplefilter("error" if warnings_as_errors else "ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageError, match="image too large: .*16,777,216 pixels"):
            preprocess(_png_claiming(width, height))


def test_too_many_pixels_are_refused_from_arrays_and_pil_images():
    with pytest.raises(ImageError, match="image too large"):
        preprocess(np.zeros((4097, 4097), np.uint8))
    with pytest.raises(ImageError, match="image too large"):
        preprocess(Image.new("1", (8192, 4096)))


def test_a_file_over_max_bytes_is_refused(tmp_path):
    big = encode(_black_ink_on_white()) + bytes(images.MAX_BYTES)
    path = tmp_path / "big.png"
    path.write_bytes(big)
    for source in (big, path, io.BytesIO(big)):
        with pytest.raises(ImageError, match="file too large: over 5 MB"):
            preprocess(source)


@pytest.mark.parametrize("size", [(1, 1), (1, 1000), (1000, 1), (7, 7)])
def test_an_image_too_small_to_hold_a_digit_is_refused(size):
    with pytest.raises(ImageError, match=r"too small to hold a digit: \d+x\d+ pixels"):
        preprocess(encode(Image.new("L", size, 255)))


def test_empty_input_is_refused(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for source in (b"", empty, io.BytesIO()):
        with pytest.raises(ImageError, match=r"the file is empty \(0 bytes\)"):
            preprocess(source)


def test_text_and_pdf_renamed_to_png_are_refused(tmp_path):
    notes = tmp_path / "digit.png"
    notes.write_text("this is my homework, not a picture\n")
    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
    for source in (notes, pdf, b"\x00" * 100):
        with pytest.raises(ImageError, match=f"is not an image Pillow can read; {ACCEPTED}$"):
            preprocess(source)


def test_svg_is_refused_by_name_and_by_content(tmp_path):
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>'
    path = tmp_path / "seven.svg"
    path.write_bytes(b"anything")
    for source in (svg, path):
        with pytest.raises(ImageError, match="SVG is not supported; save the picture as PNG, JPEG"):
            preprocess(source)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt):
    data = encode(_black_ink_on_white().convert("RGB"), fmt)
    Image.open(io.BytesIO(data[: len(data) // 2]))  # the header alone still opens: decoding must be forced
    with pytest.raises(ImageError, match="damaged or truncated"):
        preprocess(data[: len(data) // 2])


def test_a_png_with_corrupt_pixel_data_is_refused():
    data = bytearray(encode(_black_ink_on_white()))
    start = data.index(b"IDAT") + 20
    data[start:start + 40] = bytes(40)
    with pytest.raises(ImageError, match="damaged or truncated"):
        preprocess(bytes(data))


@pytest.mark.parametrize("source, message", [
    (None, "cannot read an image from a NoneType"),
    (12, "cannot read an image from a int"),
    (np.zeros((28, 28, 2), np.uint8), "must be H x W"),
    (np.zeros(784, np.uint8), "must be H x W"),
    (np.full((28, 28), np.nan), "NaN or infinite"),
    (np.full((28, 28), -3.0), r"must lie in \[0, 1\] or \[0, 255\]"),
    (np.full((28, 28), 1000, np.int32), r"must lie in \[0, 1\] or \[0, 255\]"),
    (np.array([["a"] * 28] * 28), "must hold numbers"),
    (np.zeros((0, 0), np.int64), "empty"),
])
def test_sources_that_are_not_pictures_are_refused(source, message):
    with pytest.raises(ImageError, match=message):
        preprocess(source)


def test_missing_paths_and_text_mode_files_are_refused(tmp_path):
    with pytest.raises(ImageError, match="cannot read .*missing.png"):
        preprocess(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="cannot read"):
        preprocess(tmp_path)
    with pytest.raises(ImageError, match="text mode"):
        preprocess(io.StringIO("not bytes"))
