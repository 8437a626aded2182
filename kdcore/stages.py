"""Training a recipe (:mod:`kdcore.recipes`): its stages in order, each a sum of weighted terms.

A stage that is exactly one of KD Studio's measured fast paths runs through
it, so a recipe gives the same model as the settings it stands for (same
seed, same batches, same arithmetic):

- soft targets and labels with weights alpha and 1 − alpha, constant: the
  Hinton step of :func:`kdcore.training.fit`, which softens the teacher's
  cached logits once per run and never runs the teacher in the step;
- labels alone: the same, as a baseline trains;
- one FitNets hint term: :func:`kdcore.training.fit_hint`.

Any other stage (attention maps, relations, DKD, DIST, several terms, a
schedule) runs :func:`fit_terms`: one Keras train step in which the student
gives its logits and every named layer's output at once, the teacher (frozen)
gives its named layers for the feature terms, the cached teacher logits come
with the batch for the logits terms, and the weighted sum of the terms is
minimised over the student's weights and any regressor a term added. A
scheduled term's weight and temperature are set before each epoch (the step
is traced again then: a second or so per epoch, for short runs only).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import recipes
from .dataset import Dataset, hide_labels
from .params import LOSS_MODES
from .progress import Progress
from .results import Status
from .training import (Loop, RunResult, _dataset, _progress_callback, accuracy, device_info, fit, fit_hint,
                       hint_regressor, labelled_accuracy, steps_per_execution, teacher_logits)


def layer_shapes(model) -> dict[str, tuple]:
    """Each layer's name → its output's shape without the batch, in the network's order (inputs left out)."""
    import keras

    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            out[layer.name] = tuple(int(d) for d in layer.output.shape[1:])
        except (AttributeError, TypeError, ValueError):  # a layer with several outputs or an unknown size
            continue
    return out


def prepare(recipe: recipes.Recipe, cfg, teacher, student,
            hint_layers: tuple[str, str] | None = None) -> tuple[recipes.Recipe, list[str]]:
    """(the recipe with its symbols filled in for these networks, notes) or one :class:`~kdcore.recipes.RecipeError`."""
    return recipes.fit_to(recipe, cfg, layer_shapes(teacher), layer_shapes(student), hint_layers)


def network_layers(task, cfg, teacher, data) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(teacher's, student's) :func:`layer_shapes`: the student is the one ``cfg`` describes for ``data``, untrained.

    What a recipe editor offers as layers to match (the Distill page caches it).
    """
    return layer_shapes(teacher), layer_shapes(task.student_for(cfg, data))


def _constant(term: recipes.Term) -> bool:
    return term.schedule == "constant" or (
        term.weight_end in (None, term.weight) and term.temperature_end in (None, term.temperature))


def fast_path(stage: recipes.Stage) -> str:
    """Which measured path runs ``stage``: ``hinton``, ``labels``, ``hint`` or ``terms`` (the general step)."""
    terms = stage.terms
    if not all(_constant(t) for t in terms):
        return "terms"
    kinds = sorted((t.kind, t.loss) for t in terms)
    if len(terms) == 1 and terms[0].kind == "labels" and terms[0].weight == 1.0:
        return "labels"
    if len(terms) == 1 and terms[0].loss == "hint" and terms[0].projection == "regressor" and terms[0].weight == 1.0:
        return "hint"
    if len(terms) == 2 and kinds[0][0] == "labels" and kinds[1][0] == "logits" and kinds[1][1] in LOSS_MODES:
        soft, hard = (terms[0], terms[1]) if terms[0].kind == "logits" else (terms[1], terms[0])
        if math.isclose(soft.weight + hard.weight, 1.0, abs_tol=1e-9):
            return "hinton"
    return "terms"


def recipe_of(cfg, hint_layers: tuple[str, str] | None = None) -> recipes.Recipe:
    """The run's recipe: the one it carries (``cfg.recipe``), else the one its settings describe."""
    return recipes.from_dict(cfg.recipe) if cfg.recipe else recipes.from_config(cfg, hint_layers)


