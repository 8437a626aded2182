"""Turn an uploaded or drawn digit into the 28x28 input a KD Studio model expects.

A model trained on MNIST only works on pictures that look like MNIST, so
:func:`preprocess` repeats the MNIST recipe (LeCun et al.): white ink on a
black background, the ink's bounding box scaled with anti-aliasing to fit a
20x20 box (aspect ratio kept), then pasted into 28x28 so that its centre of
mass falls on pixel (14, 14) -- the mean centre of mass of real MNIST digits.

The inputs come from strangers (file uploads) and from a drawing canvas, so
everything here is defensive: :func:`load_image` reads only the formats listed
in ``ACCEPTED``, refuses files over ``MAX_BYTES`` and images over
``MAX_PIXELS`` from the header alone (before any pixel is decoded), forces
Pillow's lazy decoding inside its guard so truncated files fail here, and turns
every failure into one :class:`ImageError` sentence. Deliberate refusals:

* images narrower than ``MIN_SIDE`` pixels on either side ("too small to hold
  a digit"): a 1x1 or 1x1000 picture cannot show a handwritten digit;
* blank pictures -- one flat colour, fully transparent, or an empty canvas --
  and pictures whose only ink is a speck: "no digit found", so the dashboard
  never shows a confident prediction for noise.

Run ``python -m kdcore.tasks.digits.pictures [FILE ...]`` to time the pipeline by hand.
"""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024  # same bound as maxUploadSize = 5 in .streamlit/config.toml
MAX_PIXELS = 4096 * 4096  # larger pictures are refused as possible decompression bombs
MIN_SIDE = 8  # a handwritten digit needs at least this many pixels each way
WORK_SIDE = 1024  # larger pictures are averaged down to about this size before analysis
ACCEPTED = "PNG, JPEG, GIF, BMP, WebP, TIFF"
PIL_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # JPEG also opens phones' MPO files

MNIST_SIZE = 28
MNIST_BOX = 20
MNIST_CENTRE = 14.0
INK_THRESHOLD = 0.1  # fraction of the strongest ink that still counts for the bounding box
MIN_CONTRAST = 0.15  # ink must differ from the background by 15 % of full scale
MIN_INK_SPAN = 3  # an ink bounding box smaller than this each way is a speck, not a digit

# Pillow refuses (or warns about) larger images in Image.open itself; setting the
# limit here makes that check agree with ours instead of Pillow's default 89 MP.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """A picture that cannot become a digit; the message is one readable sentence."""


def _not_an_image(what: str) -> ImageError:
    return ImageError(f"{what} is not an image Pillow can read; accepted: {ACCEPTED}")


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(f"image too large: {width}x{height} pixels is over the limit of "
                         f"{MAX_PIXELS:,} pixels (4096x4096); a digit needs far fewer")


def _looks_like_svg(head: bytes) -> bool:
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and b"<svg" in head


def _svg_error() -> ImageError:
    return ImageError(f"SVG is not supported; save the digit as {ACCEPTED} instead")


def _read_bytes(source) -> bytes:
    """At most ``MAX_BYTES + 1`` bytes from a path or a file-like object (one more tells "too big")."""
    name = str(getattr(source, "name", source) or "")
    if name.lower().endswith(".svg"):
        raise _svg_error()
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fh:
                return fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ImageError(f"cannot read {os.fspath(source)!r}: {exc.strerror or exc}") from exc
    try:
        if getattr(source, "seekable", lambda: False)():
            source.seek(0)
        data = source.read(MAX_BYTES + 1)
    except Exception as exc:  # any file-like object may fail in its own way
        raise ImageError(f"cannot read the uploaded file ({type(exc).__name__})") from exc
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError("the file was opened in text mode; pass it opened in binary mode ('rb')")
    return bytes(data)


