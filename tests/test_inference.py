"""kdcore.inference: softened probabilities and entropy against NumPy, predictions of a real teacher."""
import numpy as np
import pytest

from kdcore import inference, storage, training

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(0, 4, size=(32, 10))


def reference_softmax(z, t):
    e = np.exp(z / t)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0, 4.0, 20.0])
def test_softened_matches_numpy_reference_and_sums_to_one(t):
    p = inference.softened(LOGITS, t)
    np.testing.assert_allclose(p, reference_softmax(LOGITS, t), rtol=1e-10)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)


def test_softened_stays_finite_where_a_naive_softmax_overflows():
    z = np.array([1000.0, 999.0, 0.0])
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(reference_softmax(z, 0.5)).all()
    p = inference.softened(z, 0.5)
    np.testing.assert_allclose(p, [1 / (1 + np.exp(-2)), np.exp(-2) / (1 + np.exp(-2)), 0.0], atol=1e-12)


@pytest.mark.parametrize("t", [0, -1.0, float("nan")])
def test_softened_refuses_a_temperature_that_is_not_positive(t):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        inference.softened(LOGITS, t)


def test_entropy_in_bits_at_its_bounds():
    assert inference.entropy(np.eye(10)[3]) == 0.0
    assert inference.entropy(np.full(10, 0.1)) == pytest.approx(np.log2(10))
    assert inference.entropy([0.5, 0.5]) == pytest.approx(1.0)


def test_higher_temperature_flattens_and_lower_sharpens():
    temps = np.linspace(0.5, 20, 40)
    for z in LOGITS[:8]:
        h = inference.entropy_vs_temperature(z, temps)
        assert (np.diff(h) > 0).all()
        assert h[-1] < inference.MAX_ENTROPY_BITS
        sharp, usual = inference.softened(z, 0.5), inference.softened(z, 1.0)
        assert sharp.max() > usual.max()
        assert inference.entropy(sharp) < inference.entropy(usual)


def test_runners_up_are_the_next_most_likely_classes():
    p = inference.softened(np.array([0, 5, 1, 9, 3, 0, 0, 7, 0, 0.0]), 1.0)
    assert [c for c, _ in inference.runners_up(p, 3)] == [7, 1, 4]


def test_confusion_counts_every_example_once():
    y = RNG.integers(0, 10, 500)
    pred = np.where(RNG.random(500) < 0.8, y, RNG.integers(0, 10, 500))
    cm = inference.confusion(y, pred)
    assert cm.shape == (10, 10) and cm.sum() == 500
    assert np.trace(cm) == (y == pred).sum()
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y, minlength=10))


def test_select_all_disagreements_and_errors():
    y = np.array([0, 1, 2, 3])
    preds = {"Teacher": np.array([0, 1, 2, 9]), "Student": np.array([0, 7, 2, 9])}
    assert inference.select(y, preds, "all").tolist() == [0, 1, 2, 3]
    assert inference.select(y, preds, "disagreements").tolist() == [1]
    assert inference.select(y, preds, "errors").tolist() == [1, 3]
    with pytest.raises(ValueError, match="show must be one of"):
        inference.select(y, preds, "some")


@pytest.mark.slow
def test_predictions_of_a_real_teacher(teacher_file, tiny):
    model = storage.load_model(teacher_file)
    logits = inference.test_logits(model, tiny)
    assert logits.shape == (len(tiny.y_test), 10)
    assert inference.test_logits(model, tiny) is logits  # computed once per model and dataset
    np.testing.assert_allclose(logits, training.predict_logits(model, tiny.x_test), atol=1e-5)
    np.testing.assert_allclose(inference.predict_one(model, tiny.x_test[5]), logits[5], atol=1e-4)
    pred = logits.argmax(-1)
    cm = inference.confusion(tiny.y_test, pred)
    assert cm.sum() == len(tiny.y_test)
    assert np.trace(cm) / cm.sum() == pytest.approx(training.accuracy(model, tiny.x_test, tiny.y_test))
    assert np.trace(cm) / cm.sum() > 0.8
