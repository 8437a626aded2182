"""Start the real dashboard (``streamlit run app.py``) and a real headless Chromium for browser tests.

Used by tests/test_e2e.py. Playwright cannot download its own browser here,
so it drives Debian's /usr/bin/chromium (installed by scripts/test).
"""
from __future__ import annotations

from pathlib import Path

from tests.support.dashboard_process import ROOT, Dashboard as _Dashboard

CHROMIUM = "/usr/bin/chromium"


class Dashboard(_Dashboard):
    """The dashboard for a browser test (see tests/support/dashboard_process.py)."""

    def __init__(self, home: Path):
        # An empty Keras cache makes mnist-5k the default dataset even where full MNIST is cached,
        # so the tests' tiny runs are the same on every machine.
        super().__init__(home, env={"KERAS_HOME": str(home / "keras")})


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--disable-gpu", "--disable-quic"])


def served(home: Path, log_name: str):
    """A module fixture's body: the dashboard on ``home`` while the tests run, its log kept in test-artifacts/."""
    app = Dashboard(home)
    yield app
    app.stop()
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / log_name).write_text(app.log_text())


def browser_tab(wait_ms: int):
    """A module fixture's body: one Chromium tab (1400×1000) whose waits default to ``wait_ms``."""
    import pytest
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium", pytrace=False)
    expect.set_options(timeout=wait_ms)
    with sync_playwright() as p:
        browser = launch_browser(p)
        tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        tab.set_default_timeout(wait_ms)
        yield tab
        browser.close()
