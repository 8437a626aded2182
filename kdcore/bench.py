"""How fast is KD Studio's distillation, next to the ways people usually write it?

A stripped script that exists only to measure (like nanoGPT's ``bench.py``):
``python -m kdcore bench --json`` runs, in one process, on the same data and
the same teacher and student (the seed tutorial's CNN teacher, a 128-unit MLP
student, batch 64, T = 4, alpha = 0.9):

* ``scratch``: the student from the labels alone, through :func:`kdcore.training.fit`;
* ``distill``: KD Studio's distillation, the same ``fit`` fed the teacher's
  logits, computed once beforehand (``teacher_logits_s``);
* ``keras_distiller``: ``keras.distillation.Distiller`` configured as its docs
  say (``LogitsDistillation`` with a ``KLDivergence()`` *instance*, so it does
  soften both sides and multiply by T²), fed NumPy arrays the idiomatic way;
* ``tape_loop``: a ``tf.function`` GradientTape step that runs the teacher
  on every batch, as the seed tutorial does (same loss as KD Studio);
* ``raw_step``: KD Studio's own distillation step, in a bare ``tf.function``
  running as many steps per call as ``fit``, over batches prepared beforehand:
  the ceiling any loop can reach here (``fit_efficiency`` is ``fit`` over it).

An epoch's time is from the start of the epoch to its last training batch,
without the test-set pass, for every method alike; the first epoch of each run
(tracing) is left out, and the figure is the median over the remaining epochs
of all repeats. The methods take turns within each repeat, so a change in the
machine's load hits them all; ``epoch_cpu_s`` and ``cpu_ratios`` give the same
figures in this process's CPU time, which other programs' load barely moves
(on a shared machine, trust those more than the wall-clock ratios). Epochs
under ``MIN_EPOCH_S`` are too short to time: then the ratios are left out and
``ratios_omitted`` says why. Both KD Studio runs pass a
:class:`~kdcore.progress.Progress`, as the dashboard does. The teacher is
untrained: its weights do not change what a forward pass costs.

Besides speed it reports the peak resident memory of distilling (the kernel's
high-water mark ``VmHWM``, reset through ``/proc/self/clear_refs`` just before
the first distillation and read just after it), how stale the dashboard's view
of a run is (``live_lag_s``: a thread polling ``Progress.snapshot()`` every
``POLL_INTERVAL_S``, as a page's fragment does, notes the age of the newest
point each time one has appeared; ``poll_slowdown`` is the epoch time with
that poller over the time without), the latency of classifying one drawn canvas with both
models (``predict_ms``), and how often TensorFlow warned about retracing.

The dashboard's start-up is measured apart, by ``lab/first_paint.py``: the
engine never starts a server or a browser. ``bench --task NAME`` runs that
task's own benchmark instead (``Task.bench``: the language model's soft
targets in :mod:`kdcore.tasks.lm.bench`, TinyBERT's intermediate epoch in
:mod:`kdcore.tasks.text.bench`), built on the machinery here.
"""
from __future__ import annotations

import logging
import os
import resource
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from . import tasks
from .dataset import Dataset
from .config import DistillConfig
from .tasks.digits import StudentConfig, TeacherConfig
from .tasks.digits import data as datasets
from .progress import Progress

POLL_INTERVAL_S = 1.0  # the pages' @st.fragment(run_every=1.0); tests/test_bench.py checks they agree
PREDICT_CALLS = 50
QUICK_SUBSET = (2000, 500)  # train, test images in --quick mode
MIN_EPOCH_S = 0.5  # shorter epochs are too short to time: their ratios would be noise (mnist-5k: 0.16 s)
TARGETS = {  # docs/benchmarks.md: measured on the 2-core development machine, never asserted by tests
    "cpu_ratios.distill_vs_scratch": ("<=", 1.05), "distill_vs_keras_distiller": ("<=", 0.60),
    "fit_efficiency": (">=", 0.80), "live_lag_s": ("<=", 1.0), "poll_slowdown": ("<=", 1.10),
    "predict_ms": ("<=", 150.0), "peak_rss_mb": ("<=", 1600.0),
}


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


