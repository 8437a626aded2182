"""A run's live progress: written by the training thread, read by any page.

Training threads never touch the UI. They write here, under a lock; a page
reads :meth:`Progress.snapshot` from a ``@st.fragment(run_every=...)`` and
draws it. Reading copies the small, capped lists, so a poller cannot slow the
training loop down by more than the copy.
"""
from __future__ import annotations

import copy
import threading
import time

MAX_BATCH_POINTS = 600  # per series; older points are thinned, so memory and copies stay small

from .results import ENDED, Status


class StopRequested(Exception):
    """Raised inside a run when the user asked it to stop between two stages."""


class Progress:
    def __init__(self, title: str = ""):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.on_epoch = []  # callables (series, record), run in the training thread (the job runner saves epochs)
        self.writes = 0  # grows with every write: lets pages share what they draw from one state (figures.live_curves)
        self._state = {
            "title": title, "status": "queued", "reason": "", "phase": "",
            "epoch": 0, "epochs": 0, "step": 0, "steps": 0,
            "created": time.time(), "started": None, "ended": None, "phase_started": None,
            "series": {}, "batches": {}, "results": {}, "device": "", "updated": time.time(),
        }

    # --- written by the training thread -------------------------------------------------
    def _write(self, **changes) -> None:
        with self._lock:
            self._state.update(changes)
            self._state["updated"] = time.time()
            self.writes += 1

    def start(self, device: str = "") -> None:
        self._write(status="running", started=time.time(), device=device)

    def phase(self, name: str, epochs: int = 0, steps: int = 0) -> None:
        self._write(phase=name, epoch=0, epochs=epochs, step=0, steps=steps, phase_started=time.time())

    def batch(self, series: str, step: int, loss: float) -> None:
        with self._lock:
            pts = self._state["batches"].setdefault(series, [])
            done = self._state["epoch"] * max(self._state["steps"], 1) + step
            pts.append((done, loss))
            if len(pts) > MAX_BATCH_POINTS:
                del pts[::2]
            self._state["step"] = step
            self._state["updated"] = time.time()
            self.writes += 1

    def epoch(self, series: str, record: dict) -> None:
        with self._lock:
            self._state["series"].setdefault(series, []).append(dict(record))
            self._state["epoch"] = record["epoch"]
            self._state["step"] = 0
            self._state["updated"] = time.time()
            self.writes += 1
        for listener in self.on_epoch:
            listener(series, record)

    def result(self, **results) -> None:
        with self._lock:
            self._state["results"].update(results)
            self.writes += 1

    def end(self, status: str, reason: str = "") -> None:
        self._write(status=Status(status).value, reason=reason, ended=time.time())

    # --- control -------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def check_stop(self) -> None:
        if self._stop.is_set():
            raise StopRequested("stopped by user")

    # --- read by pages -------------------------------------------------------------------
    def snapshot(self, curves: bool = True) -> dict:
        """A copy of the state; ``curves=False`` leaves out the epoch records and batch losses (empty), which
        are most of the copy, for a reader that draws them from :func:`kdcore.figures.live_curves`."""
        with self._lock:
            if curves:
                snap = copy.deepcopy(self._state)
            else:
                snap = copy.deepcopy({k: v for k, v in self._state.items() if k not in ("series", "batches")})
                snap["series"], snap["batches"] = {}, {}
        snap["fraction"] = _fraction(snap)
        snap["eta_s"] = _eta(snap)
        return snap

    @property
    def status(self) -> Status:
        with self._lock:
            return Status(self._state["status"])


def _fraction(s: dict) -> float:
    if not s["epochs"]:
        return 1.0 if s["status"] in ENDED else 0.0
    per_epoch = 1.0 / s["epochs"]
    within = s["step"] / s["steps"] if s["steps"] else 0.0
    return min(1.0, s["epoch"] * per_epoch + within * per_epoch)


def _eta(s: dict) -> float | None:
    """Seconds left in the current phase, from the pace so far (None until there is a pace)."""
    frac = s["fraction"]
    if s["status"] != "running" or not s["phase_started"] or frac <= 0.02:
        return None
    spent = time.time() - s["phase_started"]
    return spent * (1 - frac) / frac


class Tagged:
    """A Progress seen through a tag: series ``student`` becomes ``student s1``, so seeds' curves stay apart."""

    def __init__(self, progress: "Progress", tag: str):
        self._progress, self._tag = progress, tag

    def __getattr__(self, name):
        return getattr(self._progress, name)

    def phase(self, name: str, epochs: int = 0, steps: int = 0) -> None:
        self._progress.phase(f"{name} {self._tag}", epochs, steps)

    def batch(self, series: str, step: int, loss: float) -> None:
        self._progress.batch(f"{series} {self._tag}", step, loss)

    def epoch(self, series: str, record: dict) -> None:
        self._progress.epoch(f"{series} {self._tag}", record)