def fit_distilled(cfg, teacher, data: Dataset, student, progress: Progress | None = None,
                  logits: np.ndarray | None = None, hint_layers: tuple[str, str] | None = None) -> RunResult:
    """Distil ``student`` from ``teacher`` by the run's recipe (:func:`recipe_of`).

    ``hint_layers`` (teacher layer, student layer) are the task's FitNets pair
    (:meth:`kdcore.tasks.Task.hint_layers`), the ``@hint`` of a recipe.
    """
    cfg.validate(len(data.y_train))
    return fit_recipe(recipe_of(cfg, hint_layers), cfg, teacher, data, student, progress, logits, hint_layers)


def fit_recipe(recipe: recipes.Recipe, cfg, teacher, data: Dataset, student, progress: Progress | None = None,
               logits: np.ndarray | None = None, hint_layers: tuple[str, str] | None = None) -> RunResult:
    """Train ``student`` by ``recipe``'s stages in order; earlier stages' histories go to ``result.stages``.

    The last stage's curves are the run's (series ``student``); a stage that
    stops or fails ends the run with what it recorded.
    """
    recipe, _ = prepare(recipe, cfg, teacher, student, hint_layers)
    record = recipe.to_dict()
    if progress is not None:
        progress.phase("teacher logits")
    if logits is None and any(t.kind == "logits" for s in recipe.stages for t in s.terms):
        logits = teacher_logits(teacher, data)
    labels = hide_labels(data.y_train, cfg.labels_fraction, cfg.seed)
    earlier, seconds = {}, 0.0
    for k, stage in enumerate(recipe.stages):
        last = k == len(recipe.stages) - 1
        result = _run_stage(stage, stage.epochs or cfg.epochs, cfg, teacher, data, student, labels, logits,
                            progress, "student" if last else stage.name)
        seconds += result.seconds
        if not last:
            earlier[stage.name] = result.history
        if last or result.status != Status.FINISHED:
            if not last:
                result.history = []
            result.stages, result.seconds, result.recipe = {**earlier, **result.stages}, seconds, record
            return result
    raise AssertionError("a recipe has at least one stage")  # recipes.from_dict refuses an empty one


def _run_stage(stage, epochs, cfg, teacher, data, student, labels, logits, progress, series) -> RunResult:
    run_cfg = dataclasses.replace(cfg, epochs=epochs, hint_epochs=epochs, recipe=None)
    path = fast_path(stage)
    if path == "hint":
        term = stage.terms[0]
        return fit_hint(student, teacher, data, run_cfg, (term.teacher, term.student), progress, series)
    if path == "labels":
        return fit(student, data, run_cfg, labels=labels, series=series, progress=progress)
    if path == "hinton":
        soft = next(t for t in stage.terms if t.kind == "logits")
        return fit(student, data, run_cfg, labels=labels, teacher_logits=logits, temperature=soft.temperature,
                   alpha=soft.weight, mode=soft.loss, series=series, progress=progress)
    return fit_terms(stage, run_cfg, teacher, data, student, labels, logits, progress, series)


def _term_value(term, teacher_side, student_side, labels, logits, temperature):
    """One term's loss on one batch (each formula lives in :mod:`kdcore.losses`)."""
    from . import losses

    if term.kind == "labels":
        return losses.hard_label_loss(labels, logits)
    if term.kind == "logits":
        return losses.logits_term(term.loss, teacher_side, logits, labels, temperature)
    return losses.feature_term(term.loss, teacher_side, student_side)


