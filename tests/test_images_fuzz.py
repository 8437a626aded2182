"""Fuzzing kdcore.tasks.digits.pictures.preprocess: whatever bytes or arrays arrive, only ImageError may come out.

Hypothesis throws random bytes, damaged copies of valid files in every accepted
format, and arbitrary numpy arrays at preprocess; a bounded number of examples
keeps this to a few seconds.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from kdcore.tasks.digits.pictures import ImageError, preprocess

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _seed_files() -> list[bytes]:
    """A small drawn digit in every accepted format: the starting points for mutations."""
    digit = Image.new("L", (32, 32), 255)
    ImageDraw.Draw(digit).line([(8, 6), (24, 6), (12, 26)], fill=0, width=3)
    files = []
    for fmt, img, kw in [("PNG", digit, {}), ("PNG", digit.convert("RGBA"), {}), ("JPEG", digit, {}),
                         ("GIF", digit, {}), ("BMP", digit, {}), ("WEBP", digit, {"lossless": True}),
                         ("TIFF", digit, {})]:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        files.append(buf.getvalue())
    return files


SEEDS = _seed_files()


@pytest.mark.parametrize("seed", SEEDS, ids=lambda b: b[:4].hex())
def test_every_seed_file_is_a_readable_digit(seed):
    """The mutations start from files that really work, so their damage is what is being tested."""
    assert preprocess(seed).shape == (28, 28, 1)


def only_image_errors(source) -> None:
    try:
        out = preprocess(source)
    except ImageError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert out.shape == (28, 28, 1) and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@st.composite
def damaged_files(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(max_size=64))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))):]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_give_only_image_errors(data):
    only_image_errors(data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the damage it skips over
@FUZZ
@given(damaged_files())
def test_damaged_files_give_only_image_errors(data):
    only_image_errors(data)


@FUZZ
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.float64, np.bool_]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=32)))
@pytest.mark.slow
def test_arbitrary_arrays_give_only_image_errors(array):
    only_image_errors(array)