# --- the contenders ------------------------------------------------------------------------------
def _kd_fit(ds, cfg, logits=None, poll=False) -> tuple[list, list[float]]:
    """((wall, CPU) seconds per epoch, poll lags) of kdcore.training.fit, distilling when ``logits`` is given."""
    from .tasks.digits import build_student
    from .training import fit

    clock = _Clock()
    poller = _Poller(clock) if poll else None
    if poller:
        poller.start()
    soft = dict(teacher_logits=logits, temperature=cfg.temperature, alpha=cfg.alpha) if logits is not None else {}
    result = fit(build_student(cfg.student, cfg.seed), ds, cfg, progress=clock, series="student", **soft)
    if poller:
        poller.done.set()
        poller.join()
    if result.status != "finished":
        raise RuntimeError(f"benchmark run {result.status}: {result.reason}")
    return clock.train_s[1:], poller.lags if poller else []


def _epoch_timer():
    """A Keras callback timing each epoch up to its evaluation; no per-batch hook, so Keras stays asynchronous."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.train_s, self._start = [], _now()

        def on_epoch_begin(self, epoch, logs=None):
            self._start = _now()

        def on_test_begin(self, logs=None):
            self.train_s.append(_since(self._start))

    return EpochTimer()


def _keras_distiller(ds, cfg, teacher) -> list:
    import keras

    from .tasks.digits import build_student

    distiller = keras.distillation.Distiller(
        teacher=teacher, student=build_student(cfg.student, cfg.seed),
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=cfg.temperature, loss=keras.losses.KLDivergence()),
        student_loss_weight=1.0 - cfg.alpha)
    distiller.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], jit_compile=False)
    timer = _epoch_timer()
    distiller.fit(ds.x_train, ds.y_train, batch_size=cfg.batch_size, epochs=cfg.epochs, verbose=0,
                  validation_data=(ds.x_test, ds.y_test), callbacks=[timer])
    return timer.train_s[1:]


def _tape_loop(ds, cfg, teacher) -> list:
    """The seed tutorial's loop: tf.data from tensor slices, the teacher forward inside every step."""
    import keras
    import tensorflow as tf

    from .losses import distillation_terms
    from .tasks.digits import build_student

    student = build_student(cfg.student, cfg.seed)
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    batches = (tf.data.Dataset.from_tensor_slices((ds.x_train, ds.y_train))
               .shuffle(len(ds.y_train), seed=cfg.seed).batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE))

    @tf.function(reduce_retracing=True)
    def step(x, y):
        t_logits = teacher(x, training=False)
        with tf.GradientTape() as tape:
            loss = distillation_terms(y, student(x, training=True), t_logits, cfg.temperature, cfg.alpha)[0]
        optimizer.apply(tape.gradient(loss, student.trainable_variables), student.trainable_variables)
        return loss

    times = []
    for _ in range(cfg.epochs):
        start = _now()
        for x, y in batches:
            loss = step(x, y)
        float(loss)
        times.append(_since(start))
    return times[1:]


