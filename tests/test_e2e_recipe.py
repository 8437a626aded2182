"""A FitNets recipe built in a real browser by picking the layers, distilled, and found in the run's record.

The dashboard's data directory holds the session's tiny digits teacher; the
student is a 32-unit MLP distilled for one epoch without a baseline, so the
training is seconds and the test is mostly the page's own round trips.
"""
from __future__ import annotations

import shutil

import pytest

from conftest import ARTIFACTS
from kdcore import storage
from tests.support.e2e_server import browser_tab, served

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
WAIT = 60_000  # ms; every wait ends as soon as the element shows
TRAINING_WAIT = 300_000
URL = "/distill?student_filters=0&student_units=32&epochs=1&batch_size=64&baseline=false"

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, teacher_file):
    home = tmp_path_factory.mktemp("e2e-recipe") / "kdhome"
    (home / "models").mkdir(parents=True)
    shutil.copy(teacher_file, home / "models" / "teacher-e2e.keras")
    shutil.copy(storage.sidecar_path(teacher_file), storage.sidecar_path(home / "models" / "teacher-e2e.keras"))
    yield from served(home, "e2e-recipe-streamlit.log")


@pytest.fixture(scope="module")
def page(dashboard):
    yield from browser_tab(WAIT)


def pick(tab, box: str, option: str) -> None:
    """Choose ``option`` in the page's select box labelled ``box`` (opened by a click, as a person does)."""
    box = tab.get_by_test_id("stMain").get_by_role("combobox", name=box, exact=True)
    box.click()  # focuses the box; the arrow key opens its list (a click on the text alone may not)
    if box.get_attribute("aria-expanded") != "true":
        box.press("ArrowDown")
    tab.get_by_role("option", name=option, exact=True).click()
    expect(box).to_have_value(option)


@pytest.mark.timeout(600)
def test_a_fitnets_recipe_built_from_the_layer_lists_runs_and_is_recorded(page, dashboard):
    page.goto(dashboard.url + URL)
    expect(page.get_by_role("heading", name="Distill").first).to_be_visible()
    expect(page.get_by_text("Stages: distil (kl, ce)")).to_be_visible()  # the sliders' recipe: Hinton's KD

    pick(page, "Kind", "feature")
    pick(page, "Teacher layer", "hint (128)")
    pick(page, "Student layer", "hint (32)")
    pick(page, "Stage", "a new first stage")
    page.get_by_role("button", name="Add term").click()
    stages = "Stages: hint (1 epoch: hint hint→hint) → distil (kl, ce)"
    expect(page.get_by_text(stages)).to_be_visible()
    expect(page.get_by_text("a regressor maps the student's hint (32) to the teacher's hint (128)")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "e2e-recipe-fitnets.png"), full_page=True)

    page.get_by_role("button", name="Distil student").click()
    expect(page.get_by_test_id("stMetric").filter(has_text="Distilled student")).to_be_visible(timeout=TRAINING_WAIT)

    page.get_by_test_id("stSidebarNavLink").filter(has_text="Runs").click()
    expect(page.get_by_role("heading", name="Runs").first).to_be_visible()
    expect(page.get_by_text("Recipe of distill")).to_be_visible()
    expect(page.get_by_text("hint (1 epoch: hint hint→hint) → distil (kl, ce)")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "e2e-recipe-runs.png"), full_page=True)
    assert "Traceback" not in page.locator("body").inner_text()
    expect(page.get_by_test_id("stException")).to_have_count(0)
