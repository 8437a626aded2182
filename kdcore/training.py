"""Training: teacher, distilled student and from-scratch baseline, one loop for all three.

The three share one verb, :func:`fit`, and differ only in what they are given:
a teacher and a baseline learn from labels alone (``alpha = 0``), a distilled
student also gets the teacher's logits. Those logits are computed once per
(teacher, dataset) by :func:`teacher_logits`, softened once per run and fed to
Keras ``fit`` next to the labels, so distillation costs barely more per epoch
than training from scratch (the teacher never runs inside the training step).

Progress goes to a :class:`~kdcore.progress.Progress` through a :class:`Loop`
(here driven by a Keras callback; the tasks' hand-written loops drive it
themselves): a loss per batch, the full metrics per epoch, and a stop check
between batches (on epochs of 200 batches or more, every few batches: see
:func:`steps_per_execution`). Every run ends with a status and a reason: ``finished``,
``stopped`` (by the user) or ``failed`` (an error, or a loss that became NaN).
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .config import DistillConfig
from .dataset import Dataset, hide_labels
from .progress import Progress
from .recipes import shape_text
from .results import Status

_LOGITS_CACHE: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
LOGITS_CACHE_ENTRIES = 4  # (teacher, dataset) pairs, 2.4 MB each on 60,000 images: an ensemble of three and one more
_LOGITS_LOCK = threading.Lock()  # the dashboard's jobs run in threads of one process
MAX_STEPS_PER_EXECUTION = 8
MIN_POINTS_PER_EPOCH = 100


# --- device ----------------------------------------------------------------------------------
def pick_device(gpu_names: list[str]) -> str:
    """The TensorFlow device string to train on: the first GPU listed, else the CPU."""
    return "/GPU:0" if gpu_names else "/CPU:0"


def replica_devices(gpu_names: list[str]) -> list[str]:
    """The devices one run is mirrored over: every GPU when TensorFlow lists more than one, else none."""
    return list(gpu_names) if len(gpu_names) > 1 else []


def device_info() -> dict:
    """Which device jobs run on, from TensorFlow's own device listing.

    Keras is imported before TensorFlow, as everywhere else in kdcore: when one
    thread starts ``import tensorflow`` while another starts ``import keras``
    (the sidebar listing devices while a page loads a model), Python's import
    locks see a cycle and both imports break, for the life of the process.
    """
    import keras  # noqa: F401
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    device = pick_device([g.name for g in gpus])
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        label = f"GPU: {details.get('device_name', gpus[0].name)}"
    else:
        label = "CPU (no GPU listed by TensorFlow)"
    return {"device": device, "label": label, "gpus": len(gpus),
            "replicas": replica_devices([d.name for d in tf.config.list_logical_devices("GPU")])}


# --- the training step -----------------------------------------------------------------------
def _trainer_class():
    """Built lazily so that importing kdcore does not import TensorFlow."""
    import keras
    import tensorflow as tf

    from .losses import terms_from_targets  # imports Keras, so only when a model is trained

    class LogitTrainer(keras.Model):
        """Wraps a logits model; one train step = distillation_terms + Adam.

        Data comes as ``(x, labels)`` or ``(x, (labels, soft_targets))``, the
        teacher's side of the soft term prepared once per run (see ``fit``).
        Labels of -1 are "unlabelled" (see kdcore.losses.hard_label_loss).
        """

        def __init__(self, net, temperature=1.0, alpha=0.0, mode="kl"):
            super().__init__()
            self.net, self.temperature, self.alpha, self.mode = net, temperature, alpha, mode
            self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "soft", "hard")}
            self.acc = keras.metrics.Mean(name="accuracy")

        def call(self, x, training=False):
            return self.net(x, training=training)

        @property
        def metrics(self):
            return [*self.trackers.values(), self.acc]

        def _unpack(self, data):
            x, target = data
            labels, targets = target if isinstance(target, tuple) else (target, None)
            return x, labels, targets

        def _accuracy(self, labels, logits):
            labelled_accuracy(self.acc, labels, logits)

        def train_step(self, data):
            x, labels, targets = self._unpack(data)
            # Under MirroredStrategy each replica sees its share of the global batch and the optimizer SUMS the
            # replicas' gradients, so each replica's loss is divided by their number (as Keras's own
            # compute_loss does): the step then equals one device's on the whole batch. One device: / 1.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            with tf.GradientTape() as tape:
                logits = self.net(x, training=True)
                total, soft, hard = terms_from_targets(labels, logits, targets, self.temperature,
                                                       self.alpha if targets is not None else 0.0, self.mode)
                scaled = total / replicas if replicas > 1 else total
            variables = self.net.trainable_variables
            self.optimizer.apply(tape.gradient(scaled, variables), variables)
            for name, value in zip(("loss", "soft", "hard"), (total, soft, hard)):
                self.trackers[name].update_state(value)
            self._accuracy(labels, logits)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, labels, _ = self._unpack(data)
            logits = self.net(x, training=False)
            self._accuracy(labels, logits)
            return {"accuracy": self.acc.result()}

    return LogitTrainer


def labelled_accuracy(tracker, labels, logits) -> None:
    """Add a batch's accuracy over its labelled examples (label ≥ 0) to ``tracker``, weighed by their number."""
    import tensorflow as tf

    y = tf.cast(tf.reshape(labels, (-1,)), "int64")
    hit = tf.cast(tf.equal(tf.argmax(logits, axis=-1), y), "float32")
    mask = tf.cast(y >= 0, "float32")
    tracker.update_state(tf.reduce_sum(hit * mask) / tf.maximum(tf.reduce_sum(mask), 1.0),
                         sample_weight=tf.reduce_sum(mask))


