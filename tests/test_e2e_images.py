"""The colour-image demo in a real browser, then an export on Deploy, without touching the sidebar's dataset.

The demo's teacher reads all of Fashion-MNIST and its students a 3,000-image
slice of it; the demo makes that slice the sidebar's dataset, so Deploy lists
the student it just made and exports it. Before, the sidebar stayed on
Fashion-MNIST and Deploy had nothing to export. It needs Debian's
Fashion-MNIST files (scripts/setup installs them) and skips without them.
"""
from __future__ import annotations

import re

import pytest

from conftest import ARTIFACTS
from kdcore import presets, tasks
from kdcore.tasks import idx
from tests.support.e2e_server import browser_tab, served

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
WAIT = 120_000  # ms: reading 60,000 Fashion-MNIST images and the first TensorFlow import come first
DEMO_WAIT = 600_000  # the demo trains a teacher and two students; minutes when the cores are shared
TASK = tasks.get("images")

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    if not idx.FASHION_IDX_DIR.is_dir():
        pytest.skip(f"Debian's Fashion-MNIST is not at {idx.FASHION_IDX_DIR} (scripts/setup installs it)")
    home = tmp_path_factory.mktemp("e2e-images") / "kdhome"
    (home / "models").mkdir(parents=True)
    yield from served(home, "e2e-images-streamlit.log")


@pytest.fixture(scope="module")
def page(dashboard):
    yield from browser_tab(WAIT)


@pytest.mark.timeout(1500)
def test_the_colour_image_demo_then_an_export_on_deploy_with_the_sidebar_untouched(page, dashboard):
    demo = presets.get(presets.demo(TASK))
    page.goto(dashboard.url)
    expect(page.get_by_role("heading", name="KD Studio").first).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").first.click()  # the Task box: the only sidebar control this test uses
    page.get_by_role("option", name=TASK.title).click()
    expect(page.get_by_text(TASK.soft_targets_story[-40:], exact=False)).to_be_visible()  # the images page
    expect(page.get_by_text(demo["description"][:60], exact=False)).to_be_visible()

    page.get_by_role("button", name="Run quick demo").click()
    expect(page.get_by_text(re.compile(r"Distillation helped|Distillation hurt|A tie")).first).to_be_visible(
        timeout=DEMO_WAIT)
    dataset_box = sidebar.get_by_role("combobox", name="Dataset")
    chosen = f'- combobox "Dataset": {demo["dataset"]}'
    expect(dataset_box).to_match_aria_snapshot(chosen)  # the demo chose its students' dataset
    page.screenshot(path=str(ARTIFACTS / "e2e-images-demo.png"), full_page=True)

    sidebar.get_by_test_id("stSidebarNavLink").filter(has_text="Deploy").click()
    expect(page.get_by_role("heading", name="Deploy").first).to_be_visible()
    expect(page.get_by_text("No saved model for this dataset yet")).to_have_count(0)
    expect(page.get_by_role("combobox", name="Model")).to_match_aria_snapshot('- combobox "Model": /student/')
    page.get_by_role("button", name="Export").click()
    expect(page.get_by_text("saved as", exact=False)).to_be_visible(timeout=DEMO_WAIT)
    expect(page.get_by_role("heading", name="Exports")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "e2e-images-deploy.png"), full_page=True)
    expect(dataset_box).to_match_aria_snapshot(chosen)
    assert "Traceback" not in page.locator("body").inner_text()
    expect(page.get_by_test_id("stException")).to_have_count(0)