def _raw_step(ds, cfg, logits) -> float:
    """Samples/s of KD Studio's distillation step alone: the ceiling for ``fit``.

    A bare ``tf.function`` runs as many steps per call as ``fit`` does
    (``training.steps_per_execution``), unrolled, over batches and soft targets
    prepared beforehand as tensors: ``fit``'s own step, without Keras's per-call
    machinery, the callback or the gather. (One step per call was no ceiling:
    ``fit`` with eight steps per call beat it, and ``fit_efficiency`` read 1.07.)
    """
    import keras
    import tensorflow as tf

    from .losses import soft_targets
    from .tasks.digits import build_student
    from .training import _trainer_class, steps_per_execution

    trainer = _trainer_class()(build_student(cfg.student, cfg.seed), cfg.temperature, cfg.alpha)
    trainer.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
    trainer.optimizer.build(trainer.net.trainable_variables)
    targets = np.asarray(soft_targets(logits, cfg.temperature, trainer.mode))
    b = cfg.batch_size
    per_call = steps_per_execution(len(ds.y_train) // b)
    calls = len(ds.y_train) // (b * per_call)

    def batch(i):
        rows = slice(i * b, (i + 1) * b)
        return tf.constant(ds.x_train[rows]), (tf.constant(ds.y_train[rows].astype("int64")), tf.constant(targets[rows]))

    groups = [tuple(batch(c * per_call + k) for k in range(per_call)) for c in range(calls)]

    @tf.function
    def run(group):
        for one in group:  # a Python loop: unrolled into one graph
            out = trainer.train_step(one)
        return out

    for group in groups[:2]:
        run(group)
    start = time.perf_counter()
    for group in groups:
        out = run(group)
    float(out["loss"])
    return calls * per_call * b / (time.perf_counter() - start)


def _canvas() -> np.ndarray:
    """A 280×280 RGBA drawing like the Draw page's canvas returns: a white 7 on black."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(canvas).line([(90, 60), (190, 60), (120, 230)], fill=(255, 255, 255, 255), width=18)
    return np.asarray(canvas)


def _predict_ms(teacher, student, calls: int) -> float:
    """Median latency of one drawing → preprocess → teacher and student logits, after a warm-up."""
    from .tasks.digits.pictures import preprocess
    from .inference import predict_one

    canvas = _canvas()

    def once() -> float:
        start = time.perf_counter()
        image = preprocess(canvas)
        predict_one(teacher, image)
        predict_one(student, image)
        return (time.perf_counter() - start) * 1000

    for _ in range(5):
        once()
    return statistics.median(once() for _ in range(calls))


# --- the benchmark ---------------------------------------------------------------------------------
def _dataset(name, quick: bool) -> Dataset:
    """A Dataset as given, or by name; by default Fashion-MNIST when its files are here (mnist-5k for --quick)."""
    if isinstance(name, Dataset):
        return name
    if name is None:
        fashion = next(row for row in datasets.available() if row["name"] == "fashion-mnist")
        name = "fashion-mnist" if fashion["available"] and not quick else "mnist-5k"
    ds = datasets.load(name)
    return ds.subset(*QUICK_SUBSET, seed=0) if quick else ds


def _epoch_medians(times: dict) -> tuple[dict, dict]:
    """Per method, the median wall and the median CPU seconds of its timed epochs ((wall, CPU) pairs)."""
    return ({k: _median([wall for wall, _ in v]) for k, v in times.items()},
            {k: _median([cpu for _, cpu in v]) for k, v in times.items()})


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


def _verdicts(result: dict, targets: dict | None = None) -> dict:
    """``{figure: met?}`` for each target whose figure was reported (``a.b`` is ``result[a][b]``)."""
    out = {}
    for key, (op, limit) in (TARGETS if targets is None else targets).items():
        value = result
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            out[key] = bool(value <= limit if op == "<=" else value >= limit)
    return out


def _ratios(epoch_s: dict, cpu_s: dict, samples_per_epoch: int, raw_sps: float) -> dict:
    """The figures that compare epoch times, or one line saying why they are left out."""
    shortest = min(epoch_s["scratch"], epoch_s["distill"])
    if not shortest >= MIN_EPOCH_S:
        return {"ratios_omitted": f"epochs of {shortest:.2f} s are too short to time (under {MIN_EPOCH_S} s): "
                                  "ratios left out; measure on fashion-mnist"}
    d, d_cpu = epoch_s["distill"], cpu_s["distill"]
    return {
        "cpu_ratios": {**{f"distill_vs_{k}": round(d_cpu / cpu_s[k], 3)
                          for k in ("scratch", "keras_distiller", "tape_loop")},
                       "poll_slowdown": round(cpu_s["distill_polled"] / d_cpu, 3)},
        **{f"distill_vs_{k}": round(d / epoch_s[k], 3) for k in ("scratch", "keras_distiller", "tape_loop")},
        "fit_efficiency": round(samples_per_epoch / d / raw_sps, 3),
        "poll_slowdown": round(epoch_s["distill_polled"] / d, 3),
    }


def run(dataset=None, epochs: int = 3, repeats: int = 3, quick: bool = False) -> dict:
    """Measure everything side by side; return one JSON-ready dict (see the module docstring)."""
    if quick:
        epochs, repeats = 2, 1
    if epochs < 2 or repeats < 1:
        raise ValueError(f"epochs must be >= 2 (the first is tracing) and repeats >= 1 (got {epochs}, {repeats})")
    load_before = os.getloadavg()

    from . import training
    from .tasks.digits import build_student, build_teacher

    retraces = _RetraceCounter()
    logging.getLogger("tensorflow").addHandler(retraces)
    try:
        ds = _dataset(dataset, quick)
        cfg = DistillConfig(epochs=epochs, batch_size=64, student=StudentConfig(units=128),
                            temperature=4.0, alpha=0.9).validate(len(ds.y_train))
        teacher = build_teacher(TeacherConfig())
        times = {k: [] for k in ("scratch", "distill", "distill_polled", "keras_distiller", "tape_loop")}
        logits_s, raw, lags = [], [], []
        rss_method = peak_rss = None
        for _ in range(repeats):
            if rss_method is None:
                rss_method = _peak_rss_reset()
            start = time.perf_counter()
            logits = training.predict_logits(teacher, ds.x_train)  # what teacher_logits does on a cache miss
            logits_s.append(time.perf_counter() - start)
            times["distill"] += _kd_fit(ds, cfg, logits)[0]
            if peak_rss is None:
                peak_rss = _peak_rss_mb()
            times["scratch"] += _kd_fit(ds, cfg)[0]
            times["keras_distiller"] += _keras_distiller(ds, cfg, teacher)
            times["tape_loop"] += _tape_loop(ds, cfg, teacher)
            raw.append(_raw_step(ds, cfg, logits))
            polled, seen = _kd_fit(ds, cfg, logits, poll=True)
            times["distill_polled"] += polled
            lags += seen
        predict = _predict_ms(teacher, build_student(cfg.student, cfg.seed), 10 if quick else PREDICT_CALLS)
    finally:
        logging.getLogger("tensorflow").removeHandler(retraces)
    epoch_s, cpu_s = _epoch_medians(times)
    raw_sps = _median(raw)
    n = len(ds.y_train)
    result = {
        "dataset": ds.name, "train_images": n, "batch_size": cfg.batch_size, "epochs": epochs,
        "repeats": repeats, "quick": quick,
        "epoch_s": {k: round(v, 3) for k, v in epoch_s.items()},
        "epoch_cpu_s": {k: round(v, 3) for k, v in cpu_s.items()},
        **_ratios(epoch_s, cpu_s, n, raw_sps),
        "teacher_logits_s": round(_median(logits_s), 3),
        "raw_step_samples_per_s": round(raw_sps),
        "distill_samples_per_s": round(n / epoch_s["distill"]),
        "live_lag_s": round(max(lags), 3) if lags else float("nan"),
        "live_lag_median_s": round(_median(lags), 3),
        "predict_ms": round(predict, 2),
        "peak_rss_mb": round(peak_rss, 1), "peak_rss_method": rss_method,
        "retracing_warnings": retraces.count,
        "machine": _machine(load_before),
    }
    result["meets_target"] = _verdicts(result)
    return result


# --- what the task benchmarks share ----------------------------------------------------------------
def preset_run(task_name: str, preset, dataset, default: str, repeats: int, **changes):
    """A task's benchmark settings: ``(task, spec, teacher config, distill config with changes, dataset)``.

    ``preset`` is a preset's name or a dict of its shape (tests time tiny shapes); ``dataset`` a loaded
    Dataset or a name (default ``default``); ``changes`` include the timed ``epochs``.
    """
    epochs = changes["epochs"]
    if epochs < 2 or repeats < 1:
        raise ValueError(f"epochs must be >= 2 (the first is tracing) and repeats >= 1 (got {epochs}, {repeats})")
    import dataclasses

    from . import presets
    from .config import from_dict

    task = tasks.get(task_name)
    spec = presets.get(preset) if isinstance(preset, str) else preset
    teacher_cfg = from_dict(task.teacher_config, spec["teacher"]).validate()
    cfg = from_dict(task.distill_class(), spec["distill"], task)
    ds = dataset if isinstance(dataset, Dataset) else task.load(dataset or default)
    return task, spec, teacher_cfg, dataclasses.replace(cfg, **changes).validate(len(ds.y_train)), ds


# --- command line (registered as `python -m kdcore bench` in kdcore.cli) ----------------------------
HELP = ("measure KD Studio's distillation against keras Distiller and a GradientTape loop (one process); "
        "--task lm: the top-k cache against scratch and an online teacher; --task text: TinyBERT's "
        "intermediate epoch, teacher in the step or cached, against scratch")


# The many-viewer load test starts a dashboard and speaks Streamlit's protocol, which the engine never does.
VIEWERS_MOVED = "run .venv/bin/python -m lab.viewers --viewers 1 5 10 20 --json from the repository's root"


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", help="default: fashion-mnist when its files are here, else mnist-5k "
                                          "(--task lm: ptb-small; ptb for the full corpus)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is left out (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each method (default 3)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SUBSET[0]:,} images, 2 epochs, 1 repeat")
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
    out["meets_target"] = {k: (out[k] <= v if op == "<=" else out[k] >= v)
                           for k, (op, v) in EXPORT_TARGETS.items() if k in out}
    out["machine"] = _machine(load_before, versions=False)
    return out


def from_args(args) -> dict:
    if getattr(args, "export", None):
        return exports(args.export)
    if args.viewers:
        raise ValueError(f"bench --viewers has moved out of the engine: {VIEWERS_MOVED}")
    if args.task not in (None, tasks.DEFAULT):  # another task's own benchmark; this module's measures the default's
        return tasks.get(args.task).bench(args.dataset, 2 if args.quick else args.epochs,
                                          1 if args.quick else args.repeats)
    return run(args.dataset, args.epochs, args.repeats, args.quick)


def text(result: dict) -> str:
    if "int8_vs_float_bytes" in result:
        return "\n".join(f"{key}: {result[key]}" for key in result if key != "machine")
    if result.get("task"):
        return tasks.get(result["task"]).bench_text(result)
    if "ratios_omitted" in result:
        ratios = [result["ratios_omitted"]]
    else:
        cpu = result["cpu_ratios"]
        ratios = [f"CPU: distill/scratch {cpu['distill_vs_scratch']}, distill/Distiller "
                  f"{cpu['distill_vs_keras_distiller']}, distill/tape {cpu['distill_vs_tape_loop']}, "
                  f"poll slowdown {cpu['poll_slowdown']}",
                  f"wall: distill/scratch {result['distill_vs_scratch']}, distill/Distiller "
                  f"{result['distill_vs_keras_distiller']}, distill/tape {result['distill_vs_tape_loop']}, "
                  f"poll slowdown {result['poll_slowdown']}, fit efficiency {result['fit_efficiency']}"]
    machine = result["machine"]
    return "\n".join([
        f"{result['dataset']}, {result['train_images']:,} images, batch {result['batch_size']} "
        "(s / epoch, CPU s / epoch):",
        *(f"  {k:<16} {v:6.2f} {result['epoch_cpu_s'][k]:6.2f}" for k, v in result["epoch_s"].items()),
        f"  teacher logits once: {result['teacher_logits_s']} s",
        *ratios,
        f"live lag {result['live_lag_s']} s, predict {result['predict_ms']} ms, peak RSS {result['peak_rss_mb']} MB",
        f"load average {machine['load_before'][0]} before, {machine['load_after'][0]} after "
        f"({machine['cpus']} CPUs)"])
