"""Deployment: a saved model as a LiteRT (``.tflite``) file, measured the way it will run.

People distil to ship something small and fast, so an export is judged by
four figures taken from the exported file itself, run by the LiteRT
interpreter (``ai-edge-litert``): its size, its test accuracy next to the float
model's, and its latency at batch 1 on 1 and on 2 threads, next to the
latency of the ``.keras`` model called the way the Draw page calls it.

Conversion is Keras's own ``model.export(format="litert")``; every converter
setting it lacks a parameter for is passed through it as a keyword (Keras
sets them on ``tf.lite.TFLiteConverter``), so there is one conversion path:

* ``none``: float32 weights and arithmetic;
* ``float16``: weights stored as float16, computed in float32;
* ``int8``: full-integer post-training quantization (weights, activations,
  input and output are int8), calibrated on images drawn from the model's
  training split. Quantization-aware training is not available: TensorFlow
  Model Optimization does not support Keras 3.

Keras asks for LiteRT's built-in ops *and* TensorFlow ("Flex") ops by
default; a Flex op makes a file the plain interpreter cannot run. Here the
op set is built-ins only (``TFLITE_BUILTINS``, or ``TFLITE_BUILTINS_INT8``
for int8), so such a model is refused with one line naming the ops.

Nothing here is digit-specific: the input shape and dtype are read from the
model, calibration and test data come from the dataset its sidecar names (or
``--dataset``), and the file is scored by its task (``Task.score_export``: the
argmax accuracy of its outputs for a classifier, perplexity for a language
model, whose free time axis ``Task.export_window`` fixes). Shapes
are fixed at batch 1, the way a deployed model is called: with a free batch
dimension a Keras LSTM needs TensorFlow's TensorList ops, at batch 1 it
converts to built-ins. Its int8 calibration, though, crashes TensorFlow
2.21's calibrator (a segmentation fault) unless the LSTM is unrolled, so a
looped recurrent layer is refused for int8 in one line before converting.

How latency is taken: the median and 90th percentile of :data:`CALLS`
timed calls after :data:`WARMUP` untimed ones, at batch 1 with a zero input
(a dense or convolutional layer costs the same whatever the values). For the
interpreter only ``invoke()`` is timed. TensorFlow sizes its thread pools
once per process, so the Keras figures come from a short child process per
thread count (``python -m kdcore.export keras-latency``), each with its
intra- and inter-op pools set to that count; they are measured once per
source file and reused by its later exports.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import storage, tasks
from .metric import ACCURACY, Metric

FORMATS = ("litert",)
QUANTIZE = ("none", "float16", "int8")
SUFFIX = ".tflite"
KIND = "export"  # the sidecar's "kind": marks a file KD Studio wrote, which a new export may replace
THREADS = (1, 2)
WARMUP, CALLS = 30, 300
CALIBRATION_IMAGES = 200
EVAL_BATCH = 256
ROOT = Path(__file__).resolve().parents[1]


class ExportError(ValueError):
    """A model that cannot be exported or measured, in one readable sentence."""


def _check_choice(name: str, value: str, allowed: tuple) -> None:
    if value not in allowed:
        raise ExportError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")


# --- where the file goes -------------------------------------------------------------------------
def default_path(model_path: str | Path, quantize: str) -> Path:
    """``<model>-<quantize>.tflite`` next to the ``.keras`` file."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}-{quantize}{SUFFIX}")


def _ours(path: Path) -> bool:
    return storage.read_sidecar(path).get("kind") == KIND


def _check_writable(out: Path) -> None:
    """Refuse before the slow work: a folder we cannot write to, or a file KD Studio did not write."""
    folder = out.parent
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    if not blocker.is_dir():
        raise ExportError(f"cannot write the export to {folder}: {blocker} is a file, not a folder; "
                          "choose another --out")
    try:  # a real probe: os.access says yes to root even where writing then fails
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".kdstudio-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ExportError(f"cannot write the export to {folder}: {exc.strerror or exc}; choose another --out") from exc
    for path in (out, storage.sidecar_path(out)):
        if path.exists() and (path.is_dir() or not _ours(out)):
            raise ExportError(f"{path} already exists and KD Studio did not write it; choose another --out")


