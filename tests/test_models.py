"""Models: the size table computed from layer specs agrees with the real Keras models they build."""
from __future__ import annotations

import numpy as np
import pytest

from kdcore.tasks import digits as models
from kdcore.tasks.digits import StudentConfig, TeacherConfig

TEACHERS = [TeacherConfig(variant="cnn"), TeacherConfig(variant="cnn-large"),
            TeacherConfig(variant="cnn", dropout=0.3, augment=True)]
STUDENTS = [StudentConfig(filters=0, units=32, layers=1), StudentConfig(filters=0, units=100, layers=3),
            StudentConfig(filters=8, units=64, layers=1), StudentConfig(filters=4, units=16, layers=2)]


@pytest.mark.parametrize("cfg", TEACHERS, ids=["cnn", "cnn-large", "cnn-dropout-augment"])
def test_teacher_stats_match_keras(cfg):
    model = models.build_teacher(cfg)
    assert models.teacher_stats(cfg) == models.model_stats(model)
    assert models.teacher_stats(cfg)["params"] == model.count_params()


@pytest.mark.parametrize("cfg", STUDENTS, ids=["mlp1", "mlp3", "cnn1", "cnn2"])
def test_student_stats_match_keras(cfg):
    model = models.build_student(cfg)
    stats = models.student_stats(cfg)
    assert stats == models.model_stats(model)
    assert stats["params"] == model.count_params()
    assert stats["weight_bytes"] == 4 * stats["params"]


def test_stats_by_hand_for_the_seed_tutorial_teacher():
    """Conv32 (26x26) - Pool - Conv64 (11x11) - Pool - Dense128 - Dense10, counted on paper."""
    params = (9 * 32 + 32) + (9 * 32 * 64 + 64) + (5 * 5 * 64 * 128 + 128) + (128 * 10 + 10)
    macs = 26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 5 * 5 * 64 * 128 + 128 * 10
    assert models.teacher_stats(TeacherConfig()) == {"params": params, "macs": macs, "weight_bytes": 4 * params}


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def test_same_seed_same_initial_weights_different_seed_different():
    cfg = StudentConfig(filters=4, units=32, layers=2)
    a, b, c = (_weights(models.build_student(cfg, seed)) for seed in (5, 5, 6))
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a, c) if wa.any())


def test_outputs_are_logits(tiny):
    for model in (models.build_teacher(TeacherConfig()), models.build_student(StudentConfig(units=16))):
        out = np.asarray(model(tiny.x_test[:7], training=False))
        assert out.shape == (7, 10)
        assert (out < 0).any()  # a softmax output would be all positive and sum to 1
        assert not np.allclose(out.sum(axis=1), 1.0)


def test_hint_layer_is_where_fitnets_reads():
    mlp, cnn = models.build_student(StudentConfig(units=16)), models.build_student(StudentConfig(filters=4))
    assert mlp.get_layer("hint").output.shape[-1] == 16
    assert cnn.get_layer("hint").output.shape[1:] == (13, 13, 4)
    assert models.build_teacher(TeacherConfig()).get_layer("hint").output.shape[-1] == 128
