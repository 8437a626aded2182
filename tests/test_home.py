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