def fit_terms(stage: recipes.Stage, cfg, teacher, data: Dataset, student, labels: np.ndarray,
              logits: np.ndarray | None, progress: Progress | None = None, series: str = "student") -> RunResult:
    """The general step: minimise Σ weight · term over the student (and the regressors its terms add).

    One device (the mirrored strategy serves the Hinton path only).
    """
    import keras
    import tensorflow as tf

    terms = stage.terms
    s_names = list(dict.fromkeys(t.student for t in terms if t.kind == "feature"))
    t_names = list(dict.fromkeys(t.teacher for t in terms if t.kind == "feature"))
    s_net = keras.Model(student.input, [student.get_layer(n).output for n in s_names] + [student.output])
    t_net = keras.Model(teacher.input, [teacher.get_layer(n).output for n in t_names]) if t_names else None
    projections = {}
    for i, t in enumerate(terms):
        s_shape = tuple(student.get_layer(t.student).output.shape[1:]) if t.kind == "feature" else ()
        t_shape = tuple(teacher.get_layer(t.teacher).output.shape[1:]) if t.kind == "feature" else ()
        if t.loss in recipes.PROJECTED and (t.projection == "regressor" or s_shape != t_shape):
            projections[i] = hint_regressor(s_shape, t_shape, t.student, t.teacher)
            projections[i].build((None, *s_shape))
    names = [_metric_name(t, i, terms) for i, t in enumerate(terms)]
    values = [t.at(0, cfg.epochs) for t in terms]  # (weight, temperature) of the epoch being trained

    class TermTrainer(keras.Model):
        def __init__(self):
            super().__init__()
            self.regressors = list(projections.values())
            self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", *names)}
            self.acc = keras.metrics.Mean(name="accuracy")

        def call(self, x, training=False):
            return student(x, training=training)

        @property
        def metrics(self):
            return [*self.trackers.values(), self.acc]

        def train_step(self, batch):
            x, (y, t_logits) = batch
            t_feats = _outputs(t_net(x, training=False)) if t_net is not None else []
            variables = student.trainable_variables + [v for r in self.regressors for v in r.trainable_variables]
            with tf.GradientTape() as tape:
                outs = _outputs(s_net(x, training=True))
                s_feats, z = outs[:-1], outs[-1]
                parts = []
                for i, term in enumerate(terms):
                    weight, temperature = values[i]
                    s_side = s_feats[s_names.index(term.student)] if term.kind == "feature" else None
                    if i in projections:
                        s_side = projections[i](s_side)
                    t_side = t_feats[t_names.index(term.teacher)] if term.kind == "feature" else t_logits
                    parts.append(_term_value(term, t_side, s_side, y, z, temperature))
                total = tf.add_n([weight * part for (weight, _), part in zip(values, parts)])
            self.optimizer.apply(tape.gradient(total, variables), variables)
            self.trackers["loss"].update_state(total)
            for n, part in zip(names, parts):
                self.trackers[n].update_state(part)
            labelled_accuracy(self.acc, y, z)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, batch):
            x, y = batch
            labelled_accuracy(self.acc, y, student(x, training=False))
            return {"accuracy": self.acc.result()}

    info = device_info()
    trainer = TermTrainer()
    steps = math.ceil(len(labels) / cfg.batch_size)
    trainer.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), steps_per_execution=steps_per_execution(steps),
                    jit_compile=info["gpus"] > 0)
    t_logits = logits if logits is not None else np.zeros((len(labels), 1), "float32")
    train = _dataset(data.x_train, (labels.astype("int64"), np.asarray(t_logits, "float32")), cfg.batch_size, cfg.seed)
    valid = _dataset(data.x_valid, data.y_valid, 512, cfg.seed, shuffle=False)
    loop = Loop(progress, series, cfg.epochs, steps)
    loop.phase()
    scheduled = not all(_constant(t) for t in terms)

    class Schedule(keras.callbacks.Callback):
        """Each scheduled term's weight and temperature in the epoch's record (before the progress records it)."""

        def on_epoch_end(self, epoch, logs=None):
            if scheduled and logs is not None:
                for n, (weight, temperature), term in zip(names, values, terms):
                    logs[f"{n}_weight"] = weight
                    if term.kind == "logits":
                        logs[f"{n}_temperature"] = temperature

    callbacks = [Schedule(), _progress_callback(loop)]
    with tf.device(info["device"]):
        for epoch in range(cfg.epochs) if scheduled else [None]:
            if epoch is not None:
                values[:] = [t.at(epoch, cfg.epochs) for t in terms]
                trainer.train_function = None  # traced again with this epoch's weights and temperatures
            first, last = (0, cfg.epochs) if epoch is None else (epoch, epoch + 1)
            trainer.fit(train, initial_epoch=first, epochs=last, validation_data=valid, verbose=0, shuffle=False,
                        callbacks=callbacks)
            if loop.ended:
                break
    return loop.scored(student, "accuracy", lambda: accuracy(student, data.x_test, data.y_test), info["label"])


def _outputs(out) -> list:
    """A functional model's outputs as a list (Keras returns a lone output as a tensor)."""
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _metric_name(term, i: int, terms) -> str:
    """A record's column for the term: its loss, with the student layer for feature terms, numbered if repeated."""
    same = [j for j, t in enumerate(terms) if t.label == term.label]
    return term.label if len(same) == 1 else f"{term.label}_{same.index(i) + 1}"