def _decode(data: bytes) -> Image.Image:
    if not data:
        raise ImageError(f"the file is empty (0 bytes); upload a {ACCEPTED} image")
    if len(data) > MAX_BYTES:
        raise ImageError(f"file too large: over {MAX_BYTES // (1024 * 1024)} MB; "
                         f"a digit image needs only a few KB")
    if _looks_like_svg(data[:1024]):
        raise _svg_error()
    if data.startswith(b"%PDF"):
        raise _not_an_image("this PDF document")
    # Pillow's decoders raise an open-ended set of exceptions on hostile bytes
    # (OSError, SyntaxError, ValueError, struct.error, EOFError, ...); every one
    # of them means "this file cannot be read", so each becomes an ImageError.
    try:
        img = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
        _check_pixels(*img.size)  # from the header: nothing decoded yet
        img.draft(None, (WORK_SIDE, WORK_SIDE))  # JPEG only: decode big photos at 1/2, 1/4 or 1/8 scale
        img.load()  # force lazy decoding here, inside the guard (first frame of an animation)
        ImageOps.exif_transpose(img, in_place=True)
        return img
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large: over the limit of {MAX_PIXELS:,} pixels (4096x4096); "
                         "it may be a decompression bomb") from exc
    except UnidentifiedImageError as exc:
        raise _not_an_image("this file") from exc
    except Exception as exc:
        raise ImageError(f"the image file is damaged or truncated ({type(exc).__name__}); "
                         f"save it again as {ACCEPTED}") from exc


def _from_array(array: np.ndarray) -> Image.Image:
    """A canvas (H x W x 4 RGBA) or an H x W [x 1|3] picture, uint8 or floats in [0, 1] or [0, 255]."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ImageError(f"an image array must be H x W (grayscale), H x W x 3 (RGB) or H x W x 4 (RGBA) "
                         f"(got shape {a.shape})")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ImageError(f"an image array must hold numbers (got dtype {a.dtype})")
    _check_pixels(a.shape[1], a.shape[0])
    if a.size == 0:
        raise ImageError(f"the image array is empty (shape {a.shape})")
    if a.dtype != np.uint8:
        if not np.isfinite(a).all():
            raise ImageError("the image array contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 255:
            raise ImageError(f"image array values must lie in [0, 1] or [0, 255] (got {lo:g} to {hi:g})")
        scale = 255.0 if np.issubdtype(a.dtype, np.floating) and hi <= 1.0 else 1.0
        a = np.rint(a.astype(np.float64) * scale).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a))


def load_image(source) -> Image.Image:
    """Decode and validate ``source`` into an upright PIL image (first frame only).

    ``source`` may be bytes, a path, a binary file-like object (Streamlit's
    UploadedFile), a PIL image or a numpy array. Raises :class:`ImageError`.
    """
    if isinstance(source, Image.Image):
        _check_pixels(*source.size)
        try:
            source.load()
            return ImageOps.exif_transpose(source)
        except Exception as exc:  # a lazily opened image may still fail to decode
            raise ImageError(f"the image could not be decoded ({type(exc).__name__}); "
                             f"save it again as {ACCEPTED}") from exc
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source))
    if isinstance(source, (str, os.PathLike)) or hasattr(source, "read"):
        return _decode(_read_bytes(source))
    raise ImageError(f"cannot read an image from a {type(source).__name__}; pass bytes, a file path, "
                     "an uploaded file, a PIL image or a numpy array")


def _gray_and_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Lightness in [0, 1] and, when the image has transparency, opacity in [0, 1].

    16- and 32-bit grayscale are scaled by their real range: Pillow's own
    ``convert("L")`` clips them at 255, which would turn most pictures white.
    """
    if img.mode.startswith("I;16"):
        return np.asarray(img, dtype=np.float32) / 65535.0, None
    if img.mode in ("I", "F"):
        g = np.asarray(img, dtype=np.float32)
        top = float(g.max()) if g.size else 0.0
        full = 1.0 if img.mode == "F" and top <= 1.0 else 255.0 if top <= 255 else 65535.0
        return np.clip(g / full, 0.0, 1.0), None
    if img.mode == "LAB":
        return np.asarray(img.getchannel("L"), dtype=np.float32) / 255.0, None
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        return (np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0,
                np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0, None


def _flatten_alpha(gray: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite onto the colour that contrasts with the opaque strokes: transparent means background.

    A canvas with a transparent background holds only strokes, so the strokes'
    typical lightness says whether the missing background is white or black.
    """
    if alpha is None or alpha.min() >= 1.0:
        return gray
    opaque = alpha >= 0.5
    if not opaque.any():
        raise ImageError("no digit found: the image is fully transparent (an empty canvas?); draw or upload a digit")
    background = 1.0 if np.median(gray[opaque]) < 0.5 else 0.0
    return gray * alpha + background * (1.0 - alpha)


def _shrink(gray: np.ndarray) -> np.ndarray:
    """Average blocks of pixels so the longer side is about ``WORK_SIDE``.

    A 20x20 digit box needs no more detail, and this bounds what a
    16-megapixel upload costs on a shared CPU.
    """
    k = min(-(-max(gray.shape) // WORK_SIDE), min(gray.shape) // MIN_SIDE)
    if k <= 1:
        return gray
    h, w = gray.shape[0] // k * k, gray.shape[1] // k * k
    return gray[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def _ink(gray: np.ndarray) -> np.ndarray:
    """White ink on black, background at 0 and the strongest ink at 1.

    The background is the median of the image's border; the ink is whichever
    side (darker or lighter) strays further from it, so black-on-white paper,
    white-on-black canvases and grey backgrounds all come out the MNIST way.
    """
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(border))
    if background - gray.min() > gray.max() - background:
        gray, background = 1.0 - gray, 1.0 - background
    ink = np.clip(gray - background, 0.0, None)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise ImageError("no digit found: the image is one flat colour with no visible ink; "
                         "draw or upload a digit that contrasts with its background")
    return ink / peak


def _fit_box(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink's bounding box and scale it (anti-aliased, aspect kept) to fit 20x20."""
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    if max(height, width) < MIN_INK_SPAN:
        raise ImageError("no digit found: the only ink is a speck a few pixels wide; draw a larger digit")
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = MNIST_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    box = np.asarray(Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32))
                     .resize(size, Image.Resampling.LANCZOS))
    return np.clip(box, 0.0, None)