# --- which data ------------------------------------------------------------------------------------
def _dataset(meta: dict, name: str | None, quantize: str):
    """The dataset for calibration and testing: ``name``, else the one the model's sidecar names.

    int8 cannot go without one (its calibration needs training images); the
    float formats can, and then report no accuracy.
    """
    name = name or meta.get("dataset")
    if not name:
        if quantize == "int8":
            raise ExportError("int8 needs training images to calibrate on, and the model's sidecar names no "
                              "dataset; pass --dataset")
        return None
    try:
        return tasks.get(meta.get("task")).load(name)
    except ValueError as exc:
        if quantize == "int8":
            raise ExportError(f"int8 needs training images to calibrate on, but dataset {name!r} cannot be "
                              f"loaded ({exc}); pass --dataset") from exc
        raise


def _input_shape(model, steps: int | None = None) -> tuple:
    """The first input's shape without the batch; a free time axis (a language model's words) is fixed at ``steps``."""
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape and steps:
        shape = tuple(steps if s is None else s for s in shape)
    if None in shape:
        raise ExportError(f"the model takes inputs of variable shape {shape}; LiteRT export needs fixed shapes")
    return shape


def _signature(model, steps: int | None = None) -> list:
    """Keras's ``input_signature`` at batch 1: the first input as :func:`_input_shape`, the rest (an LSTM's state) as
    they are."""
    import tensorflow as tf

    specs = [tf.TensorSpec((1, *_input_shape(model, steps)), model.inputs[0].dtype, name=model.inputs[0].name)]
    for extra in model.inputs[1:]:
        if None in tuple(extra.shape[1:]):
            raise ExportError(f"the model's input {extra.name} has variable shape {tuple(extra.shape[1:])}; "
                              "LiteRT export needs fixed shapes")
        specs.append(tf.TensorSpec((1, *extra.shape[1:]), extra.dtype, name=extra.name))
    return specs if len(specs) == 1 else [specs]  # several inputs are one argument: the list the model takes


def _check_fits(ds, shape: tuple) -> None:
    if tuple(ds.x_train.shape[1:]) != shape:
        raise ExportError(f"dataset {ds.name} gives inputs of shape {tuple(ds.x_train.shape[1:])} but the model "
                          f"takes {shape}; pass the --dataset it was trained on")


def _calibration(ds, seed: int = 0):
    """A representative dataset for int8: :data:`CALIBRATION_IMAGES` training inputs, one per batch."""
    picks = np.random.default_rng(seed).permutation(len(ds.x_train))[:CALIBRATION_IMAGES]

    def representative():
        for i in picks:
            yield [ds.x_train[i:i + 1]]
    return representative


# --- conversion --------------------------------------------------------------------------------------
def _converter_options(quantize: str, calibration=None) -> dict:
    """Keyword arguments ``model.export(format="litert")`` passes on to TFLiteConverter."""
    import tensorflow as tf

    builtins = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    if quantize == "none":
        return {"target_spec": builtins}
    if quantize == "float16":
        return {"optimizations": [tf.lite.Optimize.DEFAULT],
                "target_spec": dict(builtins, supported_types=[tf.float16])}
    return {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": calibration,
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
            "inference_input_type": tf.int8, "inference_output_type": tf.int8}


def _why(exc: Exception, name: str) -> str:
    """The converter's pages of MLIR, reduced to the ops LiteRT lacks (or the first line)."""
    ops = sorted({e.operator.name for e in getattr(exc, "errors", []) or [] if e.operator.name})
    if ops:
        return (f"{name} cannot be exported with LiteRT's built-in ops: it needs {', '.join(ops)}, "
                "which only TensorFlow (Flex) kernels provide")
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return f"{name} could not be converted to LiteRT ({first[:160]})"