STOPPED_BY_USER = "stopped by user"


class _Ended(Exception):
    """Raised by :meth:`Loop.step` and :meth:`Loop.stop` to leave the ``with loop:`` block: the run has ended."""


class Loop:
    """The bookkeeping every training loop shares, whoever runs the steps: Keras ``fit`` or a loop of our own.

    It owns what every loop must do alike, so that a run ends in the same
    words whichever loop ran it: posting each batch's loss to the
    :class:`~kdcore.progress.Progress`, ending the run as ``failed`` when the
    loss is not finite (with one wording, see :meth:`batch`), ending it as
    ``stopped`` when the user asked, writing each finished epoch's record (and
    only finished ones: an epoch cut short is not recorded), and building the
    :class:`RunResult` with its status, reason, history and time. A hand-written loop reads::

        loop = Loop(progress, "pretrain", epochs, steps, stage="pre-training")
        with loop:  # a NaN or a stop leaves the block at once, from however deep
            for epoch in loop.epochs():
                for b in range(steps):
                    loop.step(b + 1, loss)
                loop.record({"loss": mean})
        return loop.result(model, device=label)

    Keras's callbacks cannot leave ``fit`` by raising, so the progress callback
    calls :meth:`batch`, which answers False when the run has ended, and sets
    ``stop_training`` itself. ``seconds`` counts from the loop's creation.
    """

    def __init__(self, progress: Progress | None, series: str, epochs: int, steps: int, stage: str = ""):
        """``stage`` names a run's earlier stage in the NaN reason ("at intermediate epoch 2 batch 5")."""
        self.progress, self.series, self.n_epochs, self.steps, self.stage = progress, series, epochs, steps, stage
        self.status, self.reason, self.history = Status.FINISHED, "", []
        self.epoch, self.t_start = 0, time.perf_counter()
        self.t0 = self.t_start

    @property
    def ended(self) -> bool:
        return self.status != Status.FINISHED

    def phase(self) -> None:
        """Tell the progress this loop's epochs begin (its series, epochs and batches per epoch)."""
        if self.progress is not None:
            self.progress.phase(self.series, self.n_epochs, self.steps)

    def epochs(self):
        """0, 1, … ``epochs`` − 1, each begun by :meth:`begin`; the phase is posted first."""
        self.phase()
        for epoch in range(self.n_epochs):
            self.begin(epoch)
            yield epoch

    def begin(self, epoch: int) -> None:
        self.epoch, self.t0 = epoch, time.perf_counter()

    def batch(self, step: int, loss: float, points: dict | None = None, first: int | None = None) -> bool:
        """Post batch ``step`` (1-based) and say whether the run goes on: False after a NaN or a stop.

        ``points`` are the curve points to post, by series (default: ``loss``
        on the loop's series); ``first`` is the first batch ``loss`` covers
        when one call stands for several (Keras's ``steps_per_execution``).
        The point is posted even when it is NaN, so the curve shows where the
        run broke; a NaN outranks a stop asked for at the same batch.
        """
        if self.progress is not None:
            for name, value in (points or {self.series: loss}).items():
                self.progress.batch(name, step, float(value))
        if not math.isfinite(loss):
            first = step if first is None else first
            where = f"batch {step}" if first == step else f"batches {first}-{step}"
            epoch = " ".join(filter(None, (self.stage, f"epoch {self.epoch + 1}")))
            self.status, self.reason = Status.FAILED, f"loss became NaN at {epoch} {where}"
        elif self.progress is not None and self.progress.stop_requested:
            self.status, self.reason = Status.STOPPED, STOPPED_BY_USER
        return not self.ended

    def step(self, step: int, loss: float, points: dict | None = None) -> None:
        """:meth:`batch` for a loop of our own: leaves the ``with loop:`` block when the run has ended."""
        if not self.batch(step, loss, points):
            raise _Ended

    def stop(self) -> None:
        """End the run as stopped by the user (a stop seen outside a batch) and leave the ``with loop:`` block."""
        self.status, self.reason = Status.STOPPED, STOPPED_BY_USER
        raise _Ended

    def record(self, fields: dict) -> None:
        """Write the finished epoch's record, ``{"epoch", **fields, "seconds"}``, to the history and the progress.

        Nothing is written once the run has ended: Keras still ends an epoch cut
        short by a stop or a NaN, and it is not a finished epoch.
        """
        if self.ended:
            return
        record = {"epoch": self.epoch + 1, **fields}
        record.setdefault("seconds", time.perf_counter() - self.t0)
        self.history.append(record)
        if self.progress is not None:
            self.progress.epoch(self.series, record)

    def result(self, model, score: float | None = None, device: str = "", **more) -> RunResult:
        """The run as every fit returns it; ``more`` are :class:`RunResult`'s other fields (``replicas``…)."""
        return RunResult(model, self.status, self.reason, self.history, score, time.perf_counter() - self.t_start,
                         device, **more)

    def scored(self, model, metric: str, test, device: str = "", **more) -> RunResult:
        """:meth:`result` with the run's two scores: valid from the last epoch, test taken here, once.

        ``test()`` scores the final model on the test split. It is the only
        place a run reads the test split, after training and every choice in
        it (the curves, a study's pruner) read valid; a run that failed or
        finished no epoch has no final model worth scoring, and is not scored.
        ``metric`` names the records' ``valid_<metric>``.
        """
        usable = self.history and self.status != Status.FAILED
        valid = self.history[-1].get(f"valid_{metric}") if self.history else None
        return self.result(model, test() if usable else None, device, valid_score=valid, **more)

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        return kind is _Ended


