"""The language model in a real browser: a typed prompt gives next-word bars for the teacher and the student.

The dashboard's data directory is seeded with a tiny real teacher and student
trained on the toy text (seconds); the test picks the task in the sidebar,
opens the Next word screen, types a prompt and reads both models' bars back
from the page's plotly chart.
"""
from __future__ import annotations


import pytest

from tests.support.e2e_server import browser_tab, served
from test_e2e import WAIT, assert_clean, shot

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

BARS_JS = """() => { try {
    const g = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');
    return g && g.data ? g.data.map(t => [t.name, Array.from(t.x), Array.from(t.y)]) : null;
} catch (e) { return null; } }"""


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, toy_text):
    """The real app, its data directory holding a tiny language-model teacher and student (task lm)."""
    from kdcore import storage, tasks
    from kdcore.tasks import lm

    task, data = tasks.get("lm"), lm.load_text(toy_text)
    teacher = task.train_teacher(lm.TeacherConfig(units=16, epochs=1, batch_size=8, seq_len=10, dropout=0.0), data)
    cfg = task.distill_from({"student_units": 16, "epochs": 1, "batch_size": 8, "seq_len": 10})
    student = task.distill_student(cfg, teacher.model, data)
    home = tmp_path_factory.mktemp("e2e-lm") / "kdhome"
    for kind, run in (("teacher", teacher), ("student", student)):
        storage.save_model(run.model, home / "models" / f"{kind}-lm.keras",
                           {"kind": kind, "task": "lm", "dataset": str(toy_text), "test_perplexity": run.score})
    yield from served(home, "e2e-lm-streamlit.log")


@pytest.fixture(scope="module")
def page(dashboard):
    yield from browser_tab(WAIT)


FIRST_PAINT_WAIT = 240_000  # ms: the first visit imports TensorFlow in the server, minutes on a crowded machine


@pytest.mark.timeout(900)  # seconds with a quiet machine, minutes when other suites share its two cores
def test_a_prompt_gives_next_word_bars_for_both_models(page, dashboard):
    page.goto(dashboard.url + "/")
    expect(page.get_by_role("heading", name="KD Studio").first).to_be_visible(timeout=FIRST_PAINT_WAIT)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Task").click()
    page.get_by_role("option", name="Language model (LSTM, next word)").click()
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Next word").click()
    expect(page.get_by_role("heading", name="Next word").first).to_be_visible(timeout=FIRST_PAINT_WAIT)

    prompt = page.get_by_label("Prompt")
    prompt.fill("the cat")
    prompt.press("Enter")
    expect(page.get_by_text("Read as: the cat")).to_be_visible(timeout=FIRST_PAINT_WAIT)
    handle = page.wait_for_function(f"() => {{ const d = ({BARS_JS})(); return d && d.length == 2 ? d : false; }}")
    bars = handle.json_value()
    handle.dispose()
    assert [name for name, _, _ in bars] == ["Teacher", "Student"]
    for _, words, probabilities in bars:
        assert len(words) >= 15 and all(0.0 <= p <= 1.0 for p in probabilities)
        assert max(probabilities) > 0
    expect(page.get_by_text("Teacher entropy")).to_be_visible()
    expect(page.get_by_text("Student entropy")).to_be_visible()
    assert "text=the+cat" in page.url or "text=the%20cat" in page.url  # the link holds the prompt
    shot(page, "lm-next-word", page.get_by_test_id("stPlotlyChart").first)
    assert_clean(page)
