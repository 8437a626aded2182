"""What every task's benchmark shares: clocks, a poller, peak memory, the machine's facts, and the command.

``python -m kdcore bench [--task NAME]`` asks the task (``Task.bench``) to
measure itself, in one process; each task's ``bench.py`` holds what only it
measures (the default task's times KD Studio's distillation against
``keras.distillation.Distiller`` and a GradientTape loop, see
:mod:`kdcore.tasks.digits.bench`) and builds on the machinery here, so that
every benchmark times an epoch the same way: from its start to its last
training batch, without the test-set pass, the first epoch (tracing) left out,
medians over the rest, in wall-clock and in this process's CPU seconds (which
other programs' load barely moves).

``--export MODEL`` measures a saved model's LiteRT exports instead, whatever
its task. The dashboard's start-up is measured apart, by ``lab/first_paint.py``,
and the many-viewer load test by ``lab/viewers.py``: the engine never starts a
server or a browser.
"""
from __future__ import annotations

import logging
import os
import resource
import statistics
import threading
import time
from pathlib import Path

from . import tasks
from .dataset import Dataset
from .progress import Progress

POLL_INTERVAL_S = 1.0  # the pages' @st.fragment(run_every=1.0); tests/test_bench.py checks they agree


# --- what is measured -------------------------------------------------------------------------------
def _now() -> tuple[float, float]:
    """(wall clock, this process's CPU time): the second barely moves when other programs load the machine."""
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _now()
    return wall - start[0], cpu - start[1]


class _Clock(Progress):
    """A Progress that also notes how long each epoch took up to its last training batch."""

    def __init__(self):
        super().__init__("bench")
        self.train_s: list[tuple[float, float]] = []
        self._steps, self._start, self._timed = 0, _now(), False

    def phase(self, name: str, epochs: int = 0, steps: int = 0) -> None:
        super().phase(name, epochs, steps)
        self._steps, self._start, self._timed = steps, _now(), False

    def batch(self, series: str, step: int, loss: float) -> None:
        super().batch(series, step, loss)
        if step >= self._steps and not self._timed:  # once: TinyBERT's stage reports four series per batch
            self.train_s.append(_since(self._start))
            self._timed = True

    def epoch(self, series: str, record: dict) -> None:
        super().epoch(series, record)
        self._start, self._timed = _now(), False


class _Poller(threading.Thread):
    """Polls ``snapshot()`` every ``POLL_INTERVAL_S``, as a page's fragment does; notes each new point's age.

    After the run ends it polls once more on its own beat, as the page would, so
    that the last epoch's record is measured too.
    """

    def __init__(self, progress: Progress):
        super().__init__(name="bench-poller", daemon=True)
        self.progress, self.lags, self.done = progress, [], threading.Event()

    def run(self) -> None:
        seen, finished = None, False
        while not finished:
            finished = self.done.is_set()
            time.sleep(POLL_INTERVAL_S)
            snap = self.progress.snapshot()
            if snap["updated"] != seen and snap["batches"]:
                seen = snap["updated"]
                self.lags.append(time.time() - seen)


class _RetraceCounter(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "retracing" in record.getMessage()


def _peak_rss_reset() -> str:
    """Start a new high-water mark where Linux allows it; say which measure the figure will be."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM after resetting it through /proc/self/clear_refs just before the first distillation"
    except OSError:
        return "ru_maxrss: the whole process's peak so far (clear_refs was refused)"


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- what every benchmark reports ----------------------------------------------------------------
def _check_counts(epochs: int, repeats: int) -> None:
    if epochs < 2 or repeats < 1:
        raise ValueError(f"epochs must be >= 2 (the first is tracing) and repeats >= 1 (got {epochs}, {repeats})")


def _timed(result, clock: _Clock) -> list:
    """The (wall, CPU) seconds of a finished run's epochs after the first (tracing); a run that did not finish raises."""
    if result.status != "finished":
        raise RuntimeError(f"benchmark run {result.status}: {result.reason}")
    return clock.train_s[1:]


def _epoch_medians(times: dict) -> tuple[dict, dict]:
    """Per method, the median wall and the median CPU seconds of its timed epochs ((wall, CPU) pairs)."""
    return ({k: _median([wall for wall, _ in v]) for k, v in times.items()},
            {k: _median([cpu for _, cpu in v]) for k, v in times.items()})


def _epoch_fields(epoch_s: dict, cpu_s: dict) -> dict:
    """The medians as a result reports them: ``epoch_s`` and ``epoch_cpu_s``, in milliseconds' precision."""
    return {"epoch_s": {k: round(v, 3) for k, v in epoch_s.items()},
            "epoch_cpu_s": {k: round(v, 3) for k, v in cpu_s.items()}}


def _load_line(machine: dict) -> str:
    """The last line of every benchmark's summary: how loaded the machine was."""
    return (f"load average {machine['load_before'][0]} before, {machine['load_after'][0]} after "
            f"({machine['cpus']} CPUs)")


def _machine(load_before, versions: bool = True) -> dict:
    """The machine a measurement ran on: its CPUs, load average before and now, and (when asked) TF and Keras."""
    out = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
           "load_after": [round(x, 2) for x in os.getloadavg()]}
    if versions:
        import keras
        import tensorflow as tf

        out.update(tensorflow=tf.__version__, keras=keras.__version__)
    return out


