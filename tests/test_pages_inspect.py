"""The Temperature, Predictions and Draw screens, driven through the real app with Streamlit's AppTest.

Models are real: the session's ``teacher_file`` becomes the active teacher
(re-saved into this test's KDSTUDIO_HOME with ``storage.save_model``), and a
tiny student is really distilled from it once per session (one epoch, 16
hidden units, 800 digits): weak on purpose, so it disagrees with the teacher
often enough for the filters to have something to show. The drawing canvas is
a custom component AppTest cannot drive; the browser tests draw on it, these
tests use the file uploader, which feeds the same preprocessing.
"""
import io
import json
import re

import numpy as np
import pytest

from kdcore.tasks.digits import DIGITS
from PIL import Image

from kdcore import inference, storage
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
TIMEOUT = 60


@pytest.fixture(scope="session")
def teacher_model(teacher_file):
    return storage.load_model(teacher_file)


@pytest.fixture(scope="session")
def student_model(teacher_model, tiny):
    from kdcore import training
    from kdcore.config import DistillConfig
    from kdcore.tasks.digits import StudentConfig

    cfg = DistillConfig(epochs=1, student=StudentConfig(units=16), baseline=False)
    return DIGITS.distill_student(cfg, teacher_model, tiny).model


def save(model, kind):
    storage.save_model(model, storage.model_path(kind), {"kind": kind, "dataset": "mnist-5k", "test_accuracy": 0.5})


@pytest.fixture
def teacher_only(kd_home, teacher_model):
    save(teacher_model, "teacher")


@pytest.fixture
def both_models(teacher_only, student_model):
    save(student_model, "student")


def open_page(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def bars(at, index: int = 0) -> list[np.ndarray]:
    """The y values of every trace of the index-th plotly chart."""
    spec = json.loads(at.get("plotly_chart")[index].proto.spec)
    return [np.array(trace["y"]) for trace in spec["data"]]


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("page", ["temperature", "predictions", "draw"])
def test_page_says_what_is_missing_without_models(page):
    at = open_page(page)
    assert [i.value for i in at.info][:2] == ["No teacher yet: train one on the Teacher page.",
                                             "No student yet: distil one on the Distill page."]
    assert not at.metric and not at.get("plotly_chart")


@pytest.mark.slow
def test_temperature_slider_reshapes_the_bars_and_the_entropy(both_models):
    at = open_page("temperature")
    assert at.slider(key="temperature_T").label == "Temperature T"
    teacher, student = bars(at)
    assert teacher.sum() == pytest.approx(1.0) and student.sum() == pytest.approx(1.0)
    h_before = float(metric(at, "Teacher entropy").split()[0])

    at.slider(key="temperature_T").set_value(15.0).run()
    teacher_hot, _ = bars(at)
    h_after = float(metric(at, "Teacher entropy").split()[0])
    assert h_after > h_before
    assert teacher_hot.max() < teacher.max()
    assert "next guesses" in at.markdown[-2].value

    at.number_input(key="temperature_index").set_value(7).run()
    assert "Test digit #7" in at.image[0].captions[0]
    assert not np.allclose(bars(at)[0], teacher_hot)


def test_predictions_filters_change_the_digits_shown(both_models, teacher_model, student_model, mnist5k):
    at = open_page("predictions")
    assert {m.label for m in at.metric} == {"Teacher test accuracy", "Student test accuracy", "Disagreements"}
    assert len(at.get("plotly_chart")) == 2  # one confusion matrix per model
    assert len(at.image) == 40 and "of 1,000 digits" in at.caption[0].value

    preds = {n: inference.test_logits(m, mnist5k).argmax(-1) for n, m in
             (("Teacher", teacher_model), ("Student", student_model))}
    n_dis = len(inference.select(mnist5k.y_test, preds, "disagreements"))
    assert metric(at, "Disagreements") == f"{n_dis:,}"
    at.radio(key="predictions_show").set_value("disagreements").run()
    assert f"of {n_dis:,} digits" in at.caption[0].value
    answers = [m.value for m in at.markdown if m.value.startswith("T :")]
    assert len(answers) == len(at.image) and all("disagree" in a for a in answers)

    last = -(-n_dis // 40)
    at.number_input(key="predictions_page").set_value(last).run()
    assert len(at.image) == n_dis - 40 * (last - 1)

    at.radio(key="predictions_show").set_value("errors").run()
    assert at.number_input(key="predictions_page").value == 1  # a new filter starts on its first page
    n_err = len(inference.select(mnist5k.y_test, preds, "errors"))
    assert f"of {n_err:,} digits" in at.caption[0].value and n_err != n_dis


def test_predictions_with_a_teacher_only(teacher_only):
    at = open_page("predictions")
    assert [i.value for i in at.info] == ["No student yet: distil one on the Distill page."]
    assert [m.label for m in at.metric] == ["Teacher test accuracy"]
    assert at.radio(key="predictions_show").options == ["All digits", "Only errors"]


def test_draw_upload_predicts_and_hands_the_digit_to_temperature(both_models, teacher_model, mnist5k):
    at = open_page("draw")
    assert "Draw a digit" in at.info[0].value  # the empty canvas asks for a drawing, no prediction
    assert not at.metric
    at.radio(key="draw_input").set_value("Upload an image").run()
    assert at.file_uploader(key="draw_upload").allowed_type == [".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"]

    logits = inference.test_logits(teacher_model, mnist5k)
    sure = np.flatnonzero((inference.softened(logits, 1).max(-1) > 0.99) &
                          (logits.argmax(-1) == mnist5k.y_test))[0]
    big = np.kron((mnist5k.x_test[sure, :, :, 0] * 255).astype("uint8"), np.ones((4, 4), "uint8"))
    at.file_uploader(key="draw_upload").upload("digit.png", png(255 - big), "image/png").run()  # dark ink on paper
    assert not at.exception and not at.error
    assert metric(at, "Teacher says") == str(mnist5k.y_test[sure])
    assert re.fullmatch(r"\d", metric(at, "Student says"))
    assert len(at.get("plotly_chart")) == 2 and bars(at, 0)[0].argmax() == mnist5k.y_test[sure]

    at.switch_page("pages/temperature.py").run()
    at.radio(key="temperature_source").set_value("The last drawn digit").run()
    assert at.image[0].captions[0] == "Your digit (digit.png)"


@pytest.mark.parametrize("name, content, message", [
    ("notes.png", b"this is not a picture", "not an image"),
    ("blank.png", png(np.full((64, 64), 255, "uint8")), "no digit found"),
])
def test_draw_upload_of_a_bad_image_says_so_in_one_sentence(both_models, name, content, message):
    at = open_page("draw")
    at.radio(key="draw_input").set_value("Upload an image").run()
    at.file_uploader(key="draw_upload").upload(name, content, "image/png").run()
    assert not at.exception and not at.metric
    assert len(at.error) == 1 and message in at.error[0].value and "\n" not in at.error[0].value
