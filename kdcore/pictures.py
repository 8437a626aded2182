"""Read a picture from a stranger safely: one guarded door for every file, upload, canvas or array.

The inputs come from strangers (file uploads) and from a drawing canvas, so
:func:`load_image` reads only the formats listed in ``ACCEPTED``, refuses
files over ``MAX_BYTES`` and images over ``MAX_PIXELS`` from the header alone
(before any pixel is decoded), forces Pillow's lazy decoding inside its guard
so truncated files fail here, and turns every failure into one
:class:`ImageError` sentence. What a task then makes of the picture (a
centred MNIST digit, a cropped photo) is the task's: each task that takes
pictures reads them through here.
"""
from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024  # same bound as maxUploadSize = 5 in .streamlit/config.toml
MAX_PIXELS = 4096 * 4096  # larger pictures are refused as possible decompression bombs
WORK_SIDE = 1024  # larger pictures are averaged down to about this size before analysis
ACCEPTED = "PNG, JPEG, GIF, BMP, WebP, TIFF"
PIL_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # JPEG also opens phones' MPO files

# Pillow refuses (or warns about) larger images in Image.open itself; setting the
# limit here makes that check agree with ours instead of Pillow's default 89 MP.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """A picture that cannot be used; the message is one readable sentence."""


def _not_an_image(what: str) -> ImageError:
    return ImageError(f"{what} is not an image Pillow can read; accepted: {ACCEPTED}")


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(f"image too large: {width}x{height} pixels is over the limit of "
                         f"{MAX_PIXELS:,} pixels (4096x4096); a picture to classify needs far fewer")


def _looks_like_svg(head: bytes) -> bool:
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and b"<svg" in head


def _svg_error() -> ImageError:
    return ImageError(f"SVG is not supported; save the picture as {ACCEPTED} instead")


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
                         "a picture to classify needs only a few KB")
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
