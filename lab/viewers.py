"""Many viewers: does a class watching one distillation slow it down, or see stale curves?

``.venv/bin/python -m lab.viewers --viewers 1 5 10 20 --json``, from the repository's root,
starts the real dashboard (``streamlit run app.py``) on a free loopback port
with a private data directory, seeds it with a tiny teacher it trains itself,
starts a distillation *through the Distill page* and then lets the number of
watching sessions go 0 → 1 → 0 → 5 → 0 → 10 → 0 → 20 → 0 while the run goes on.

It lives in lab/, not kdcore, because it starts a dashboard and speaks
Streamlit's protocol, and the engine never imports Streamlit.

Each viewer is a real Streamlit session: a websocket to ``/_stcore/stream``
speaking Streamlit's own protobuf messages (``BackMsg`` up, ``ForwardMsg``
down), opened the way the browser opens it (the ``_streamlit_xsrf`` cookie and
``Sec-WebSocket-Protocol: streamlit, <xsrf token>``). It asks for the Distill
page, reports its widgets' values as the browser does, keeps the hashes of
cacheable messages so the server may answer with references, and obeys
``auto_rerun``: Streamlit's ``@st.fragment(run_every=1.0)`` is driven by the
*client*, which sends a fragment rerun every interval, so a session that does
not do this would cost the server nothing. The server therefore does exactly
the work twenty browser tabs give it; what it does not pay for is rendering,
which happens on the students' machines. The client (``websockets``, a
dependency of Streamlit itself) runs niced in this process, and its own CPU
time is reported.

What is measured, per number of viewers N, over ``measure`` whole epochs that
start after every new session has drawn its first page:

* ``viewer_slowdown``: the median epoch time with N viewers ÷ with none
  (epoch times are the run's own, from its run store; "none" is the 0-viewer
  epochs just before and just after, so a slow drift in the machine's load
  cancels out); ``viewer_cpu_slowdown`` is the same ratio in the server's CPU
  seconds per epoch, which other programs' load barely moves;
* ``viewer_lag_s`` (max) and ``viewer_lag_median_s``: the age of each epoch's
  point when a viewer first receives it. The server's time is when the epoch's
  row appears in ``runs.db`` (written by the training thread right after it
  updates the progress that the panel reads; polled every 0.1 s); the viewer's
  time is when it first receives the panel's progress bar reading "epoch k+1
  of E", which the panel shows as soon as epoch k is done;
* ``viewer_errors``: exceptions shown on a page, error alerts, scripts that
  failed, sessions that never drew their page, epoch points a viewer had not
  received 20 s after they were written, and websockets that closed without
  being asked to (tracebacks in the server's log are listed apart, as
  ``server_errors``);
* ``server_mb_per_viewer``: the growth of the server's resident memory from
  just before the N sessions opened to the end of their epochs, divided by N.

Everything goes to 127.0.0.1, every wait has a deadline, and the whole run is
bounded by ``timeout_s``; the server is stopped at the end whatever happened.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.dashboard_process import Dashboard

ROOT = Path(__file__).resolve().parents[1]
VIEWER_COUNTS = (1, 5, 10, 20)
TARGETS = {"viewer_slowdown": ("<=", 1.2), "viewer_lag_s": ("<=", 2.0), "viewer_errors": ("<=", 0)}  # at N = 20
# The job panel's progress text while the student trains: "<title> — student, epoch 3 of 60 · about 80 s left".
EPOCH_TEXT = re.compile(r"— student, epoch (\d+) of (\d+)")
STORE_POLL_S = 0.1
OPEN_GAP_S = 0.2       # between two new sessions: a class does not click at the same millisecond
LAG_WAIT_S = 20        # after a window, for the last epoch's point to reach every viewer; later = missed (an error)
PAGE_TIMEOUT_S = 120   # for a new session's first page


# --- one viewer: a Streamlit session over a websocket ---------------------------------------------
class Viewer:
    """A browser tab as the server sees it: one session that opens a page and follows its fragments."""

    def __init__(self, base: str, page: str = "distill", query: str = ""):
        self.base, self.page, self.query = base, page, query
        self.seen: dict[int, float] = {}      # finished epoch -> when this viewer first received it
        self.errors: list[str] = []
        self.progress_updates = 0
        self.pages_drawn = 0                  # full script runs finished
        self.widgets: dict[str, object] = {}  # widget id -> WidgetState, as the browser reports them
        self.elements: dict[str, tuple[str, object]] = {}  # widget label -> (kind, element), for the starter
        self._cached: set[str] = set()
        self._timers: dict[str, asyncio.Task] = {}
        self._announced: set[str] = set()
        self._page_hash = ""
        self._ws = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self.drawn = asyncio.Event()

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        host = self.base.split("://", 1)[1]
        try:
            token = await asyncio.to_thread(_xsrf_cookie, self.base)
            self._ws = await connect(f"ws://{host}/_stcore/stream", subprotocols=["streamlit", token],
                                     origin=self.base, additional_headers={"Cookie": f"_streamlit_xsrf={token}"},
                                     max_size=None, open_timeout=PAGE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is a viewer error, named
            self.errors.append(f"connect: {type(exc).__name__}: {exc}")
            return
        self._task = asyncio.create_task(self._receive())
        await self.rerun()

    async def rerun(self, fragment_id: str = "", triggers: dict[str, object] | None = None) -> None:
        """Send what the browser sends for a page load, a widget change or a fragment's timer."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_name, state.page_script_hash = self.query, self.page, self._page_hash
        state.fragment_id, state.is_auto_rerun = fragment_id, bool(fragment_id)
        state.cached_message_hashes.extend(self._cached)
        state.context_info.timezone, state.context_info.locale = "UTC", "en-US"
        state.context_info.url = f"{self.base}/{self.page}"
        widgets = dict(self.widgets, **(triggers or {}))
        state.widget_states.widgets.extend(widgets.values())
        try:
            await self._ws.send(msg.SerializeToString())
        except Exception as exc:  # noqa: BLE001
            if not self._closing:
                self.errors.append(f"send: {type(exc).__name__}")

    async def close(self) -> None:
        self._closing = True
        for timer in self._timers.values():
            timer.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _every(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.rerun(fragment_id)

    async def _receive(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        try:
            async for data in self._ws:
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg, time.time())
        except Exception as exc:  # noqa: BLE001
            if not self._closing:
                self.errors.append(f"receive: {type(exc).__name__}: {exc}")
            return
        if not self._closing:
            self.errors.append("disconnected by the server")

    def _handle(self, msg, now: float) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if msg.metadata.cacheable and msg.hash:
            self._cached.add(msg.hash)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self._page_hash = msg.new_session.page_script_hash
            self._announced = set()
        elif kind == "auto_rerun":
            fid = msg.auto_rerun.fragment_id
            self._announced.add(fid)
            if fid not in self._timers:
                self._timers[fid] = asyncio.create_task(self._every(fid, msg.auto_rerun.interval))
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                timer = self._timers.pop(fid, None)
                if timer:
                    timer.cancel()
        elif kind == "script_finished":
            status = msg.script_finished
            if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                self.errors.append("script failed")
            elif status == ForwardMsg.FINISHED_SUCCESSFULLY:
                self.pages_drawn += 1
                self.drawn.set()
                for fid in set(self._timers) - self._announced:  # the browser drops timers of vanished fragments
                    self._timers.pop(fid).cancel()
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element, now)

    def _element(self, element, now: float) -> None:
        from streamlit.proto.Alert_pb2 import Alert

        kind = element.WhichOneof("type")
        el = getattr(element, kind)
        if kind == "progress":
            self.progress_updates += 1
            match = EPOCH_TEXT.search(el.text)
            if match:  # "epoch k of E": epochs up to k - 1 are done, and the accuracy chart beside it shows them
                for epoch in range(max(self.seen, default=0) + 1, int(match.group(1))):
                    self.seen[epoch] = now
        elif kind == "exception":
            where = " < ".join(line.strip()[:80] for line in list(el.stack_trace)[-3:])
            self.errors.append(f"exception on the page: {el.type}: {el.message[:200]}" + (f" at {where}" if where else ""))
        elif kind == "alert" and el.format == Alert.ERROR:
            self.errors.append(f"error shown: {el.body[:120]}")
        elif getattr(el, "id", ""):
            # Like the browser: a widget takes the server's value when first drawn or when the script set it
            # (``set_value``); otherwise it keeps the value it has, whatever the element's default says.
            state = _widget_state(kind, el) if el.id not in self.widgets or getattr(el, "set_value", False) else None
            if state is not None:
                self.widgets[el.id] = state
            self.elements[getattr(el, "label", el.id)] = (kind, el)