def _int8_blocker(model) -> str | None:
    """The reason int8 would crash the converter (see the module docstring), or None."""
    import keras

    looped = [layer.name for layer in model._flatten_layers(include_self=False)
              if isinstance(layer, keras.layers.RNN) and not layer.unroll]
    if looped:
        return (f"int8 cannot quantize the recurrent layer {looped[0]} of {model.name}: TensorFlow 2.21's "
                "calibrator crashes on a looped one; build it with unroll=True, or export float16 or none")
    return None


def convert(model, out: str | Path, quantize: str, calibration=None, steps: int | None = None) -> Path:
    """Write ``model`` as a LiteRT file at ``out`` (atomically); refuse in one line what LiteRT cannot run.

    ``steps`` fixes a free time axis (a language model's window of words).
    """
    _check_choice("quantize", quantize, QUANTIZE)
    signature = _signature(model, steps)
    blocker = _int8_blocker(model) if quantize == "int8" else None
    if blocker:
        raise ExportError(blocker)
    options = _converter_options(quantize, calibration)
    out = Path(out)

    def write(tmp: str) -> None:
        try:
            model.export(tmp, format="litert", verbose=False, input_signature=signature, **options)
        except OSError:
            raise
        except Exception as exc:  # the converter raises its own ConverterError (not a ValueError)
            raise ExportError(_why(exc, getattr(model, "name", "the model"))) from exc

    try:
        storage._atomic_write(out, write)
    except OSError as exc:
        raise ExportError(f"cannot write the export to {out.parent}: {exc.strerror or exc}") from exc
    return out


