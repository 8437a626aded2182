"""Home, driven through the real app with Streamlit's AppTest: what it says depends on the task chosen."""
import pytest

from kdcore import tasks
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def open_home(task: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["task"] = task
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


SUBJECTS = {"digits": "digits resemble", "images": "T-shirt", "lm": "next words", "text": "how sure a review"}


@pytest.mark.parametrize("task", list(SUBJECTS))
def test_home_says_what_the_chosen_tasks_soft_targets_carry(task):
    intro = open_home(task).markdown[0].value
    assert tasks.get(task).soft_targets_story in intro and SUBJECTS[task] in intro
    others = [tasks.get(t).soft_targets_story for t in SUBJECTS if t != task]
    assert not any(story in intro for story in others)
    assert task == "digits" or "digit" not in intro  # a language model's visitor reads no word about digits


@pytest.mark.slow  # the demo job starts training before it is stopped: ~5 s on 2 quiet cores
def test_the_quick_demo_makes_its_dataset_the_sidebars():
    """After the colour-images demo (on fashion-mnist-3k) the sidebar must not stay on fashion-mnist, or Deploy
    and Upload would find no model of the chosen dataset. The job is stopped once it exists: its training is
    not under test."""
    from kdcore import presets, storage
    from kdcore.jobs import runner

    at = open_home("images")
    assert at.selectbox(key="dataset").value == "fashion-mnist"
    next(b for b in at.button if b.label == "Run quick demo").click().run()
    job = runner().get(at.session_state["demo_job"])
    try:
        assert not at.exception, [e.value for e in at.exception]
        assert storage.run_store().get(job.run_id) is not None
        demo_dataset = presets.get(presets.demo("images"))["dataset"]
        assert demo_dataset == "fashion-mnist-3k"
        # AppTest's later runs execute the page alone, not app.py's sidebar: the box's key is what it will show.
        assert ("dataset" in at.session_state and at.session_state["dataset"]) == demo_dataset
    finally:
        job.stop()
        job.wait(120)