def _progress_callback(loop: Loop):
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        """Keras's side of a :class:`Loop`: per-batch loss, NaN watch and stop between batches, per-epoch metrics."""

        def on_epoch_begin(self, epoch, logs=None):
            loop.begin(epoch)

        def on_train_batch_begin(self, batch, logs=None):
            self.first = batch

        def on_train_batch_end(self, batch, logs=None):
            if not loop.batch(batch + 1, float(logs["loss"]), first=self.first + 1):
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            loop.record({"valid_accuracy" if key == "val_accuracy" else key: float(value)
                         for key, value in (logs or {}).items()})

    return ProgressCallback()


@dataclass
class RunResult:
    """What every fit returns: the model, how the run ended and its per-epoch history."""

    model: object
    status: Status = Status.FINISHED
    reason: str = ""
    history: list = field(default_factory=list)
    score: float | None = None  # the task's test metric of the final model: accuracy, or a language model's perplexity
    seconds: float = 0.0
    device: str = ""
    replicas: int = 1  # devices the run was mirrored over (tf.distribute.MirroredStrategy); 1: one device
    replica_batch: int = 0  # examples per replica per step when mirrored (the global batch is the config's)
    stages: dict = field(default_factory=dict)  # earlier stages' histories (FitNets' "hint", TinyBERT's intermediate stage)
    valid_score: float | None = None  # the same metric of the final model on the valid split: what choices read
    recipe: dict = field(default_factory=dict)  # the recipe it trained, resolved (kdcore.recipes); {} when none

    def __post_init__(self):
        self.status = Status(self.status)

    def to_json(self) -> dict:
        """The run without its model, as the run store keeps it (``test_accuracy`` holds ``score``: a JSON key kept)."""
        out = {"status": str(self.status), "reason": self.reason, "test_accuracy": self.score,
               "valid_accuracy": self.valid_score,
               "seconds": round(self.seconds, 2), "device": self.device, "history": self.history}
        if self.replicas > 1:
            out.update(replicas=self.replicas, replica_batch=self.replica_batch)
        return out