def _xsrf_cookie(base: str) -> str:
    """The XSRF cookie the server sets on any page request; the frontend sends its value back when connecting."""
    with urllib.request.urlopen(base + "/_stcore/health", timeout=30) as response:
        for header in response.headers.get_all("set-cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == "_streamlit_xsrf":
                return rest.split(";", 1)[0]
    return ""


def _widget_state(kind: str, el):
    """The value a browser reports for a widget it has drawn (the widget kinds KD Studio's pages use)."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    state = WidgetState(id=el.id)
    if kind == "slider":
        state.double_array_value.data.extend(el.value if el.set_value else el.default)
    elif kind == "number_input":
        value = el.value if el.set_value else el.default
        if el.data_type == el.DataType.INT:
            state.int_value = int(value)
        else:
            state.double_value = value
    elif kind == "checkbox":
        state.bool_value = el.value if el.set_value else el.default
    elif kind == "selectbox":
        if el.set_value and el.raw_value:
            state.string_value = el.raw_value
        elif el.options:
            state.string_value = el.options[el.default]
        else:
            return None
    else:
        return None
    return state


# --- the server and its run store --------------------------------------------------------------------
class _Server(Dashboard):
    """The dashboard under load (tests/support/dashboard_process.py), with its memory, CPU time and tracebacks."""

    def __init__(self, home: Path):
        # the load test's own loopback server: show what went wrong, so an error example says it
        super().__init__(home, args=("--client.showErrorDetails", "full"), log_path=home / "streamlit.log")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tracebacks(self) -> list[str]:
        """The exception that ends each traceback in the server's log, but Streamlit's own noise on a closed tab.

        Streamlit 1.67 logs ``WebSocketDisconnected`` when a client closes its
        websocket (a browser tab does the same; tests/test_e2e.py lets it pass too).
        """
        lines, found = self.log_path.read_text(errors="replace").splitlines(), []
        for i, line in enumerate(lines):
            if line.startswith("Traceback (most recent call last)"):
                last = next((x for x in lines[i + 1:] if x.strip() and not x.startswith(" ")), "?")
                if not last.startswith(("starlette.websockets.WebSocketDisconnected", "During handling")):
                    found.append(last)
        return found


class _EpochWatch:
    """Polls the run store: when each of the student's epochs was written, its time and the server's CPU then."""

    def __init__(self, db: Path, server: _Server):
        self.db, self.server = db, server
        self.run_id = ""
        self.written: dict[int, float] = {}
        self.seconds: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.status = ""

    def _query(self, sql: str, args: tuple = ()) -> list:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def poll(self) -> None:
        if not self.db.exists():
            return
        if not self.run_id:
            rows = self._query("SELECT id FROM runs WHERE kind = 'distill' ORDER BY created DESC LIMIT 1")
            self.run_id = rows[0][0] if rows else ""
            if not self.run_id:
                return
        now, cpu = time.time(), self.server.cpu_s()
        rows = self._query("SELECT epoch, metrics FROM epochs WHERE run_id = ? AND series = 'student' AND epoch > ?",
                           (self.run_id, max(self.written, default=0)))
        for epoch, metrics in rows:
            self.written[epoch], self.cpu[epoch] = now, cpu
            self.seconds[epoch] = json.loads(metrics)["seconds"]
        self.status = self._query("SELECT status FROM runs WHERE id = ?", (self.run_id,))[0][0]

    @property
    def done(self) -> int:
        return max(self.written, default=0)

    async def follow(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.poll)
            except sqlite3.Error:
                pass  # the writer holds a lock for a moment: try again at the next poll
            await asyncio.sleep(STORE_POLL_S)


# --- the measurement ---------------------------------------------------------------------------------
@dataclass
class _Window:
    n: int
    epochs: list[int] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    missed: int = 0
    errors: list[str] = field(default_factory=list)
    rss_mb: float = 0.0
    rss_before_mb: float = 0.0
    opened_s: float = 0.0


async def _wait_for(condition, deadline: float, what: str) -> None:
    while not condition():
        if time.time() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.1)


async def _start_distillation(base: str, query: str, dataset: str, deadline: float) -> None:
    """Do what a teacher does in the browser: open Distill from a link, pick the dataset, press the button."""
    starter = Viewer(base, "distill", query)
    await starter.open()
    try:
        await asyncio.wait_for(starter.drawn.wait(), max(1.0, deadline - time.time()))
        kind, box = starter.elements.get("Dataset", ("", None))
        if box is not None and _widget_state(kind, box).string_value != dataset:
            starter.drawn.clear()
            state = _widget_state(kind, box)
            state.string_value = dataset
            starter.widgets[box.id] = state
            await starter.rerun()
            await asyncio.wait_for(starter.drawn.wait(), max(1.0, deadline - time.time()))
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if "Distil student" not in starter.elements:
            raise RuntimeError(f"the Distill page shows no 'Distil student' button; see {base} in a browser")
        _, button = starter.elements["Distil student"]
        starter.drawn.clear()
        await starter.rerun(triggers={button.id: WidgetState(id=button.id, trigger_value=True)})
        await asyncio.wait_for(starter.drawn.wait(), max(1.0, deadline - time.time()))
        if starter.errors:
            raise RuntimeError(f"starting the distillation failed: {starter.errors[0]}")
    finally:
        await starter.close()


async def _measure(server: _Server, counts: list[int], measure: int, query: str, dataset: str,
                   deadline: float, log) -> tuple[list[_Window], _EpochWatch]:
    watch = _EpochWatch(server.home / "runs.db", server)
    follower = asyncio.create_task(watch.follow())
    await _start_distillation(server.url, query, dataset, deadline)
    await _wait_for(lambda: watch.done >= 1, deadline, "the first epoch")  # the first epoch traces: left out
    pool: list[Viewer] = []
    windows = []
    try:
        for n in [0, *(step for n in counts for step in (n, 0))]:
            while len(pool) > n:
                await pool.pop().close()
            win = _Window(n, rss_before_mb=server.rss_mb())
            windows.append(win)
            t0 = time.time()
            while len(pool) < n:
                viewer = Viewer(server.url, "distill")
                pool.append(viewer)
                await viewer.open()
                await asyncio.sleep(OPEN_GAP_S)
            try:
                await _wait_for(lambda: all(v.pages_drawn or v.errors for v in pool),
                                min(deadline, time.time() + PAGE_TIMEOUT_S), "the viewers' first page")
            except TimeoutError:
                pass  # counted below as sessions that never drew their page
            win.opened_s = round(time.time() - t0, 2)
            first = watch.done + 2  # the epoch under way when the last viewer arrived is left out
            win.epochs = list(range(first, first + measure))
            log(f"{n} viewer(s): {win.opened_s} s to open; measuring epochs {first}-{first + measure - 1}")
            await _wait_for(lambda: watch.done >= win.epochs[-1] or watch.status not in ("running", "queued"),
                            deadline, f"epochs {win.epochs}")
            win.rss_mb = server.rss_mb()
            try:  # an overloaded server answers late: wait for the window's last point, so the lag is measured
                await _wait_for(lambda: all(win.epochs[-1] in v.seen or v.errors for v in pool),
                                min(deadline, time.time() + LAG_WAIT_S), "the last point to reach every viewer")
            except TimeoutError:
                pass
            for viewer in pool:
                for epoch in win.epochs:
                    if epoch not in watch.written:
                        continue
                    if epoch in viewer.seen:
                        win.lags.append(viewer.seen[epoch] - watch.written[epoch])
                    else:
                        win.missed += 1
                win.errors += viewer.errors + ([] if viewer.pages_drawn else ["the page never arrived"])
                viewer.errors = []
            if watch.status not in ("running", "queued"):
                raise RuntimeError(f"the distillation ended ({watch.status}) before the measurement did")
    finally:
        for viewer in pool:
            await viewer.close()
        follower.cancel()
    return windows, watch


def _summary(windows: list[_Window], watch: _EpochWatch) -> list[dict]:
    def median_of(values):
        return statistics.median(values) if values else None

    def seconds(wins):
        return [watch.seconds[e] for w in wins for e in w.epochs if e in watch.seconds]

    def cpu_s(wins):
        return [watch.cpu[e] - watch.cpu[e - 1] for w in wins for e in w.epochs if e in watch.cpu and e - 1 in watch.cpu]

    rows = []
    for i, win in enumerate(windows):
        # Against the 0-viewer windows on either side (for a 0-viewer window: against all of them, to show drift).
        around = windows[max(0, i - 1):i + 2:2] if win.n else [w for w in windows if w.n == 0]
        secs, cpu, idle, idle_cpu = seconds([win]), cpu_s([win]), seconds(around), cpu_s(around)
        rows.append({
            "viewers": win.n, "epochs": len(secs), "epoch_s_each": [round(x, 3) for x in secs],
            "epoch_s": round(median_of(secs), 3) if secs else None,
            "server_cpu_per_epoch_s": round(median_of(cpu), 3) if cpu else None,
            "viewer_slowdown": round(median_of(secs) / median_of(idle), 3) if secs and idle else None,
            "viewer_cpu_slowdown": round(median_of(cpu) / median_of(idle_cpu), 3) if cpu and idle_cpu else None,
            "viewer_lag_s": round(max(win.lags), 3) if win.lags else None,
            "viewer_lag_median_s": round(median_of(win.lags), 3) if win.lags else None,
            "viewer_missed_points": win.missed,
            "viewer_errors": len(win.errors) + win.missed, "error_examples": sorted(set(win.errors))[:5],
            "server_rss_mb": round(win.rss_mb, 1),
            "server_mb_per_viewer": round((win.rss_mb - win.rss_before_mb) / win.n, 2) if win.n else None,
            "open_s": win.opened_s,
        })
    return rows


def run(viewers: list[int] | tuple[int, ...] = VIEWER_COUNTS, dataset: str | None = None, measure: int = 3,
        student_units: int = 128, batch_size: int = 64, teacher: str | Path | None = None,
        timeout_s: float = 1800, client_nice: int = 10, log=None) -> dict:
    """Measure N viewers against one running distillation for each N in ``viewers`` (one server, one run).

    ``teacher`` is a saved .keras teacher to seed the server with (with its
    .json sidecar); without one a tiny teacher is trained here first.
    """
    from kdcore.tasks import idx

    counts = sorted(set(int(n) for n in viewers))
    if not counts or counts[0] < 1:
        raise ValueError(f"viewers must be whole numbers >= 1 (got {list(viewers)})")
    if measure < 1:
        raise ValueError(f"measure must be >= 1 epoch (got {measure})")
    dataset = dataset or ("fashion-mnist" if idx.FASHION_IDX_DIR.exists() else "mnist-5k")
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    t_start = time.time()
    deadline = t_start + timeout_s
    home = Path(tempfile.mkdtemp(prefix="kd-viewers-"))
    try:
        _seed_teacher(home, dataset, teacher, log)
        # Epochs enough for every window (open, the epoch under way, measure) with room to spare.
        epochs = 2 + (2 * len(counts) + 1) * (measure + 3)
        query = (f"student_filters=0&student_units={student_units}&student_layers=1&epochs={epochs}"
                 f"&batch_size={batch_size}&baseline=false&hint_epochs=0&labels_fraction=1.0")
        server = _Server(home)
        try:
            cpu0 = time.process_time()
            windows, watch = _niced(client_nice, lambda: asyncio.run(asyncio.wait_for(
                _measure(server, counts, measure, query, dataset, deadline, log), max(1.0, deadline - time.time()))))
            client_cpu = time.process_time() - cpu0
            tracebacks = server.tracebacks()
        finally:
            server.stop()
        rows = _summary(windows, watch)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    by_n = {row["viewers"]: row for row in rows if row["viewers"]}
    fields = ("viewer_slowdown", "viewer_cpu_slowdown", "viewer_lag_s", "viewer_lag_median_s", "viewer_errors", "server_mb_per_viewer")
    pick = (lambda f: by_n[counts[0]][f]) if len(counts) == 1 else (lambda f: [by_n[n][f] for n in counts])
    result = {"viewers": counts[0] if len(counts) == 1 else counts, **{f: pick(f) for f in fields}}
    result |= {"dataset": dataset, "student_units": student_units, "batch_size": batch_size,
               "idle_epoch_s": [r["epoch_s"] for r in rows if r["viewers"] == 0], "windows": rows,
               "server_errors": tracebacks, "client_cpu_s": round(client_cpu, 1),
               "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
               "seconds": round(time.time() - t_start, 1),
               "method": "real Streamlit websocket sessions (BackMsg/ForwardMsg protobufs), following auto_rerun"}
    top = by_n[counts[-1]]
    result["targets"] = {k: {"limit": f"{op} {limit}", "at": counts[-1], "value": top[k],
                             "met": top[k] is not None and top[k] <= limit}
                         for k, (op, limit) in TARGETS.items()}
    return result


def _niced(nice: int, work):
    """Run ``work()`` in a thread of lower priority, so the viewers yield the CPU to the server they load.

    On Linux a nice value belongs to a thread (and the threads it starts), so
    the caller, e.g. ``bench``, keeps its own priority afterwards.
    """
    import threading

    box: dict = {}

    def target():
        if nice:
            os.nice(nice)
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="kd-viewers")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _seed_teacher(home: Path, dataset: str, teacher: str | Path | None, log) -> None:
    """Put a teacher in the server's models folder: the given one, or one trained here in a few seconds."""
    models = home / "models"
    models.mkdir(parents=True)
    from kdcore import storage
    from kdcore.tasks.digits import data

    if teacher:
        teacher, seeded = Path(teacher), models / "teacher-viewers.keras"
        shutil.copy(teacher, seeded)
        shutil.copy(storage.sidecar_path(teacher), storage.sidecar_path(seeded))
        return
    from kdcore.tasks.digits import DIGITS, TeacherConfig

    log(f"training a tiny teacher on 2,000 {dataset} images…")
    ds = data.load(dataset).subset(2000, 500, seed=0)
    res = DIGITS.train_teacher(TeacherConfig(epochs=1, seed=0), ds)
    storage.save_model(res.model, models / "teacher-viewers.keras",
                       {"kind": "teacher", "dataset": dataset, "test_accuracy": res.score})


# --- command line ----------------------------------------------------------------------------------
HELP = "open N real viewer sessions on a running dashboard while it distils; epoch slowdown, lag, errors, memory"


def add_arguments(parser, dataset: bool = False) -> None:
    """The load test's options (``bench`` has its own ``--dataset``; ``dataset=True`` adds one here)."""
    parser.add_argument("--viewers", type=int, nargs="+", metavar="N",
                        help=f"numbers of viewer sessions, measured in one run (default: {' '.join(map(str, VIEWER_COUNTS))})")
    parser.add_argument("--viewer-epochs", type=int, default=3, help="epochs measured per number of viewers (default 3)")
    parser.add_argument("--viewer-timeout", type=float, default=1800, help="give up after this many seconds (default 1800)")
    parser.add_argument("--viewer-teacher", help="a saved .keras teacher to seed the dashboard with (default: train a tiny one)")
    parser.add_argument("--viewer-nice", type=int, default=10,
                        help="niceness of the viewers' thread, so they leave the CPU to the server (default 10; "
                             "0 on a machine other programs load, where a niced client falls behind)")
    if dataset:
        parser.add_argument("--dataset", help="default: fashion-mnist when its files are here, else mnist-5k")


def from_args(args) -> dict:
    return run(args.viewers or list(VIEWER_COUNTS), getattr(args, "dataset", None), args.viewer_epochs,
               teacher=args.viewer_teacher, timeout_s=args.viewer_timeout, client_nice=args.viewer_nice)


def text(result: dict) -> str:
    lines = [f"{result['dataset']}, {result['method']}; load average {result['load_average']} on {result['cpus']} CPUs",
             f"{'viewers':>7} {'epoch s':>8} {'slowdown':>8} {'cpu s':>6} {'cpu x':>6} {'lag max':>8} {'lag med':>8} "
             f"{'errors':>6} {'MB/viewer':>9}"]
    for r in result["windows"]:
        cells = [r["viewers"], r["epoch_s"], r["viewer_slowdown"], r["server_cpu_per_epoch_s"],
                 r["viewer_cpu_slowdown"], r["viewer_lag_s"], r["viewer_lag_median_s"], r["viewer_errors"],
                 r["server_mb_per_viewer"]]
        lines.append(" ".join(f"{'—' if c is None else c:>{w}}" for c, w in zip(cells, (7, 8, 8, 6, 6, 8, 8, 6, 9))))
    if result["server_errors"]:
        lines.append(f"server log: {len(result['server_errors'])} traceback(s), e.g. {result['server_errors'][0]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(prog="python -m lab.viewers", description=HELP)
    add_arguments(parser, dataset=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    result = from_args(args)
    print(json.dumps(result, indent=2) if args.json else text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