def _centre(box: np.ndarray) -> np.ndarray:
    """Paste into 28x28 so the centre of mass lands on (14, 14), staying inside the frame."""
    height, width = box.shape
    mass = box.sum()
    cy = (box.sum(axis=1) @ np.arange(height)) / mass
    cx = (box.sum(axis=0) @ np.arange(width)) / mass
    top = int(np.clip(round(MNIST_CENTRE - cy), 0, MNIST_SIZE - height))
    left = int(np.clip(round(MNIST_CENTRE - cx), 0, MNIST_SIZE - width))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    out[top:top + height, left:left + width] = box
    return out


def preprocess(source) -> np.ndarray:
    """Any accepted digit picture -> float32 (28, 28, 1) in [0, 1], white ink on black like MNIST.

    Raises :class:`ImageError` (and nothing else) for anything that is not a
    readable picture of a digit.
    """
    img = load_image(source)
    width, height = img.size
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"image too small to hold a digit: {width}x{height} pixels; "
                         f"need at least {MIN_SIDE} pixels on each side")
    try:
        gray, alpha = _gray_and_alpha(img)
    except Exception as exc:  # exotic modes (e.g. premultiplied La) Pillow cannot convert
        raise ImageError(f"unsupported colour mode {img.mode!r}; save the digit as {ACCEPTED}") from exc
    box = _fit_box(_ink(_shrink(_flatten_alpha(gray, alpha))))
    out = _centre(box)
    return (out / out.max())[..., None]


def _bench(paths: list[str], repeats: int = 50) -> None:
    """Print how long preprocess takes: on the given files, or on a drawn 280x280 RGBA canvas."""
    from PIL import ImageDraw

    if not paths:
        canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
        ImageDraw.Draw(canvas).line([(90, 60), (190, 60), (120, 230)], fill=(255, 255, 255, 255), width=18)
        sources = {"280x280 RGBA canvas": np.asarray(canvas)}
    else:
        sources = {p: Path(p).read_bytes() for p in paths}
    for name, src in sources.items():
        start = time.perf_counter()
        for _ in range(repeats):
            preprocess(src)
        print(f"{name}: {(time.perf_counter() - start) / repeats * 1000:.2f} ms per preprocess")


if __name__ == "__main__":
    import sys

    _bench(sys.argv[1:])
