"""The verdict's statistics against hand computations: McNemar's exact test, the t-interval, the paired bootstrap."""
import math

import numpy as np
import pytest

from kdcore import stats


def _answers(won: int, lost: int, both_right: int, both_wrong: int):
    student = [True] * won + [False] * lost + [True] * both_right + [False] * both_wrong
    baseline = [False] * won + [True] * lost + [True] * both_right + [False] * both_wrong
    return student, baseline


def test_mcnemar_p_value_is_the_exact_binomial_one_computed_by_hand():
    # 10 examples only the distilled student gets right, 2 only the scratch one: P(X<=2 or X>=10), X ~ Bin(12, 1/2)
    student, baseline = _answers(10, 2, 80, 8)
    hand = 2 * (math.comb(12, 10) + math.comb(12, 11) + math.comb(12, 12)) / 2 ** 12
    result = stats.mcnemar(student, baseline)
    assert result.p_value == pytest.approx(hand)  # 0.0386
    assert result.gain == pytest.approx(8 / 100)
    assert result.outcome == "helped" and 0 < result.low < result.gain < result.high


def test_mcnemar_calls_a_small_difference_a_tie_and_a_reversed_one_hurt():
    assert stats.mcnemar(*_answers(6, 4, 80, 10)).outcome == "tie"
    assert stats.mcnemar(*_answers(2, 14, 80, 4)).outcome == "hurt"


def test_mcnemar_without_disagreements_is_a_tie_at_zero():
    result = stats.mcnemar(*_answers(0, 0, 90, 10))
    assert (result.gain, result.low, result.high, result.outcome) == (0.0, 0.0, 0.0, "tie")


def test_mcnemar_refuses_answers_on_different_examples():
    with pytest.raises(ValueError, match="same test examples"):
        stats.mcnemar([True, False], [True])


def test_seed_interval_is_the_t_interval_computed_by_hand():
    # gains 2, 3, 4: mean 3, s = 1, t(0.975, 2) = 4.302652729911275, so 3 ± 2.484
    result = stats.seeds([2.0, 3.0, 4.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert (result.gain, result.low, result.high) == pytest.approx((3.0, 3 - half, 3 + half))
    assert result.outcome == "helped"


def test_seed_interval_straddling_zero_is_a_tie_and_one_seed_is_refused():
    assert stats.seeds([0.5, -0.2, 0.1]).outcome == "tie"
    assert stats.seeds([-3.0, -2.0, -2.5]).outcome == "hurt"
    with pytest.raises(ValueError, match="two or more seeds"):
        stats.seeds([1.0])


def test_bootstrap_gain_is_the_perplexity_difference_and_identical_models_tie():
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 30, size=200)
    baseline = tokens * rng.uniform(5.0, 6.0, size=200)
    same = stats.bootstrap(baseline, baseline, tokens)
    assert (same.gain, same.low, same.high, same.outcome) == (0.0, 0.0, 0.0, "tie")
    better = stats.bootstrap(baseline - 0.3 * tokens, baseline, tokens)
    hand = math.exp(baseline.sum() / tokens.sum()) - math.exp((baseline - 0.3 * tokens).sum() / tokens.sum())
    assert better.gain == pytest.approx(hand)
    assert better.outcome == "helped" and better.low <= better.gain <= better.high


def test_bootstrap_of_noise_around_no_difference_is_a_tie():
    rng = np.random.default_rng(1)
    tokens = np.full(300, 20)
    baseline = tokens * 5.0 + rng.normal(0, 5, size=300)
    student = tokens * 5.0 + rng.normal(0, 5, size=300)
    result = stats.bootstrap(student, baseline, tokens)
    assert result.low < 0 < result.high and result.outcome == "tie"