def _dataset(x, target, batch_size, seed, shuffle=True):
    """Batches gathered straight from the NumPy arrays, by shuffled index.

    Both choices were measured with ``python -m kdcore bench`` on full
    Fashion-MNIST: shuffling indices and gathering a batch at a time costs one
    op per batch instead of one per image, and gathering inside
    ``tf.numpy_function`` spares TensorFlow a whole copy of the images as a
    tensor of its own (distillation's peak memory fell from 1.67 to 1.30 GB).

    TensorFlow keeps the function a ``tf.numpy_function`` calls alive after the
    pipeline is gone (measured: each run left its arrays behind, 160 MB a time
    in a probe). So the function reaches the arrays only through a weak
    reference, and the returned dataset owns them: they go when it goes.
    """
    import tensorflow as tf

    holder = _Arrays(tf.nest.flatten((x, target)))
    owner = weakref.ref(holder)
    specs = [(tf.as_dtype(a.dtype), (None, *a.shape[1:])) for a in holder.arrays]
    order = tf.data.Dataset.range(len(x))
    if shuffle:
        order = order.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)

    def take(idx):
        return [a[idx] for a in owner().arrays]

    def gather(idx):
        parts = tf.numpy_function(take, [idx], [dtype for dtype, _ in specs], stateful=False)
        for part, (_, shape) in zip(parts, specs):
            part.set_shape(shape)
        return tf.nest.pack_sequence_as((x, target), parts)

    pipeline = order.batch(batch_size).map(gather).prefetch(tf.data.AUTOTUNE)
    pipeline._kdstudio_arrays = holder
    return pipeline


class _Arrays:
    """The arrays a :func:`_dataset` pipeline gathers from, owned by the pipeline (see there)."""

    def __init__(self, arrays: list):
        self.arrays = arrays