# --- running the exported file ----------------------------------------------------------------------
def _interpreter(path: str | Path, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:  # pragma: no cover - requirements install it
        raise ExportError("running LiteRT files needs ai-edge-litert: pip install -r requirements.txt") from exc
    try:
        return Interpreter(model_path=str(path), num_threads=threads)
    except ValueError as exc:
        raise ExportError(f"{Path(path).name} is not a LiteRT model the interpreter can load") from exc


class Exported:
    """An exported file as a task scores it (:meth:`Task.score_export <kdcore.tasks.base.Task.score_export>`)."""

    def __init__(self, path: str | Path, threads: int = 2):
        self.path, self.threads = Path(path), threads

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """The file's (dequantized) outputs for inputs ``x``: see :func:`outputs`."""
        return outputs(self.path, x, self.threads)

    def runner(self):
        """The interpreter's signature runner: inputs and outputs by name (an LSTM's state is several)."""
        return _interpreter(self.path, self.threads).get_signature_runner()


def _ready(path: str | Path, threads: int, batch: int):
    """An interpreter with tensors allocated for ``batch`` inputs (a file with a fixed batch keeps its own)."""
    it = _interpreter(path, threads)
    inp = it.get_input_details()[0]
    if inp["shape_signature"][0] == -1:
        it.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    it.allocate_tensors()
    return it, it.get_input_details()[0], it.get_output_details()[0]


def _quantized(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float inputs as the tensor wants them: scaled and rounded for an integer tensor, cast otherwise."""
    dtype = np.dtype(detail["dtype"])
    scale, zero = detail["quantization"]
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantized(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    if np.issubdtype(np.dtype(detail["dtype"]), np.integer) and scale:
        return (y.astype("float32") - zero) * scale
    return y.astype("float32")


def outputs(path: str | Path, x: np.ndarray, threads: int = 2, batch: int = EVAL_BATCH) -> np.ndarray:
    """The exported model's (dequantized) outputs for inputs ``x``, in batches of ``batch``.

    The last batch is padded to full size, so the interpreter allocates its
    tensors once; a file with a fixed batch size is fed that size.
    """
    it, inp, out = _ready(path, threads, batch)
    batch = int(inp["shape"][0])
    results = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        it.set_tensor(inp["index"], _quantized(padded, inp))
        it.invoke()
        results.append(_dequantized(it.get_tensor(out["index"]), out)[:len(chunk)])
    return np.concatenate(results) if results else np.zeros((0,), "float32")


def _spread(seconds: list[float]) -> dict:
    ms = 1000 * np.asarray(seconds)
    return {"median": float(np.median(ms)), "p90": float(np.percentile(ms, 90))}


def _timed(call, warmup: int = WARMUP, calls: int = CALLS) -> dict:
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return _spread(seconds)


def litert_latency(path: str | Path, threads: int) -> dict:
    """Median and p90 milliseconds of one ``invoke()`` at batch 1 on ``threads`` threads."""
    it, _, _ = _ready(path, threads, 1)
    for detail in it.get_input_details():  # every input, a language model's state too
        it.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    return _timed(it.invoke)


def _keras_latency_here(model_path: str, threads: int) -> dict:
    """In a fresh process: TensorFlow's pools set to ``threads``, then an eager batch-1 call timed."""
    import keras  # noqa: F401 - keras before tensorflow, as everywhere in kdcore
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    meta = storage.read_sidecar(model_path)
    model = storage.load_model(model_path, tasks.get(meta.get("task")))
    window = tasks.get(meta.get("task")).export_window(meta.get("config") or {})
    x = [np.zeros((1, *_input_shape(model, window)), model.inputs[0].dtype)]
    x += [np.zeros((1, *extra.shape[1:]), extra.dtype) for extra in model.inputs[1:]]
    x = x if len(x) > 1 else x[0]
    return _timed(lambda: np.asarray(model(x, training=False)[0] if len(model.outputs) > 1
                                     else model(x, training=False)))


def keras_latency(model_path: str | Path, threads: int) -> dict:
    """:func:`_keras_latency_here` in a child process (see the module docstring for why)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "kdcore.export", "keras-latency", str(model_path), str(threads)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise ExportError(f"timing the Keras model on {threads} thread(s) failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _source_stamp(model_path: Path) -> dict:
    stat = model_path.stat()
    return {"source_model": str(model_path), "source_bytes": stat.st_size, "source_mtime": stat.st_mtime}


def _known_keras_latency(stamp: dict) -> dict | None:
    """Keras figures an earlier export of the very same file already measured."""
    folder = Path(stamp["source_model"]).parent
    for meta in list_exports(folder):
        if all(meta.get(k) == v for k, v in stamp.items()) and meta.get("keras_latency_ms"):
            return meta["keras_latency_ms"]
    return None


# --- the whole export -------------------------------------------------------------------------------
def export(model_path: str | Path, quantize: str = "int8", out: str | Path | None = None,
           dataset: str | None = None, fmt: str = "litert", time_keras: bool = True) -> dict:
    """Export a saved model, measure the file, and write its sidecar; returns the sidecar's contents.

    ``time_keras=False`` skips the Keras latency (reported as ``None``) unless
    an earlier export of the same file measured it.
    """
    _check_choice("format", fmt, FORMATS)
    _check_choice("quantize", quantize, QUANTIZE)
    model_path = Path(model_path)
    out = Path(out) if out else default_path(model_path, quantize)
    if out.suffix != SUFFIX:
        out = out.with_name(out.name + SUFFIX)
    _check_writable(out)
    meta = storage.read_sidecar(model_path)
    task = tasks.get(meta.get("task"))
    model = storage.load_model(model_path, task)  # one line for a file that is not a model, or custom code
    window = task.export_window(meta.get("config") or {})
    blocker = _int8_blocker(model) if quantize == "int8" else None
    if blocker:  # before loading data to calibrate on
        raise ExportError(blocker)
    ds = _dataset(meta, dataset, quantize)
    shape = _input_shape(model, window)
    if ds is not None and window is None:  # fixed-shape inputs, converted as the model takes them (grey, colour)
        ds = task.fit_data(model, ds)[0]
        _check_fits(ds, shape)
    calibration = _calibration(ds) if quantize == "int8" else None

    with tempfile.TemporaryDirectory(prefix="kdstudio-export-") as tmp:
        staged = convert(model, Path(tmp) / out.name, quantize, calibration, window)
        scored = (task.score_export(model, Exported(staged), ds, window) if ds is not None else
                  {"accuracy": None, "float_accuracy": None, "accuracy_change": None, "test_images": None,
                    "test_examples": None})
        figures = {"bytes": staged.stat().st_size, **scored}
        figures["latency_ms"] = {f"threads_{n}": litert_latency(staged, n) for n in THREADS}
        stamp = _source_stamp(model_path)
        known = _known_keras_latency(stamp)
        figures["keras_latency_ms"] = known or ({f"threads_{n}": keras_latency(model_path, n) for n in THREADS}
                                                if time_keras else None)
        storage._atomic_write(out, lambda dest: Path(dest).write_bytes(staged.read_bytes()))

    import keras

    record = {"kind": KIND, "task": task.name, "format": fmt, "quantize": quantize, "path": str(out), **stamp,
              "file_bytes": figures["bytes"],  # with "path": what storage.read_sidecar takes as a KD Studio sidecar
              "source_name": model_path.stem, "source_kind": meta.get("kind"),
              "dataset": ds.name if ds is not None else None, **figures,
              "calibration": {"dataset": ds.name, "images": CALIBRATION_IMAGES} if calibration else None,
              "input_shape": list(shape), "timing": f"batch 1, median and p90 of {CALLS} calls after {WARMUP}",
              "load": [round(v, 2) for v in os.getloadavg()], "created": time.time(),
              "versions": {"keras": keras.__version__, "litert": _litert_version()}}
    try:
        storage.write_json(storage.sidecar_path(out), record)
    except OSError as exc:
        raise ExportError(f"cannot write the export's sidecar next to {out}: {exc.strerror or exc}") from exc
    return record


def _litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def list_exports(folder: str | Path | None = None) -> list[dict]:
    """The exports KD Studio wrote in ``folder`` (default: the models folder), newest first."""
    folder = Path(folder) if folder else storage.models_dir()
    rows = []
    for path in folder.glob("*" + SUFFIX):
        meta = storage.read_sidecar(path)
        if meta.get("kind") == KIND and not path.name.startswith("."):
            rows.append(dict(meta, path=str(path), name=path.name))
    return sorted(rows, key=lambda m: m.get("created", 0), reverse=True)


# --- what the Deploy screen shows -------------------------------------------------------------------
def catalogue(dataset: str | None = None, metric: str = "accuracy") -> list[dict]:
    """Every saved model and export as a point: size, ``score`` (the task's metric), latency (1 thread, median ms).

    A ``.keras`` model's latency is the Keras call, known once any of its
    exports has been made; ``dataset`` keeps only what was measured on it.
    ``metric`` is the task's (``accuracy``, or ``perplexity`` for language models).
    """
    exports = list_exports()
    points = []
    for meta in storage.list_models():
        timed = next((e["keras_latency_ms"] for e in exports
                      if e.get("source_model") == meta["path"] and e.get("keras_latency_ms")), None)
        points.append({"label": f"{meta['name']}.keras", "kind": meta.get("kind") or "model", "format": "keras",
                       "path": meta["path"], "bytes": meta.get("file_bytes") or Path(meta["path"]).stat().st_size,
                       "score": meta.get(f"test_{metric}"), "dataset": meta.get("dataset"),
                       "latency_ms": timed["threads_1"]["median"] if timed else None,
                       "source_model": meta["path"], "teacher": meta.get("teacher")})
    for meta in exports:
        points.append({"label": meta["name"], "kind": meta.get("source_kind") or "model",
                       "format": meta["quantize"], "path": meta["path"], "bytes": meta["bytes"],
                       "score": meta.get(metric), "dataset": meta.get("dataset"),
                       "latency_ms": meta["latency_ms"]["threads_1"]["median"],
                       "source_model": meta.get("source_model"), "teacher": None})
    if dataset:
        points = [p for p in points if p["dataset"] == dataset]
    return points


def pareto(points: list[dict], higher_is_better: bool = True) -> list[dict]:
    """The points no other point beats on both size and score, smallest first.

    Scores closer than ``1e-6`` count as equal: a sidecar's float32 0.97600001
    is the same 976 of 1,000 test images as an export's 0.976. A lower score
    is better for perplexity (``higher_is_better=False``).
    """
    sign = 1.0 if higher_is_better else -1.0
    front, best = [], -float("inf")
    for p in sorted((p for p in points if p.get("score") is not None), key=lambda p: (p["bytes"], -sign * p["score"])):
        if sign * p["score"] > best + 1e-6:
            front.append(p)
            best = sign * p["score"]
    return front


def verdict(points: list[dict], metric: Metric = ACCURACY) -> str | None:
    """ "The int8 distilled student is N× smaller and M× faster than the teacher and X points less accurate."

    The newest int8 export of a student against the student's own teacher
    (else the newest teacher), both measured on the same dataset. None when
    there is no such pair; the clause that needs the teacher's latency is
    left out until an export of the teacher has timed it.
    """
    student = next((p for p in points if p["format"] == "int8" and p["kind"] == "student"
                    and p["score"] is not None), None)
    if student is None:
        return None
    teachers = [p for p in points if p["format"] == "keras" and p["kind"] == "teacher"]
    source = next((p for p in points if p["format"] == "keras" and p["path"] == student["source_model"]), {})
    teacher = next((t for t in teachers if t["path"] == source.get("teacher")), teachers[0] if teachers else None)
    if teacher is None or teacher.get("score") is None:
        return None
    smaller = teacher["bytes"] / student["bytes"]
    if metric.percent:
        points_lost = 100 * metric.gain(teacher["score"], student["score"])
        accuracy_text = (f"{points_lost:.1f} points less accurate" if points_lost >= 0.05 else
                         f"{-points_lost:.1f} points more accurate" if points_lost <= -0.05 else "as accurate")
    else:
        accuracy_text = (f"its {metric.name} is {metric.format(student['score'])} against the teacher's "
                         f"{metric.format(teacher['score'])}")
    if teacher["latency_ms"]:
        faster = teacher["latency_ms"] / student["latency_ms"]
        return (f"The int8 distilled student is {smaller:,.0f}× smaller and {faster:,.0f}× faster than the "
                f"teacher ({teacher['label']}, run by Keras) and {accuracy_text}.")
    return (f"The int8 distilled student is {smaller:,.0f}× smaller than the teacher ({teacher['label']}) and "
            f"{accuracy_text}; export the teacher once to time it too.")


# --- command line (registered as `python -m kdcore export` in kdcore.cli) ----------------------------
HELP = "export a saved model to LiteRT (none, float16 or int8) and measure size, accuracy and latency"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a saved .keras model")
    parser.add_argument("--format", default="litert", choices=FORMATS, help="litert (a .tflite file)")
    parser.add_argument("--quantize", default="int8", choices=QUANTIZE,
                        help="none (float32), float16 weights, or int8 throughout (default int8)")
    parser.add_argument("--out", help="the .tflite file to write (default: <model>-<quantize>.tflite beside it)")
    parser.add_argument("--dataset", help="calibration and test data (default: the one the model was trained on)")


def from_args(args) -> dict:
    return export(args.model, args.quantize, args.out, args.dataset, args.format)


def duration(ms: float | None) -> str:
    """Milliseconds as people read them: µs below a millisecond."""
    if ms is None:
        return "n/a"
    return f"{1000 * ms:.1f} µs" if ms < 1 else f"{ms:.2f} ms"


def text(result: dict) -> str:
    lines = [f"{result['source_name']} -> {result['path']} ({result['quantize']}, {result['bytes'] / 1024:,.1f} KB)"]
    scored = tasks.get(result.get("task")).export_text(result)
    if scored:
        lines.append(scored)
    for key, name in (("latency_ms", "LiteRT"), ("keras_latency_ms", "Keras")):
        if result.get(key):
            lines.append(f"{name} at batch 1: " + ", ".join(
                f"{n} thread{'s' * (n > 1)} median {duration(result[key][f'threads_{n}']['median'])} "
                f"(p90 {duration(result[key][f'threads_{n}']['p90'])})" for n in THREADS))
    return "\n".join(lines)


if __name__ == "__main__":  # the child process of keras_latency: python -m kdcore.export keras-latency PATH N
    if len(sys.argv) != 4 or sys.argv[1] != "keras-latency":
        raise SystemExit("usage: python -m kdcore.export keras-latency MODEL THREADS")
    print(json.dumps(_keras_latency_here(sys.argv[2], int(sys.argv[3]))))
