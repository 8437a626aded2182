"""How long the dashboard takes to start: health check answering, then the Home page painted in Chromium.

    .venv/bin/python -m lab.first_paint [--json]

Times ``streamlit run app.py`` on a free loopback port from launch to its
health endpoint answering ``ok`` and to the Home page's title being visible in
headless Chromium (Debian's ``/usr/bin/chromium``, which ``scripts/test``
installs). It lives here, not in ``kdcore``, because the engine never starts a
server or a browser; ``python -m kdcore bench`` measures the engine.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TARGET_S = 5.0  # first paint, on the 2-core development machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, start: float, timeout_s: float) -> None:
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode} before answering its health check")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as answer:
                if answer.read() == b"ok":
                    return
        except OSError:
            pass
        if time.perf_counter() - start > timeout_s:
            raise RuntimeError(f"the dashboard did not answer its health check within {timeout_s:.0f} s")
        time.sleep(0.05)


def first_paint(timeout_s: float = 60.0) -> dict:
    """Seconds from ``streamlit run app.py`` to its health check answering and to the Home page's title."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    load_before = os.getloadavg()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--disable-gpu", "--disable-quic"])
        page = browser.new_page()
        start = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                   "--server.address", "127.0.0.1", "--server.port", str(port),
                                   "--browser.gatherUsageStats", "false"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_healthy(url, server, start, timeout_s)
            health = time.perf_counter() - start
            page.goto(url)
            page.locator("[data-testid=stMain] h1").first.wait_for(timeout=timeout_s * 1000)
            painted = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(10)
            browser.close()
    return {"health_s": round(health, 2), "first_paint_s": round(painted, 2),
            "meets_target": {"first_paint_s": painted <= TARGET_S},
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    result = first_paint()
    print(json.dumps(result) if args.json else
          f"dashboard health {result['health_s']} s, first paint {result['first_paint_s']} s "
          f"(target {TARGET_S:g} s; load {result['load_before'][0]} before, {result['load_after'][0]} after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
