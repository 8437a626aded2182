"""The real dashboard (``streamlit run app.py``) as a child process on a free loopback port.

Shared by the browser tests (tests/support/e2e_server.py) and the many-viewer load
test (lab/viewers.py): each gets its own data directory, its own log
file, and waits until Streamlit's health endpoint answers.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """A streamlit process on a free 127.0.0.1 port with ``home`` as its KDSTUDIO_HOME.

    ``args`` are more ``streamlit run`` options, ``env`` more environment
    variables; the log goes to ``log_path`` (default: beside ``home``).
    """

    def __init__(self, home: Path, args: tuple[str, ...] = (), env: dict | None = None,
                 log_path: Path | None = None, timeout: float = 120):
        self.home, self.port = Path(home), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else self.home.parent / f"streamlit-{self.port}.log"
        self.log = open(self.log_path, "w")
        full_env = dict(os.environ, KDSTUDIO_HOME=str(self.home), TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", *args],
            cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait_healthy(timeout)
        except RuntimeError:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not become healthy within {timeout:.0f} s; see {self.log_path}")

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
