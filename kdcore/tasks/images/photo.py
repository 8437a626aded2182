"""A photo on the dataset's background: light-on-dark datasets get light-on-dark photos.

Fashion-MNIST's clothes are light on black; a phone photo of trousers on a
light table is dark on light, and a model that never saw a light background
reads it as a different picture. The digits screen settles the same question
for ink on paper (:func:`kdcore.tasks.digits.pictures.preprocess`): the background is the
median of the picture's border. Here the dataset's border says which background its
images have, and a photo with the other one is inverted.
"""
from __future__ import annotations

import numpy as np

MID_GREY_MARGIN = 0.25  # a dataset whose borders sit within this of mid-grey (CIFAR's photos) has no convention
SAMPLE = 1000  # training images whose borders are read: the convention shows in far fewer


def border_median(pixels: np.ndarray) -> float:
    """The median of the outermost rows and columns of one H×W×C image, or of a stack N×H×W×C of them."""
    edges = (pixels[..., 0, :, :], pixels[..., -1, :, :], pixels[..., 1:-1, 0, :], pixels[..., 1:-1, -1, :])
    return float(np.median(np.concatenate([edge.ravel() for edge in edges])))


def match_background(image: np.ndarray, data) -> tuple[np.ndarray, str]:
    """(``image``, or ``1 - image`` when its background is light and the dataset's dark or the reverse; a note).

    ``image`` is one photo as :func:`prepare_photo` returns it (H×W×C in
    [0, 1]); ``data`` is the dataset the models learnt from. The note is one
    sentence for the page, or "" when nothing was done.
    """
    ours = border_median(data.x_train[:SAMPLE])
    if abs(ours - 0.5) < MID_GREY_MARGIN:
        return image, ""
    theirs = border_median(image)
    if (theirs > 0.5) == (ours > 0.5):
        return image, ""
    light, dark = ("light", "dark") if theirs > 0.5 else ("dark", "light")
    return (1.0 - image).astype(image.dtype), (f"Inverted: the photo's background is {light} and {data.name}'s "
                                               f"images have {dark} backgrounds, as the models learnt them.")
