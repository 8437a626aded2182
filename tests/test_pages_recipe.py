"""The Distill page's Recipe section, driven through the real app with Streamlit's AppTest.

Each task's table renders (digits and colour images edit theirs; text and the
language model show what their settings describe); on digits a term is added
from the layer lists, a bad one is refused in one line, one is removed, and
the edited recipe is what the started job carries. Teachers other than the
session's digits one are untrained networks: the screen, not the model, is under test.
"""
import shutil

import numpy as np
import pytest

from kdcore import storage, tasks
from kdcore.jobs import runner
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # every page run imports TensorFlow and builds the networks


def open_distill(task: str, dataset: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["task"] = task
    if dataset:
        at.session_state["dataset"] = dataset
    at.switch_page("pages/distill.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def recipe_table(at):
    return at.dataframe[1].value  # after the size table


def click(at, label: str):
    [button] = [b for b in at.button if b.label == label]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]


def save_teacher(task: str, net, dataset: str) -> None:
    storage.save_model(net, storage.model_path(f"teacher-{task}"), {"kind": "teacher", "task": task, "dataset": dataset})


def test_on_digits_a_term_is_added_from_the_layer_lists_refused_or_removed_and_the_run_carries_it(
        teacher_file, tiny):
    dest = storage.models_dir() / "fixture-teacher.keras"
    shutil.copy(teacher_file, dest)
    shutil.copy(storage.sidecar_path(teacher_file), storage.sidecar_path(dest))
    data = str(storage.models_dir().parent / "tiny.npz")
    np.savez(data, x_train=tiny.x_train, y_train=tiny.y_train, x_test=tiny.x_test, y_test=tiny.y_test)
    at = open_distill("digits", data)
    assert list(recipe_table(at)["loss"]) == ["kl", "ce"], "the sliders' recipe: Hinton's KD"
    assert recipe_table(at)["temperature"][0] == at.slider(key="distill.temperature").value

    at.selectbox(key="distill.method").select("fitnets").run()
    assert list(recipe_table(at)["stage"]) == ["hint", "distil", "distil"]
    assert list(recipe_table(at)[["teacher", "student"]].iloc[0]) == ["hint", "hint"]  # an MLP student's pair

    at.selectbox(key="distill.method").select("settings").run()
    at.selectbox(key="distill.term.kind").select("feature").run()
    assert at.selectbox(key="distill.term.loss").options[0].startswith("hint")
    teacher_layers = at.selectbox(key="distill.term.teacher").options
    assert "pool1 (13x13x32)" in teacher_layers and "hint (128)" in teacher_layers
    assert "hint (128)" in at.selectbox(key="distill.term.student").options
    at.selectbox(key="distill.term.teacher").select("pool1")
    at.selectbox(key="distill.term.student").select("hint")
    at.selectbox(key="distill.term.stage").select("a new first stage").run()
    click(at, "Add term")
    [refusal] = [e.value for e in at.error]
    assert "student's hint (128)" in refusal and "teacher's pool1 (13x13x32)" in refusal and "\n" not in refusal
    assert len(recipe_table(at)) == 2, "a refused term does not join the recipe"

    at.selectbox(key="distill.term.teacher").select("hint").run()
    click(at, "Add term")
    assert not at.error
    assert list(recipe_table(at)["stage"]) == ["hint", "distil", "distil"]
    assert list(recipe_table(at)["loss"]) == ["hint", "kl", "ce"]
    at.multiselect(key="distill.term.remove").select(2).run()
    click(at, "Remove terms")
    assert list(recipe_table(at)["loss"]) == ["hint", "kl"]

    at.number_input(key="distill.epochs").set_value(1).run()
    click(at, "Distil student")
    job = runner().get(at.session_state["distill_job"])
    assert [s["name"] for s in job.config["recipe"]["stages"]] == ["hint", "distil"]
    assert job.wait(240) and job.status == "finished", job.error
    assert job.result.recipe["stages"][0]["terms"][0]["teacher"] == "hint"
    assert set(job.result.history) == {"hint", "student", "baseline"}


def test_the_recipe_table_renders_for_every_task(tmp_path, toy_text):

    rng = np.random.default_rng(0)
    blobs = str(tmp_path / "blobs.npz")
    np.savez(blobs, x_train=rng.integers(0, 255, (60, 32, 32, 3), np.uint8), y_train=np.arange(60) % 3,
             x_test=rng.integers(0, 255, (30, 32, 32, 3), np.uint8), y_test=np.arange(30) % 3)
    csv = tmp_path / "toy.csv"
    csv.write_text("text,label\n" + "".join(f'"a {w} film number {i}",{w}\n' for i in range(40)
                                            for w in ("good", "bad")))
    images, text, lm = tasks.get("images"), tasks.get("text"), tasks.get("lm")
    save_teacher("images", images.build_teacher(images.teacher_config(width=0.0625), (32, 32, 3), 3), blobs)
    at = open_distill("images", blobs)
    assert list(recipe_table(at)["loss"]) == ["kl", "ce"]
    at.selectbox(key="distill.method").select("at").run()
    assert "at" in list(recipe_table(at)["loss"]) and not at.error

    ds = text.load(str(csv))
    save_teacher("text", text.build_teacher(text.teacher_config(), ds.tokenizer.size, len(ds.classes)), str(csv))
    words = lm.load(str(toy_text))
    save_teacher("lm", lm.build_teacher(lm.teacher_config(units=16, layers=1), len(words.classes)), str(toy_text))
    for name, dataset in (("text", str(csv)), ("lm", str(toy_text))):
        at = open_distill(name, dataset)
        assert "logits" in list(recipe_table(at)["kind"]), name
        assert "trains the recipe its settings describe" in " ".join(c.value for c in at.caption), name
        assert not [b for b in at.button if b.label == "Add term"]
