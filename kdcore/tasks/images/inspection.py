"""One photo as an image model sees it: cropped, resized and given in the model's channels, with a note saying so."""
from __future__ import annotations

import numpy as np

from ...pictures import load_image
from .data import to_channels


def prepare_photo(source, shape) -> tuple[np.ndarray, str]:
    """(H×W×C float32 in [0, 1], a note) for a photo: centre-cropped to the model's aspect and resized to it.

    The photo is read by :func:`kdcore.pictures.load_image` (its size and format
    guards hold for colour too); transparency is laid on white. A colour photo
    given to a grey model is made grey, and a grey photo given to a colour
    model is repeated over R, G and B: the note says which, for the page to show.
    """
    from PIL import Image, ImageOps

    h, w, c = (int(s) for s in shape)
    img = load_image(source)
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = np.asarray(ImageOps.fit(Image.alpha_composite(white, rgba).convert("RGB"), (w, h),
                                  Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    grey_photo = np.ptp(rgb, axis=-1).max() < 1 / 255
    if c == 1:
        note = "" if grey_photo else "This model sees grey images, so the colour photo was turned grey."
        return to_channels(rgb, 1), note
    return rgb, ("This model sees colour images; the photo is grey, so its grey is given as R, G and B."
                 if grey_photo else "")
