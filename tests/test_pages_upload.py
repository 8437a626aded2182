"""Upload (colour-images task): a photo follows the dataset's background convention, and the screen says so.

Pictures are made with Pillow here; the dataset is the real fashion-mnist-3k
(light clothes on black), and the models are real but untrained: the screen
and the conversion are under test, not the predictions.
"""
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from kdcore.tasks import images
from kdcore.tasks.images import photo
from tests.conftest import ROOT


def trousers(background: int, shape: int) -> bytes:
    """A 60×40 PNG: two trouser legs of grey ``shape`` on a plain ``background``."""
    img = Image.new("L", (40, 60), background)
    draw = ImageDraw.Draw(img)
    draw.rectangle((10, 8, 30, 16), fill=shape)
    draw.rectangle((10, 16, 18, 52), fill=shape)
    draw.rectangle((22, 16, 30, 52), fill=shape)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def fashion():
    return images.load("fashion-mnist-3k")


def test_a_light_background_photo_is_inverted_for_a_dataset_of_light_things_on_black(fashion):
    seen, _ = images.prepare_photo(trousers(background=230, shape=40), (28, 28, 1))
    matched, note = photo.match_background(seen, fashion)
    np.testing.assert_allclose(matched, 1.0 - seen)
    assert photo.border_median(matched) < 0.2 and matched[20, 10, 0] > 0.7  # dark table, light trousers
    assert note == ("Inverted: the photo's background is light and fashion-mnist-3k's images have dark "
                    "backgrounds, as the models learnt them.")


def test_a_dark_background_photo_and_a_dataset_without_a_convention_are_left_alone(fashion):
    seen, _ = images.prepare_photo(trousers(background=10, shape=200), (28, 28, 1))
    assert photo.match_background(seen, fashion) == (seen, "")
    rng = np.random.default_rng(0)
    scenes = fashion.subset(200, 10)
    scenes.x_train = rng.uniform(0, 1, scenes.x_train.shape).astype("float32")  # photos: borders of every shade
    light, _ = images.prepare_photo(trousers(background=230, shape=40), (28, 28, 1))
    assert photo.match_background(light, scenes) == (light, "")


@pytest.mark.slow
def test_the_upload_screen_shows_the_inverted_photo_and_says_why(fashion):
    from streamlit.testing.v1 import AppTest

    from kdcore import storage

    shape, classes = fashion.x_train.shape[1:], len(fashion.classes)
    nets = {"teacher": images.build_teacher(images.TeacherConfig(width=0.0625), shape, classes),
            "student": images.build_student(images.StudentConfig(filters=2, depth=1), 0, shape, classes)}
    for kind, net in nets.items():
        storage.save_model(net, storage.model_path(kind), {"kind": kind, "task": "images",
                                                           "dataset": "fashion-mnist-3k"})
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["task"], at.session_state["dataset"] = "images", "fashion-mnist-3k"
    at.switch_page("pages/upload.py").run()
    at.file_uploader(key="upload.photo").upload("table.png", trousers(230, 40), "image/png").run()
    assert not at.exception and not at.error, [e.value for e in at.exception]
    shown = [c.value for c in at.caption]
    assert any(c.startswith("Inverted: the photo's background is light") for c in shown), shown
    assert at.session_state["drawn_digit"]["image"][0, 0, 0] < 0.2  # what Temperature gets is the inverted photo
    at.file_uploader(key="upload.photo").upload("night.png", trousers(10, 200), "image/png").run()
    assert not any(c.value.startswith("Inverted") for c in at.caption)
