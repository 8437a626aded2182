"""Background jobs: training runs that outlive the page (and the browser tab) that started them.

One worker thread per process takes jobs from a queue, one at a time: on two
CPU cores two trainings at once would each run at half speed and both finish
late, so a second job waits, visibly ``queued``, instead. Each job owns a
:class:`~kdcore.progress.Progress` that pages poll, and a row in the run store
that is written when it is queued, on every epoch and when it ends, so a
stopped or failed run keeps its history and says why.

Errors inside the thread are never swallowed: the job ends ``failed`` with
the error's text, in its progress and in the run store.
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from .progress import Progress, StopRequested
from .results import ACTIVE, Status
from .storage import run_store

_ids = itertools.count(1)


@dataclass
class Job:
    kind: str
    title: str
    work: Callable[["Job"], dict]
    config: dict = field(default_factory=dict)
    dataset: str = ""
    id: str = ""
    run_id: str = ""
    progress: Progress = None
    result: object = None  # what ``work`` returned: a results dataclass (kdcore.results) or a dict
    error: str = ""
    unsaved: tuple | None = None  # (model, meta) when training finished but saving failed: save it again
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def status(self) -> Status:
        return self.progress.status

    def stop(self) -> None:
        """Ask the job to stop; a training loop notices within one batch, a queued job never starts."""
        self.progress.request_stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


def _json(result) -> dict:
    """A job's result as the JSON the run store keeps (dataclasses say how with ``to_json``)."""
    if result is None:
        return {}
    return result.to_json() if hasattr(result, "to_json") else dict(result)


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class JobRunner:
    def __init__(self):
        self._queue: queue.Queue[Job] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, kind: str, title: str, work: Callable[[Job], dict], config: dict | None = None,
               dataset: str = "") -> Job:
        """Queue ``work(job)``; it returns a results dict (or raises). Returns at once."""
        job = Job(kind, title, work, dict(config or {}), dataset, id=f"job{next(_ids)}")
        job.progress = Progress(title)
        job.run_id = run_store().create(kind, title, job.config, dataset)
        job.progress.on_epoch.append(lambda series, record: run_store().add_epoch(job.run_id, series, record))
        with self._lock:
            self._jobs[job.id] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="kdcore-jobs", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def _work(self) -> None:
        while True:
            self._run(self._queue.get())

    def _run(self, job: Job) -> None:
        store, progress = run_store(), job.progress
        status, reason, results = "finished", "", {}
        try:
            progress.check_stop()
            from .training import device_info

            device = device_info()["label"]
            progress.start(device)
            store.update(job.run_id, status="running", started=time.time(), device=device)
            job.result = job.work(job)
            results = _json(job.result)
            status, reason = results.pop("status", "finished"), results.pop("reason", "")
        except StopRequested as exc:
            status, reason = "stopped", str(exc)
        except Exception as exc:  # noqa: BLE001 - surfaced to the user, never swallowed
            status, reason = "failed", f"{type(exc).__name__}: {_error_text(exc)}"
            job.error = reason + "\n" + traceback.format_exc()
            job.unsaved = getattr(exc, "unsaved", None)
        if job.result is None:
            job.result = results
        progress.result(**results)
        try:
            store.update(job.run_id, status=status, reason=reason, results=results, ended=time.time(),
                         model_path=results.get("model", ""))
        finally:
            progress.end(status, reason)
            job.done.set()

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def active(self) -> list[Job]:
        return [j for j in self.jobs() if j.status in ACTIVE]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def find_run(self, run_id: str) -> Job | None:
        return next((j for j in self.jobs() if j.run_id == run_id), None)


def recorded(kind: str, title: str, config: dict, dataset: str, work, progress: Progress | None = None,
             at_end: bool = False):
    """Run ``work(progress)`` here and now, with a row in the run store like a dashboard job's.

    For the command line: its runs appear on the Runs page too, with their
    epochs, how they ended and why. An exception is recorded as ``failed``
    and raised again. With ``at_end`` the row and its epochs are written in
    one transaction when the run ends, so a process killed mid-run leaves no
    row at all (a sweep's trial: the study itself says it failed, and its
    retry writes the record).
    """
    store = run_store()
    progress = progress or Progress(title)
    epochs: list[tuple[str, dict]] = []
    started = time.time()
    if at_end:
        listener = lambda series, rec: epochs.append((series, dict(rec)))  # noqa: E731
    else:
        run_id = store.create(kind, title, config, dataset, status="running")
        store.update(run_id, started=started)
        listener = lambda series, rec: store.add_epoch(run_id, series, rec)  # noqa: E731
    progress.on_epoch.append(listener)

    def finish(**fields) -> None:
        if at_end:
            store.add_run(kind, title, config, dataset, started=started, ended=time.time(), epochs=epochs, **fields)
        else:
            store.update(run_id, ended=time.time(), **fields)

    try:
        result = work(progress)
    except BaseException as exc:
        stopped = isinstance(exc, StopRequested)
        finish(status="stopped" if stopped else "failed",
               reason=str(exc) if stopped else f"{type(exc).__name__}: {_error_text(exc)}")
        raise
    finally:
        progress.on_epoch.remove(listener)
    payload = _json(result)
    finish(status=str(payload.get("status", "finished")), reason=payload.get("reason", ""), results=payload,
           model_path=payload.get("model", ""))
    return result


_RUNNER = JobRunner()


def runner() -> JobRunner:
    """The process-wide runner: every Streamlit session and tab sees the same jobs."""
    return _RUNNER
