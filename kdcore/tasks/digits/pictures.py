"""Turn an uploaded or drawn digit into the 28x28 input a KD Studio model expects.

A model trained on MNIST only works on pictures that look like MNIST, so
:func:`preprocess` repeats the MNIST recipe (LeCun et al.): white ink on a
black background, the ink's bounding box scaled with anti-aliasing to fit a
20x20 box (aspect ratio kept), then pasted into 28x28 so that its centre of
mass falls on pixel (14, 14) -- the mean centre of mass of real MNIST digits.

The picture is read by :func:`kdcore.pictures.load_image` (the size and
format guards every upload passes); everything after it is defensive too, and
every failure is one :class:`~kdcore.pictures.ImageError` sentence. Deliberate refusals:

* images narrower than ``MIN_SIDE`` pixels on either side ("too small to hold
  a digit"): a 1x1 or 1x1000 picture cannot show a handwritten digit;
* blank pictures -- one flat colour, fully transparent, or an empty canvas --
  and pictures whose only ink is a speck: "no digit found", so the dashboard
  never shows a confident prediction for noise.

Run ``python -m kdcore.tasks.digits.pictures [FILE ...]`` to time the pipeline by hand.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from ...pictures import ACCEPTED, WORK_SIDE, ImageError, load_image

MIN_SIDE = 8  # a handwritten digit needs at least this many pixels each way
MNIST_SIZE = 28
MNIST_BOX = 20
MNIST_CENTRE = 14.0
INK_THRESHOLD = 0.1  # fraction of the strongest ink that still counts for the bounding box
MIN_CONTRAST = 0.15  # ink must differ from the background by 15 % of full scale
MIN_INK_SPAN = 3  # an ink bounding box smaller than this each way is a speck, not a digit


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


def sample_canvas() -> np.ndarray:
    """A 280×280 RGBA drawing like the Draw page's canvas returns: a white 7 on black."""
    from PIL import ImageDraw

    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(canvas).line([(90, 60), (190, 60), (120, 230)], fill=(255, 255, 255, 255), width=18)
    return np.asarray(canvas)


def _bench(paths: list[str], repeats: int = 50) -> None:
    """Print how long preprocess takes: on the given files, or on a drawn 280x280 RGBA canvas."""
    if not paths:
        sources = {"280x280 RGBA canvas": sample_canvas()}
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
