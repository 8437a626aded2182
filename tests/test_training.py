"""Training: real tiny runs of the teacher, the distilled student, its baseline twin and the FitNets stage."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from kdcore.tasks.digits import DIGITS

from kdcore import storage, training
from kdcore.tasks import digits as models
from kdcore.config import DistillConfig
from kdcore.tasks.digits import StudentConfig

EPOCH_KEYS = {"epoch", "seconds", "loss", "soft", "hard", "accuracy", "valid_accuracy"}


@pytest.fixture(scope="module")
def teacher(teacher_file):
    return storage.load_model(teacher_file)


def small(**overrides) -> DistillConfig:
    cfg = dict(student=StudentConfig(units=32), epochs=2, batch_size=64, seed=3)
    return DistillConfig(**{**cfg, **overrides})


def test_a_batch_pipeline_lets_go_of_its_arrays_when_it_goes():
    """TensorFlow keeps a tf.numpy_function's Python function alive: the arrays must not hang on it."""
    x, y = np.arange(300, dtype="float32").reshape(100, 3), np.arange(100)
    alive = weakref.ref(x)
    pipeline = training._dataset(x, y, 32, seed=0)
    first, labels = next(iter(pipeline))
    assert np.array_equal(first.numpy(), x[labels.numpy()])  # batches are gathered from the arrays, by index
    del pipeline, first, labels, x
    gc.collect()
    assert alive() is None


def test_teacher_learns_well_above_chance(teacher, teacher_file, mnist5k):
    acc = training.accuracy(teacher, mnist5k.x_test, mnist5k.y_test)
    assert acc > 0.85
    assert storage.read_sidecar(teacher_file)["test_accuracy"] == pytest.approx(acc, abs=0.01)


@pytest.fixture
def initial_weights(monkeypatch):
    """Records every student's weights as built, before any training step touches them."""
    seen = []
    build = models.build_student

    def recording_build(cfg, seed=0):
        net = build(cfg, seed)
        seen.append([w.copy() for w in net.get_weights()])
        return net

    monkeypatch.setattr(models, "build_student", recording_build)
    return seen


@pytest.mark.slow
def test_student_and_baseline_start_equal_and_report_every_epoch(teacher, tiny, initial_weights):
    cfg = small()
    student = DIGITS.distill_student(cfg, teacher, tiny)
    baseline = DIGITS.train_baseline(cfg, tiny)

    assert len(initial_weights) == 2
    for ws, wb in zip(*initial_weights):
        np.testing.assert_array_equal(ws, wb)
    trained = student.model.get_weights()
    assert any(not np.array_equal(w0, w1) for w0, w1 in zip(initial_weights[0], trained))

    for run in (student, baseline):
        assert run.status == "finished" and run.reason == ""
        assert [h["epoch"] for h in run.history] == [1, 2]
        assert all(EPOCH_KEYS <= set(h) for h in run.history)
        assert run.valid_score == run.history[-1]["valid_accuracy"] > 0.3  # chance is 0.1
        assert "test_accuracy" not in run.history[-1]  # curves read valid; test is scored once, on the final model
        assert run.score == pytest.approx(training.accuracy(run.model, tiny.x_test, tiny.y_test))
        assert run.history[-1]["loss"] < run.history[0]["loss"]
    assert student.history[0]["soft"] > 0
    assert student.history[0]["loss"] == pytest.approx(
        cfg.alpha * student.history[0]["soft"] + (1 - cfg.alpha) * student.history[0]["hard"], rel=1e-4)
    assert baseline.history[0]["soft"] == 0 and baseline.history[0]["loss"] == baseline.history[0]["hard"]