def _median(values) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _verdicts(result: dict, targets: dict) -> dict:
    """``{figure: met?}`` for each target whose figure was reported (``a.b`` is ``result[a][b]``)."""
    out = {}
    for key, (op, limit) in targets.items():
        value = result
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            out[key] = bool(value <= limit if op == "<=" else value >= limit)
    return out


# --- what the task benchmarks share ----------------------------------------------------------------
def preset_run(task: str | tasks.Task, preset, dataset, default: str, repeats: int, **changes):
    """A task's benchmark settings: ``(task, spec, teacher config, distill config with changes, dataset)``.

    ``preset`` is a preset's name or a dict of its shape (tests time tiny shapes); ``dataset`` a loaded
    Dataset or a name (default ``default``); ``changes`` include the timed ``epochs``.
    """
    _check_counts(changes["epochs"], repeats)
    import dataclasses

    from . import presets
    from .config import from_dict

    task = tasks.get(task)
    spec = presets.get(preset) if isinstance(preset, str) else preset
    teacher_cfg = from_dict(task.teacher_config, spec["teacher"]).validate()
    cfg = from_dict(task.distill_class(), spec["distill"], task)
    ds = dataset if isinstance(dataset, Dataset) else task.load(dataset or default)
    return task, spec, teacher_cfg, dataclasses.replace(cfg, **changes).validate(len(ds.y_train)), ds


# --- command line (registered as `python -m kdcore bench` in kdcore.cli) ----------------------------
HELP = "time distillation in one process, each task its own way: " + "; ".join(
    f"--task {name}: {tasks.get(name).bench_help}" for name in tasks.names() if tasks.get(name).bench_help)


# The many-viewer load test starts a dashboard and speaks Streamlit's protocol, which the engine never does.
VIEWERS_MOVED = "run .venv/bin/python -m lab.viewers --viewers 1 5 10 20 --json from the repository's root"


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", help="default: the task's benchmark's own (the command's help names it)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is left out (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each method (default 3)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat, and a slice of a large dataset")
    parser.add_argument("--viewers", type=int, nargs="+", metavar="N", help=f"moved: {VIEWERS_MOVED}")
    parser.add_argument("--export", metavar="MODEL",
                        help="measure a saved model's LiteRT exports instead: none, float16 and int8 side by side "
                             "(size, metric, latency), against the int8 targets in docs/deploy.md")


EXPORT_TARGETS = {"int8_vs_float_bytes": ("<=", 0.30), "int8_accuracy_change_points": (">=", -0.5)}


def exports(model: str) -> dict:
    """The model exported three ways in one run, with the int8 file's ratios to the float one (docs/deploy.md).

    Sizes and accuracies do not depend on the machine's load; latencies do, so
    the load average is reported with them.
    """
    from . import export

    load_before = os.getloadavg()
    files = {q: export.export(model, q) for q in export.QUANTIZE}
    int8, floating = files["int8"], files["none"]
    out = {"model": str(model), "bytes": {q: f["bytes"] for q, f in files.items()},
           "latency_ms_1_thread": {q: f["latency_ms"]["threads_1"]["median"] for q, f in files.items()},
           "keras_latency_ms_1_thread": (floating.get("keras_latency_ms") or {}).get("threads_1", {}).get("median"),
           "int8_vs_float_bytes": round(int8["bytes"] / floating["bytes"], 3)}
    if floating.get("accuracy") is not None:
        out["accuracy"] = {q: f["accuracy"] for q, f in files.items()}
        out["int8_accuracy_change_points"] = round(100 * (int8["accuracy"] - floating["accuracy"]), 2)
    out["meets_target"] = _verdicts(out, EXPORT_TARGETS)
    out["machine"] = _machine(load_before, versions=False)
    return out


def from_args(args) -> dict:
    if getattr(args, "export", None):
        return exports(args.export)
    if args.viewers:
        raise ValueError(f"bench --viewers has moved out of the engine: {VIEWERS_MOVED}")
    epochs, repeats = (2, 1) if args.quick else (args.epochs, args.repeats)
    return tasks.get(args.task).bench(args.dataset, epochs, repeats, quick=args.quick)


def text(result: dict) -> str:
    if "int8_vs_float_bytes" in result:
        return "\n".join(f"{key}: {result[key]}" for key in result if key != "machine")
    return tasks.get(result.get("task") or tasks.DEFAULT).bench_text(result)
