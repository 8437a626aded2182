"""``python -m kdcore bench`` (digits): how fast is KD Studio's distillation, next to the usual ways?

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

The timing machinery (clocks, the poller, peak memory, the machine's facts) is
:mod:`kdcore.bench`'s, shared with the other tasks' benchmarks; this module is
what only the digits measure. The dashboard's start-up is measured apart, by
``lab/first_paint.py``: the engine never starts a server or a browser.
"""
from __future__ import annotations

import logging
import os
import statistics
import time

import numpy as np

from ... import bench as shared
from ...config import DistillConfig
from ...dataset import Dataset
from .data import available, load
from .model import build_student, build_teacher
from .pictures import preprocess, sample_canvas
from .settings import StudentConfig, TeacherConfig

PREDICT_CALLS = 50
QUICK_SUBSET = (2000, 500)  # train, test images in --quick mode
MIN_EPOCH_S = 0.5  # shorter epochs are too short to time: their ratios would be noise (mnist-5k: 0.16 s)
TARGETS = {  # docs/benchmarks.md: measured on the 2-core development machine, never asserted by tests
    "cpu_ratios.distill_vs_scratch": ("<=", 1.05), "distill_vs_keras_distiller": ("<=", 0.60),
    "fit_efficiency": (">=", 0.80), "live_lag_s": ("<=", 1.0), "poll_slowdown": ("<=", 1.10),
    "predict_ms": ("<=", 150.0), "peak_rss_mb": ("<=", 1600.0),
}


# --- the contenders ------------------------------------------------------------------------------
def _kd_fit(ds, cfg, logits=None, poll=False) -> tuple[list, list[float]]:
    """((wall, CPU) seconds per epoch, poll lags) of kdcore.training.fit, distilling when ``logits`` is given."""
    from ...training import fit

    clock = shared._Clock()
    poller = shared._Poller(clock) if poll else None
    if poller:
        poller.start()
    soft = dict(teacher_logits=logits, temperature=cfg.temperature, alpha=cfg.alpha) if logits is not None else {}
    result = fit(build_student(cfg.student, cfg.seed), ds, cfg, progress=clock, series="student", **soft)
    if poller:
        poller.done.set()
        poller.join()
    return shared._timed(result, clock), poller.lags if poller else []


def _epoch_timer():
    """A Keras callback timing each epoch up to its evaluation; no per-batch hook, so Keras stays asynchronous."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.train_s, self._start = [], shared._now()

        def on_epoch_begin(self, epoch, logs=None):
            self._start = shared._now()

        def on_test_begin(self, logs=None):
            self.train_s.append(shared._since(self._start))

    return EpochTimer()


def _keras_distiller(ds, cfg, teacher) -> list:
    import keras


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
                  validation_data=(ds.x_valid, ds.y_valid), callbacks=[timer])
    return timer.train_s[1:]


def _tape_loop(ds, cfg, teacher) -> list:
    """The seed tutorial's loop: tf.data from tensor slices, the teacher forward inside every step."""
    import keras
    import tensorflow as tf

    from ...losses import distillation_terms

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
        start = shared._now()
        for x, y in batches:
            loss = step(x, y)
        float(loss)
        times.append(shared._since(start))
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

    from ...losses import soft_targets
    from ...training import _trainer_class, steps_per_execution

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


def _predict_ms(teacher, student, calls: int) -> float:
    """Median latency of one drawing → preprocess → teacher and student logits, after a warm-up."""
    from ...inference import predict_one

    canvas = sample_canvas()

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
        fashion = next(row for row in available() if row["name"] == "fashion-mnist")
        name = "fashion-mnist" if fashion["available"] and not quick else "mnist-5k"
    ds = load(name)
    return ds.subset(*QUICK_SUBSET, seed=0) if quick else ds


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
    """Measure everything side by side; return one JSON-ready dict (see the module docstring).

    ``quick`` times a slice of ``QUICK_SUBSET`` images (of mnist-5k unless ``dataset`` says otherwise).
    """
    shared._check_counts(epochs, repeats)
    load_before = os.getloadavg()

    from ... import training

    retraces = shared._RetraceCounter()
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
                rss_method = shared._peak_rss_reset()
            start = time.perf_counter()
            logits = training.predict_logits(teacher, ds.x_train)  # what teacher_logits does on a cache miss
            logits_s.append(time.perf_counter() - start)
            times["distill"] += _kd_fit(ds, cfg, logits)[0]
            if peak_rss is None:
                peak_rss = shared._peak_rss_mb()
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
    epoch_s, cpu_s = shared._epoch_medians(times)
    raw_sps = shared._median(raw)
    n = len(ds.y_train)
    result = {
        "dataset": ds.name, "train_images": n, "batch_size": cfg.batch_size, "epochs": epochs,
        "repeats": repeats, "quick": quick,
        **shared._epoch_fields(epoch_s, cpu_s),
        **_ratios(epoch_s, cpu_s, n, raw_sps),
        "teacher_logits_s": round(shared._median(logits_s), 3),
        "raw_step_samples_per_s": round(raw_sps),
        "distill_samples_per_s": round(n / epoch_s["distill"]),
        "live_lag_s": round(max(lags), 3) if lags else float("nan"),
        "live_lag_median_s": round(shared._median(lags), 3),
        "predict_ms": round(predict, 2),
        "peak_rss_mb": round(peak_rss, 1), "peak_rss_method": rss_method,
        "retracing_warnings": retraces.count,
        "machine": shared._machine(load_before),
    }
    result["meets_target"] = shared._verdicts(result, TARGETS)
    return result


def text(result: dict) -> str:
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
    return "\n".join([
        f"{result['dataset']}, {result['train_images']:,} images, batch {result['batch_size']} "
        "(s / epoch, CPU s / epoch):",
        *(f"  {k:<16} {v:6.2f} {result['epoch_cpu_s'][k]:6.2f}" for k, v in result["epoch_s"].items()),
        f"  teacher logits once: {result['teacher_logits_s']} s",
        *ratios,
        f"live lag {result['live_lag_s']} s, predict {result['predict_ms']} ms, peak RSS {result['peak_rss_mb']} MB",
        shared._load_line(result["machine"])])