@pytest.mark.slow
def test_few_labels_and_a_hint_stage_still_train(teacher, tiny):
    cfg = small(student=StudentConfig(filters=4, units=16), labels_fraction=0.05, alpha=0.5, hint_epochs=1)
    run = DIGITS.distill_student(cfg, teacher, tiny)
    assert run.status == "finished" and len(run.history) == 2
    assert all(np.isfinite(h["hard"]) and h["soft"] > 0 for h in run.history)
    assert run.score > 0.2  # twice chance after 26 steps with 40 labels
    assert len(run.stages["hint"]) == 1 and np.isfinite(run.stages["hint"][0]["loss"])  # kept for the record


@pytest.mark.parametrize("student", [StudentConfig(units=32), StudentConfig(filters=4, units=16)],
                         ids=["mlp", "cnn"])
@pytest.mark.slow
def test_fitnets_hint_stage_trains_the_early_layers_only(teacher, tiny, student):
    cfg = small(student=student, hint_epochs=1)
    net = models.build_student(student, cfg.seed)
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in net.layers}
    run = training.fit_hint(net, teacher, tiny, cfg, DIGITS.hint_layers(cfg))
    assert run.status == "finished" and len(run.history) == 1 and np.isfinite(run.history[0]["loss"])
    early = "hint" if not student.filters else "conv1"
    assert not np.array_equal(net.get_layer(early).get_weights()[0], before[early][0])
    np.testing.assert_array_equal(net.get_layer("logits").get_weights()[0], before["logits"][0])


@pytest.mark.slow
def test_teacher_logits_are_computed_once_per_teacher_file_and_dataset(teacher_file, tiny, monkeypatch):
    """Keyed by content: the same file loaded again hits; other weights or other images miss."""
    calls = []
    predict = training.predict_logits
    monkeypatch.setattr(training, "predict_logits", lambda *a, **k: calls.append(1) or predict(*a, **k))
    monkeypatch.setattr(training, "_LOGITS_CACHE", type(training._LOGITS_CACHE)())
    monkeypatch.setattr(training, "LOGITS_CACHE_ENTRIES", 2)  # so that the third pair below lets the first go
    net = storage.load_model(teacher_file)
    first = training.teacher_logits(net, tiny)
    assert first.shape == (800, 10) and not first.flags.writeable
    np.testing.assert_allclose(first[:5], np.asarray(net(tiny.x_train[:5])), rtol=1e-4, atol=1e-4)
    del net
    gc.collect()  # the id() that keyed the old cache may now be reused: the content key does not care

    again = storage.load_model(teacher_file)
    assert training.teacher_logits(again, tiny) is first and len(calls) == 1
    other_images = tiny.subset(400, seed=2)
    assert training.teacher_logits(again, other_images).shape == (400, 10) and len(calls) == 2
    bias = again.get_layer("logits").bias
    bias.assign(bias + 1.0)
    shifted = training.teacher_logits(again, tiny)
    assert len(calls) == 3
    np.testing.assert_allclose(shifted, first + 1, rtol=1e-4, atol=1e-4)
    assert len(training._LOGITS_CACHE) == training.LOGITS_CACHE_ENTRIES  # the oldest pair was let go
    assert training.teacher_logits(storage.load_model(teacher_file), tiny) is not first and len(calls) == 4


def test_pick_device_and_device_info():
    assert training.pick_device(["/physical_device:GPU:0"]) == "/GPU:0"
    assert training.pick_device([]) == "/CPU:0"
    info = training.device_info()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")  # whatever this machine has: the test must pass with or without
    assert info["gpus"] == len(gpus) and info["device"] == training.pick_device([g.name for g in gpus])
    assert info["label"].startswith("GPU: ") if gpus else info["label"] == "CPU (no GPU listed by TensorFlow)"


@pytest.mark.slow
def test_same_seed_gives_the_same_run(tiny):
    cfg = small(epochs=1, student=StudentConfig(units=16))
    a, b = DIGITS.train_baseline(cfg, tiny), DIGITS.train_baseline(cfg, tiny)
    assert a.score == b.score
    assert a.history[0]["loss"] == pytest.approx(b.history[0]["loss"], rel=1e-5)