def steps_per_execution(steps: int) -> int:
    """Training steps Keras runs per call of its train function: 1 for short epochs, up to 8 for long ones.

    Every call costs Keras about as much Python as a small student's whole
    step, so long epochs run several steps per call. The progress callback
    (curve point, stop check, NaN check) then runs every N batches: N stays
    at most ``MAX_STEPS_PER_EXECUTION`` and an epoch keeps at least
    ``MIN_POINTS_PER_EPOCH`` points; epochs under 200 batches keep N = 1.
    """
    return max(1, min(MAX_STEPS_PER_EXECUTION, steps // MIN_POINTS_PER_EPOCH))


def mirrored(net, devices: list[str]):
    """(strategy, the network to train) for data-parallel training over ``devices``, or (None, ``net``).

    With two devices or more the run goes under ``tf.distribute.MirroredStrategy``
    (the Keras distribution API's TensorFlow backend is a prototype): every
    variable must be made inside its scope, so the network is cloned there with
    the same weights, and :func:`fit` copies the trained weights back into ``net``.
    The global batch stays the config's; each replica gets its share.
    """
    if len(devices) < 2:
        return None, net
    import keras
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        twin = keras.models.clone_model(net)
        twin.set_weights(net.get_weights())
    return strategy, twin


def fit(net, data: Dataset, cfg, *, labels=None, teacher_logits=None, temperature=1.0, alpha=0.0,
        mode="kl", series="model", progress: Progress | None = None, devices: list[str] | None = None) -> RunResult:
    """Train ``net`` (logits out) on ``data``: the one training loop of KD Studio.

    With ``teacher_logits`` and ``alpha > 0`` it distils; otherwise it learns
    from the labels alone. ``labels`` overrides ``data.y_train`` (e.g. with -1
    for hidden labels). The best place to stop it is ``progress.request_stop()``.

    The teacher's logits become their soft targets at T (``losses.soft_targets``)
    once, here, for the whole training set: the step then gathers them with the
    images and never softens the teacher again (the measured effect is in
    docs/benchmarks.md).

    When TensorFlow lists several GPUs (or ``devices`` names several devices)
    the run is data-parallel over them (:func:`mirrored`); with one, nothing changes.
    """
    import keras
    import tensorflow as tf

    from .losses import soft_targets

    labels = data.y_train if labels is None else labels
    info = device_info()
    steps = math.ceil(len(labels) / cfg.batch_size)
    strategy, model = mirrored(net, info["replicas"] if devices is None else list(devices))
    replicas = strategy.num_replicas_in_sync if strategy else 1
    with strategy.scope() if strategy else contextlib.nullcontext():
        trainer = _trainer_class()(model, temperature, alpha, mode)
        trainer.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                        steps_per_execution=steps_per_execution(steps),
                        jit_compile=info["gpus"] > 0)  # XLA is 2-4x slower on CPU
    target = (labels.astype("int64"), np.asarray(soft_targets(teacher_logits, temperature, mode))) if (
        teacher_logits is not None and alpha > 0) else labels.astype("int64")
    train = _dataset(data.x_train, target, cfg.batch_size, cfg.seed)
    valid = _dataset(data.x_valid, data.y_valid, 512, cfg.seed, shuffle=False)
    loop = Loop(progress, series, cfg.epochs, steps)
    loop.phase()
    with contextlib.nullcontext() if strategy else tf.device(info["device"]):
        trainer.fit(train, epochs=cfg.epochs, validation_data=valid, verbose=0, shuffle=False,
                    callbacks=[_progress_callback(loop)])
    label = info["label"]
    if strategy:
        net.set_weights(model.get_weights())
        label = (f"{replicas} devices (MirroredStrategy): batch {cfg.batch_size}, "
                 f"{cfg.batch_size // replicas} per replica")
    return loop.scored(net, "accuracy", lambda: accuracy(net, data.x_test, data.y_test), label, replicas=replicas,
                       replica_batch=cfg.batch_size // replicas if strategy else 0)


# --- baseline and distilled student ------------------------------------------------------------
# A task builds the networks (kdcore.tasks); these train them. The teacher is a plain ``fit`` on labels.
def fit_baseline(cfg: DistillConfig, data: Dataset, net, progress: Progress | None = None) -> RunResult:
    """The student ``net``, built with the distilled student's seed (same initial weights), from labels alone."""
    cfg.validate(len(data.y_train))
    labels = hide_labels(data.y_train, cfg.labels_fraction, cfg.seed)
    return fit(net, data, cfg, labels=labels, series="baseline", progress=progress)


def teacher_logits(teacher, data: Dataset) -> np.ndarray:
    """The teacher's logits on the training set, computed once per (teacher, dataset) in this process.

    The key is what decides the logits, not which Python object holds them: a
    hash of the teacher's architecture and weights (the same .keras file loaded
    again gives the same key) and a hash of the training images. A sweep, an
    experiment's seeds and every new distillation from the same saved teacher
    on the Distill page share one forward pass over the training set. The
    ``LOGITS_CACHE_ENTRIES`` most recently used pairs are kept, read-only.
    Hashing costs about 0.15 CPU seconds on 60,000 images, against about 4 s
    for the forward pass.
    """
    key = (model_fingerprint(teacher), dataset_fingerprint(data))
    with _LOGITS_LOCK:
        if key in _LOGITS_CACHE:
            _LOGITS_CACHE.move_to_end(key)
            return _LOGITS_CACHE[key]
    logits = predict_logits(teacher, data.x_train)  # outside the lock: other jobs' hits need not wait
    logits.flags.writeable = False
    with _LOGITS_LOCK:
        _LOGITS_CACHE[key] = logits
        while len(_LOGITS_CACHE) > LOGITS_CACHE_ENTRIES:
            _LOGITS_CACHE.popitem(last=False)
    return logits


def _digest(*parts) -> str:
    h = hashlib.sha256()  # SHA-NI makes it the fastest of hashlib's on this kind of CPU
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(np.ascontiguousarray(part))
        else:
            h.update(str(part).encode())
    return h.hexdigest()


def model_fingerprint(model) -> str:
    """Hash of a model's architecture and weights: equal for two loads of one file, whatever their ``id()``."""
    return _digest(model.to_json(), *model.get_weights())


def dataset_fingerprint(data: Dataset) -> str:
    """Hash of a dataset's training images and labels (a subset or another dataset gets another key)."""
    return _digest(data.x_train, data.y_train)


def predict_logits(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Logits for many images, in fixed-size batches (no retracing, no Keras predict overhead)."""
    out = [np.asarray(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 10), "float32")


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict_logits(model, x).argmax(-1) == y).mean())


# --- FitNets hint stage --------------------------------------------------------------------------
def hint_regressor(guided_shape, hint_shape, guided: str = "guided", hint: str = "hint"):
    """FitNets' regressor: maps the student's guided layer to the shape of the teacher's hint layer.

    Feature maps get a convolution with "valid" padding whose kernel is
    (N_g − N_h + 1) on each side (Romero et al. 2015, §2.2): a 16×16 guided
    map meets an 8×8 hint through a 9×9 kernel, equal sizes through a 1×1
    one, and the channels change to the hint's. It is linear: the squared
    error already lets it match the hint's ReLU zeros. Vectors get a dense
    layer. A convolution cannot enlarge a map, nor join a map to a vector:
    those pairs are refused in one line naming both shapes.
    """
    import keras

    g, h = tuple(guided_shape), tuple(hint_shape)
    if len(g) == len(h) == 1:
        return keras.layers.Dense(h[0], name="regressor")
    if len(g) == len(h) == 3 and g[0] >= h[0] and g[1] >= h[1]:
        return keras.layers.Conv2D(h[2], (g[0] - h[0] + 1, g[1] - h[1] + 1), padding="valid", name="regressor")
    why = ("a convolution cannot enlarge a feature map" if len(g) == len(h) == 3 else
           "one is a feature map and the other a vector")
    raise ValueError(f"the FitNets regressor cannot map the student's guided layer {guided} "
                     f"({shape_text(g)}) to the teacher's hint layer {hint} ({shape_text(h)}): {why}; "
                     "pick a shallower guided layer or a deeper hint layer")


def hint_pair(student, teacher, layers: tuple[str, str]):
    """(teacher's hint features, student-to-regressor model) for the FitNets stage, or one ``ValueError``.

    ``layers`` (teacher layer, student layer) are the task's choice
    (:meth:`kdcore.tasks.Task.hint_layers`), handed in by the task.
    """
    import keras

    t_name, s_name = layers
    found = {}
    for who, net, name in (("teacher", teacher, t_name), ("student", student, s_name)):
        try:
            found[who] = net.get_layer(name).output
        except ValueError:
            raise ValueError(f"the {who} has no layer {name!r} to pair in the FitNets stage") from None
    t_feat = keras.Model(teacher.input, found["teacher"])
    regress = hint_regressor(found["student"].shape[1:], found["teacher"].shape[1:], s_name, t_name)
    return t_feat, keras.Model(student.input, regress(found["student"]))


def fit_hint(student, teacher, data: Dataset, cfg: DistillConfig, layers: tuple[str, str],
             progress: Progress | None = None, series: str = "hint") -> RunResult:
    """FitNets (Romero et al. 2015), stage 1: teach the student up to its guided layer to predict a teacher layer.

    The guided layer, through :func:`hint_regressor`, regresses the teacher's
    hint layer by :func:`kdcore.losses.hint_loss`; only the student's layers up
    to the guided one train, they keep what they learned, and the regressor
    is thrown away. Stage 2 is the usual distillation (the FitNets recipe: :mod:`kdcore.stages`).
    """
    import keras
    import tensorflow as tf

    from .losses import hint_loss

    t_feat, regressor = hint_pair(student, teacher, layers)

    class HintTrainer(keras.Model):
        def __init__(self):
            super().__init__()
            self.tracker = keras.metrics.Mean(name="loss")

        @property
        def metrics(self):
            return [self.tracker]

        def train_step(self, data):
            x, _ = data
            target = t_feat(x, training=False)
            with tf.GradientTape() as tape:
                loss = hint_loss(target, regressor(x, training=True))
            self.optimizer.apply(tape.gradient(loss, regressor.trainable_variables), regressor.trainable_variables)
            self.tracker.update_state(loss)
            return {"loss": self.tracker.result()}

    info = device_info()
    hint_trainer = HintTrainer()
    hint_trainer.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), jit_compile=False)
    steps = math.ceil(len(data.y_train) / cfg.batch_size)
    loop = Loop(progress, series, cfg.hint_epochs, steps)
    loop.phase()
    with tf.device(info["device"]):
        hint_trainer.fit(_dataset(data.x_train, data.y_train, cfg.batch_size, cfg.seed), epochs=cfg.hint_epochs, shuffle=False,
                         verbose=0, callbacks=[_progress_callback(loop)])
    return loop.result(student, device=info["label"])


__all__ = ["RunResult", "Loop", "STOPPED_BY_USER", "fit", "mirrored", "replica_devices", "fit_baseline", "teacher_logits", "predict_logits", "accuracy",
           "fit_hint", "hint_pair", "hint_regressor", "pick_device", "device_info"]
