"""The dashboard in a real browser: `streamlit run app.py` driven by Playwright through Debian's Chromium.

One dashboard and one browser serve the whole module. Its data directory is
seeded with the real tiny teacher of the ``teacher_file`` fixture, so the one
training run here is a short distillation started from the Distill page (the
quick demo's minute of teacher training would dominate the suite's budget).
The tests run in file order and build on each other: the distilled student
made in the first training test is what the Temperature and Draw tests load.

Waits are on real elements or on values inside the page (``wait_for_function``
polls in the browser); nothing sleeps for a fixed time and nothing waits for
"network idle", which a Streamlit page never reaches.
"""
from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import ARTIFACTS, ROOT
from tests.support.e2e_server import CHROMIUM, Dashboard, launch_browser
from kdcore import storage

playwright_api = pytest.importorskip("playwright.sync_api")  # the package is in requirements.txt
expect = playwright_api.expect

WAIT = 60_000  # ms; generous because the machine may be busy, but every wait ends as soon as the element shows
TRAINING_WAIT = 480_000
DISTILL_URL = "/distill?student_filters=0&student_units=32&epochs=40&batch_size=64&baseline=true"  # ~20 s on 2 quiet cores
BAD_PAGE_TEXT = ("Traceback", "missing ScriptRunContext")

# How far the per-batch loss traces in the page's charts reach: the sum over traces (student, baseline) of the
# last batch drawn. It only grows while a run goes on, even when old points are thinned out of a long curve.
BATCH_POINTS_JS = """() => { try {
    return Array.from(document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot'))
        .flatMap(g => g.data || []).filter(t => (t.name || '').endsWith('(batch)'))
        .reduce((n, t) => n + (t.x && t.x.length ? Math.max(...t.x) : 0), 0);
} catch (e) { return -1; } }"""  # a chart caught mid-redraw counts as "not yet", never as an error


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, teacher_file):
    """The real app on a free port, its data directory holding one saved teacher and nothing else."""
    home = tmp_path_factory.mktemp("e2e") / "kdhome"
    models = home / "models"
    models.mkdir(parents=True)
    shutil.copy(teacher_file, models / "teacher-e2e.keras")
    shutil.copy(storage.sidecar_path(teacher_file), storage.sidecar_path(models / "teacher-e2e.keras"))
    app = Dashboard(home)
    yield app
    app.stop()
    log = app.log_text()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "e2e-streamlit.log").write_text(log)
    assert "missing ScriptRunContext" not in log, "a thread called st.* (see test-artifacts/e2e-streamlit.log)"
    errors = [e for e in raised(log) if not e.startswith(SERVER_NOISE)]
    assert not errors, f"tracebacks in the streamlit log (test-artifacts/e2e-streamlit.log): {errors}"


# Streamlit's web server logs this when a tab reloads or closes while its websocket is still opening.
SERVER_NOISE = "starlette.websockets.WebSocketDisconnected:"


def raised(log: str) -> list[str]:
    """The exception line that ends each traceback in a log."""
    lines, found = log.splitlines(), []
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            found.append(next((x for x in lines[i + 1:] if x.strip() and not x.startswith(" ")), "?"))
    return found


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
                    "(`apt-get install chromium`, which ./scripts/test does)", pytrace=False)
    expect.set_options(timeout=WAIT)
    with playwright_api.sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(WAIT)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, dashboard):
    tab = context.new_page()
    yield tab
    if not tab.is_closed():
        tab.close()


# --- helpers -------------------------------------------------------------------------------------
def open_page(tab, dashboard, path: str, heading: str):
    tab.goto(dashboard.url + path)
    expect(tab.get_by_role("heading", name=heading).first).to_be_visible(timeout=WAIT)
    return tab


def shot(tab, name: str, focus=None) -> None:
    """A screenshot in test-artifacts/; Streamlit scrolls inside its main pane, so scroll ``focus`` into view."""
    if focus is not None:
        try:  # a live panel may redraw the element under our hands; the picture is not worth a failure
            focus.scroll_into_view_if_needed(timeout=5_000)
        except playwright_api.Error:
            pass
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"e2e-{name}.png"), full_page=True)


def assert_clean(tab) -> None:
    """No Python error reached the page, in any form Streamlit shows one."""
    text = tab.locator("body").inner_text()
    for bad in BAD_PAGE_TEXT:
        assert bad not in text
    expect(tab.get_by_test_id("stException")).to_have_count(0)


def metric(tab, label: str):
    """The value element of the st.metric whose label is exactly ``label``."""
    box = tab.get_by_test_id("stMetric").filter(
        has=tab.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    return box.get_by_test_id("stMetricValue")


def percent(tab, label: str) -> float:
    value = metric(tab, label)
    expect(value).to_have_text(re.compile(r"^\d+(\.\d)?%$"))
    return float(value.inner_text().rstrip("%")) / 100


def batch_points(tab, more_than: int = 0) -> int:
    """Wait until the live loss chart holds more than ``more_than`` per-batch points; return how many."""
    # The value is taken inside the same poll that saw it: a second read could catch the chart mid-redraw.
    handle = tab.wait_for_function(f"n => {{ const v = ({BATCH_POINTS_JS})(); return v > n ? v : false; }}",
                                   arg=more_than, timeout=TRAINING_WAIT)
    value = handle.json_value()
    handle.dispose()
    return value


def digit_png(image, scale: int = 4) -> bytes:
    """An MNIST digit as a PNG the way a person would scan one: dark ink on white paper, larger."""
    import numpy as np
    from PIL import Image

    ink = (np.asarray(image).reshape(28, 28) * 255).astype("uint8")
    picture = Image.fromarray(255 - ink).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def upload_digit(tmp_path_factory, teacher_file, mnist5k):
    """(PNG path, label) of a test digit the teacher reads right after the dashboard's own preprocessing."""
    from kdcore import inference
    from kdcore.tasks.digits import pictures as images

    teacher = storage.load_model(teacher_file)
    for index in range(50):
        png = digit_png(mnist5k.x_test[index])
        probs = inference.softened(inference.predict_one(teacher, images.preprocess(png)), 1.0)
        label = mnist5k.classes[mnist5k.y_test[index]]
        if mnist5k.classes[int(probs.argmax())] == label and probs.max() > 0.9:
            path = tmp_path_factory.mktemp("upload") / f"digit-{label}.png"
            path.write_bytes(png)
            return path, label
    pytest.fail("the tiny teacher reads none of the first 50 test digits confidently")


# --- tests ---------------------------------------------------------------------------------------
def test_app_opens_with_the_seeded_teacher(page, dashboard):
    open_page(page, dashboard, "/", "KD Studio")
    expect(page.get_by_role("button", name="Run quick demo")).to_be_enabled()
    expect(page.get_by_test_id("stSidebar").get_by_text("teacher-e2e")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(9)  # digits: 3 + 3 example screens + 3
    shot(page, "01-home")
    assert_clean(page)


@pytest.mark.timeout(600)  # well under a minute when the machine is quiet; minutes when other suites share its cores
def test_distillation_runs_live_survives_reload_and_closed_tab(page, context, dashboard):
    """Fault drill 5: the run is watched live in two tabs, the starting tab reloads and closes, the run ends.

    The checks that need the run still going come first, right after its first batches.
    """
    open_page(page, dashboard, DISTILL_URL, "Distill")
    expect(page.get_by_role("spinbutton", name="Epochs", exact=True)).to_have_value("40")  # the link's settings
    page.get_by_role("button", name="Distil student").click()
    first = batch_points(page)
    shot(page, "02-distill-live", page.get_by_test_id("stPlotlyChart").last)

    second = open_page(context.new_page(), dashboard, "/distill", "Distill")
    expect(second.get_by_test_id("stMain").get_by_test_id("stProgress")).to_contain_text("Distil 32-unit MLP")
    expect(second.get_by_role("button", name="Distil student")).to_be_disabled()
    page.reload()
    expect(page.get_by_role("heading", name="Distill")).to_be_visible()
    expect(page.get_by_test_id("stMain").get_by_test_id("stProgress")).to_contain_text("Distil 32-unit MLP")
    expect(page.get_by_role("button", name="Distil student")).to_be_disabled()
    assert batch_points(page) >= first, "a reload must neither restart nor lose the run"
    shown = batch_points(second)
    later = batch_points(second, more_than=shown)  # no click, no reload: the panel redraws by itself
    assert later > shown >= first
    shot(second, "03-second-tab-progress", second.get_by_test_id("stMain").get_by_test_id("stProgress"))
    page.close()  # the tab that started the run goes away; the run must not

    expect(metric(second, "Distilled student")).to_be_visible(timeout=TRAINING_WAIT)
    student, baseline, teacher = (percent(second, name) for name in
                                  ("Distilled student", "Baseline (no teacher)", "Teacher"))
    assert 0.5 < student <= 1 and 0.5 < baseline <= 1 and 0.8 < teacher <= 1
    shot(second, "04-distill-finished", metric(second, "Teacher"))
    assert_clean(second)
    second.close()

    runs = open_page(context.new_page(), dashboard, "/runs", "Runs")
    expect(runs.get_by_test_id("stSidebar")).to_contain_text(f"{student:.1%}")  # the new student is active
    runs.wait_for_function("() => Array.from(document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot'))"
                           ".some(g => g.data && g.data.length > 0)")
    names = runs.evaluate("() => Array.from(document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot'))"
                          ".flatMap(g => g.data.map(t => t.name || ''))")
    assert any("student" in n for n in names) and any("baseline" in n for n in names), names
    shot(runs, "05-runs")
    assert_clean(runs)
    runs.close()


def test_temperature_slider_changes_the_bars(page, dashboard):
    open_page(page, dashboard, "/temperature", "Temperature")
    bars = page.locator("[data-testid=stPlotlyChart] .js-plotly-plot").first
    expect(bars).to_be_visible()
    read = "g => g.data.map(t => Array.from(t.y))"
    page.wait_for_function("() => { const g = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');"
                           " return g && g.data && g.data.length == 2; }")  # teacher and student
    before = bars.evaluate(read)
    slider = page.get_by_role("slider", name="Temperature T")
    thumb = page.get_by_test_id("stSliderThumbValue")
    expect(thumb).to_have_text("4.00")
    slider.focus()
    for _ in range(4):
        slider.press("ArrowRight")
    expect(thumb).to_have_text("6.00")
    expect(page.get_by_text("Softened probabilities at T = 6")).to_be_attached()
    after = bars.evaluate(read)
    assert after != before
    assert max(after[0]) < max(before[0]), "a higher temperature flattens the teacher's answer"
    shot(page, "06-temperature", bars)
    assert_clean(page)


def test_drawn_digit_gets_two_predictions(page, dashboard):
    open_page(page, dashboard, "/draw", "Draw")
    canvas = page.locator("canvas.upper-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.3 * w, y + 0.2 * h)
    page.mouse.down()
    for fx, fy in ((0.7, 0.2), (0.55, 0.5), (0.45, 0.85)):  # a seven
        page.mouse.move(x + fx * w, y + fy * h, steps=8)
    page.mouse.up()
    expect(metric(page, "Teacher says")).to_have_text("7", timeout=WAIT)
    expect(metric(page, "Student says")).to_have_text(re.compile(r"^\d$"))
    shot(page, "07-draw-canvas")
    assert_clean(page)


def test_uploaded_png_gets_two_predictions(page, dashboard, upload_digit):
    path, label = upload_digit
    open_page(page, dashboard, "/draw", "Draw")
    page.get_by_text("Upload an image").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    expect(metric(page, "Teacher says")).to_have_text(label, timeout=WAIT)
    expect(metric(page, "Student says")).to_have_text(re.compile(r"^\d$"))
    shot(page, "08-draw-upload", metric(page, "Student says"))
    assert_clean(page)


def test_hostile_upload_is_refused_in_one_sentence(page, dashboard, upload_digit, tmp_path):
    fake = tmp_path / "digit.png"
    fake.write_text("this is a text file, not a picture of a digit\n")
    open_page(page, dashboard, "/draw", "Draw")
    page.get_by_text("Upload an image").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(fake))
    alert = page.get_by_test_id("stAlert").filter(has_text="PNG")
    expect(alert).to_be_visible(timeout=WAIT)
    message = alert.get_by_test_id("stMarkdownContainer").inner_text().strip()
    assert "not an image" in message and "\n" not in message and ". " not in message, message
    expect(metric(page, "Teacher says")).to_have_count(0)
    shot(page, "09-draw-hostile", alert)
    assert_clean(page)

    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(upload_digit[0]))  # still working
    expect(metric(page, "Teacher says")).to_have_text(upload_digit[1], timeout=WAIT)
    expect(alert).to_have_count(0)
    assert_clean(page)


# Every screen by its sidebar link, with (part of) the heading it shows.
TOUR = [("Home", "KD Studio"), ("Teacher", "Teacher"), ("Distill", "Distill"), ("Temperature", "Temperature"),
        ("Predictions", "Predictions"), ("Draw", "Draw"), ("Experiments", "Experiments"), ("Deploy", "Deploy"),
        ("Runs", "Runs")]
LOCAL = {"127.0.0.1", "localhost"}


def test_no_request_leaves_the_machine(context, dashboard):
    """A tour of every screen: every request and websocket the page opens goes to the dashboard's own server.

    Playwright's request events see the page's own traffic (documents, scripts, fonts, images, fetches), never
    Chromium's background requests. A ``:material/...:`` page icon made every screen fetch an SVG from
    fonts.gstatic.com; the favicon is now static/favicon.png, served by Streamlit itself.
    """
    tab = context.new_page()
    urls = []
    tab.on("request", lambda r: urls.append(r.url))
    tab.on("websocket", lambda ws: urls.append(ws.url))
    open_page(tab, dashboard, "/", "KD Studio")
    for link, heading in TOUR:
        tab.get_by_test_id("stSidebarNavLink").filter(has_text=link).click()
        expect(tab.get_by_role("heading", name=re.compile(heading)).first).to_be_visible()
        tab.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", state="attached")
        assert_clean(tab)
    tab.wait_for_function("() => document.fonts.check('24px \"Material Symbols Rounded\"')")  # the nav's icons

    outside = sorted({u for u in urls if urlparse(u).hostname not in LOCAL})
    assert not outside, f"the page contacted other hosts: {outside}"
    assert any("/MaterialSymbols" in u for u in urls), "the navigation's icon font is served by Streamlit"
    [icon] = tab.evaluate("() => Array.from(document.querySelectorAll('link[rel~=icon]')).map(l => l.href)")
    assert icon == dashboard.url + "/app/static/favicon.png" and icon in urls
    served = context.request.get(icon)
    assert served.ok and served.body() == (ROOT / "static" / "favicon.png").read_bytes()
    tab.close()
