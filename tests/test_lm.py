"""The language-model task: perplexity, carried state, the top-k cache, a real tiny run, the CLI, bad input.

The tiny runs read a generated text (a toy grammar of 21 words, one sentence
a line) through the same path as a user's file, so they take seconds, not
the minutes of the Penn Treebank.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kdcore import cli, tasks
from kdcore.dataset import DatasetError
from kdcore.tasks import lm

@pytest.fixture(scope="module")
def toy(toy_text):
    return lm.load_text(toy_text)


def _tiny(vocab=7, units=8, layers=1, seed=0):
    return lm.build(vocab, units, layers, 0.0, "tiny", seed)


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_perplexity_is_exp_of_mean_cross_entropy_over_every_word():
    model = _tiny(layers=2)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 50).astype("int32")
    x = np.concatenate([[0], y[:-1]]).astype("int32")
    logits = np.asarray(model([x[None], *lm.zero_state(model, 1)])[0])[0]
    expected = math.exp(-np.mean(_log_softmax(logits.astype("float64"))[np.arange(50), y]))
    for seq_len in (3, 7, 50):  # chunks of any length give the same value: the state carries across them
        assert lm.perplexity(model, x, y, seq_len=seq_len, n=1) == pytest.approx(expected, rel=1e-4)


def test_one_seeds_verdict_resamples_sentences_whose_losses_add_up_to_the_perplexity(toy):
    task = tasks.get("lm")
    vocab = len(toy.classes)
    a, b = _tiny(vocab, seed=1), _tiny(vocab, units=16, seed=2)
    nll, words = lm.sentence_nll(a, toy)
    assert words.sum() == len(toy.y_test) and (words > 1).all()
    assert math.exp(nll.sum() / words.sum()) == pytest.approx(task.score(a, toy), rel=1e-6)
    paired = task.paired_gain(a, b, toy)
    assert paired.gain == pytest.approx(task.score(b, toy) - task.score(a, toy), rel=1e-5)
    assert paired.low <= paired.gain <= paired.high
    assert paired.method.startswith(f"paired bootstrap over {len(words):,} test sentences")
    same = task.paired_gain(a, a, toy)
    assert (same.gain, same.low, same.high, same.outcome) == (0.0, 0.0, 0.0, "tie")


def test_the_state_carries_from_one_chunk_to_the_next():
    model = _tiny(layers=2)
    x = np.arange(12, dtype="int32")[None] % 7
    whole = np.asarray(model([x, *lm.zero_state(model, 1)])[0])
    first = model([x[:, :5], *lm.zero_state(model, 1)])
    second = model([x[:, 5:], *[np.asarray(s) for s in first[1:]]])
    np.testing.assert_allclose(np.concatenate([first[0], second[0]], axis=1), whole, atol=1e-5)
    restarted = np.asarray(model([x[:, 5:], *lm.zero_state(model, 1)])[0])
    assert not np.allclose(restarted, whole[:, 5:], atol=1e-3)  # a zero state would give other logits


def test_a_new_network_starts_at_the_unigram_model_not_the_uniform_one():
    rng = np.random.default_rng(0)
    y = rng.choice(50, 2000, p=np.r_[0.6, np.full(49, 0.4 / 49)]).astype("int32")  # one word is 60 % of the text
    x = np.concatenate([[0], y[:-1]]).astype("int32")
    freq = (np.bincount(y, minlength=50) + 1.0) / (len(y) + 50)
    unigram = math.exp(-np.mean(np.log(freq[y])))
    plain = lm.perplexity(lm.build(50, 8, 1, 0.0, "plain", 0), x, y, n=4)
    started = lm.perplexity(lm.unigram_bias(lm.build(50, 8, 1, 0.0, "started", 0), y), x, y, n=4)
    assert plain > 40  # about uniform over 50 words
    assert started == pytest.approx(unigram, rel=0.1) and started < plain / 3


def test_streams_continue_across_chunks_and_scoring_counts_every_word_once():
    x, y = np.arange(100, dtype="int32"), np.arange(1, 101, dtype="int32")
    xs, ys = lm.streams(x, y, 3, 4)
    assert xs.shape == (8, 3, 4)  # 100 // 3 = 33 words a stream, 8 whole chunks of 4
    assert xs[1, 2, 0] == xs[0, 2, -1] + 1  # chunk 1 of stream 2 continues its chunk 0
    np.testing.assert_array_equal(ys, xs + 1)
    _, ys = lm.streams(x, y, 3, 4, pad=True)
    assert sorted(ys[ys >= 0].tolist()) == y.tolist()


def test_the_top_k_cache_matches_the_full_softmax_on_a_tiny_vocabulary():
    teacher = _tiny(vocab=6, units=8, seed=3)
    x = np.array([0, 1, 2, 3, 4, 5, 1, 2], "int32")
    y = np.roll(x, -1)
    temperature = 2.0
    full = np.asarray(teacher([lm.streams(x, y, 2, 4)[0][0], *lm.zero_state(teacher, 2)])[0])
    p_full = np.exp(_log_softmax(full / temperature))
    probs, ids = lm.teacher_cache(teacher, x, y, 2, 4, temperature, k=6)  # all six words: nothing is lost
    rebuilt = np.exp(_log_softmax(np.asarray(lm.cached_logits(probs[0], ids[0], 6, temperature)) / temperature))
    np.testing.assert_allclose(rebuilt.reshape(p_full.shape), p_full, atol=2e-3)  # float16 probabilities

    probs, ids = lm.teacher_cache(teacher, x, y, 2, 4, temperature, k=2)
    rebuilt = np.exp(_log_softmax(np.asarray(lm.cached_logits(probs[0], ids[0], 6, temperature)) / temperature))
    rebuilt = rebuilt.reshape(p_full.shape)
    top = np.argsort(-p_full, axis=-1)[..., :2]
    np.testing.assert_array_equal(np.sort(ids[0], -1), np.sort(top, -1))
    np.testing.assert_allclose(np.take_along_axis(rebuilt, top, -1), np.take_along_axis(p_full, top, -1), atol=2e-3)
    rest = 1 - np.take_along_axis(p_full, top, -1).sum(-1)  # the rest is spread evenly over the other 4 words
    others = np.sort(rebuilt, -1)[..., :4]
    np.testing.assert_allclose(others, np.repeat(rest[..., None] / 4, 4, -1), atol=2e-3)
    np.testing.assert_allclose(rebuilt.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("rest", lm.CACHE_REST)
@pytest.mark.parametrize("k", [1, 3, 6])
def test_the_cached_soft_loss_is_the_kl_of_losses_py_on_the_rebuilt_distribution(k, rest):
    import tensorflow as tf

    from kdcore.losses import soft_target_loss

    rng = np.random.default_rng(k)
    teacher, student = rng.normal(0, 2, (10, 6)), rng.normal(0, 2, (10, 6)).astype("float32")
    temperature = 3.0
    p = np.exp(_log_softmax(teacher / temperature))
    ids = np.argsort(-p, -1)[:, :k]
    probs = np.take_along_axis(p, ids, -1).astype("float32")
    s = tf.Variable(student)
    with tf.GradientTape(persistent=True) as tape:
        fast = lm.cached_soft_loss(probs, ids, s, temperature, rest)
        dense = soft_target_loss(lm.cached_logits(probs, ids, 6, temperature, rest, s), s, temperature, "kl")
    assert float(fast) == pytest.approx(float(dense), rel=1e-4, abs=1e-6)
    # The gradient is written out in closed form: it must be the dense loss's, word for word.
    np.testing.assert_allclose(tape.gradient(fast, s), tape.gradient(dense, s), atol=1e-6)
    if k == 6:  # nothing left out: the KL to the teacher's own softened distribution
        assert float(dense) == pytest.approx(float(soft_target_loss(teacher, student, temperature, "kl")), rel=1e-4)


@pytest.mark.parametrize("rest", lm.CACHE_REST)
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_a_cache_steps_three_terms_are_those_of_distillation_terms_on_the_rebuilt_teacher(temperature, rest):
    """One function takes both terms from one read of the logits; it must be losses.py's mix, value and gradient."""
    import tensorflow as tf

    from kdcore.losses import distillation_terms

    rng = np.random.default_rng(7)
    teacher, student = rng.normal(0, 2, (12, 9)), rng.normal(0, 2, (12, 9)).astype("float32")
    labels = rng.integers(0, 9, 12).astype("int32")
    p = np.exp(_log_softmax(teacher / temperature))
    ids = np.argsort(-p, -1)[:, :4]
    probs = np.take_along_axis(p, ids, -1).astype("float32")
    s = tf.Variable(student)
    with tf.GradientTape(persistent=True) as tape:
        fast = lm.cached_terms(labels, s, probs, ids, temperature, 0.3, rest)
        dense = distillation_terms(labels, s, lm.cached_logits(probs, ids, 9, temperature, rest, s), temperature, 0.3)
    for got, want in zip(fast, dense):  # total, soft, hard
        assert float(got) == pytest.approx(float(want), rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(tape.gradient(fast[0], s), tape.gradient(dense[0], s), atol=1e-6)


def test_settings_and_sizes():
    task = tasks.get("lm")
    assert task.metric.name == "perplexity" and not task.metric.higher_is_better
    assert {"seq_len", "soft_targets", "top_k"} <= set(task.distill_params())
    assert "labels_fraction" not in task.distill_params() and "hint_epochs" not in task.distill_params()
    cfg = task.distill_from({"student_units": 48, "student_layers": 2, "top_k": 8})
    assert isinstance(cfg, lm.LMDistillConfig) and cfg.student.units == 48 and cfg.top_k == 8
    assert task.flat(cfg)["student_units"] == 48
    model = task.build_student(cfg.student)
    assert model.count_params() == task.student_size(cfg.student)["params"]
    with pytest.raises(ValueError, match=r"student_units must be <= 256 \(got 512\)"):
        lm.StudentConfig(units=512).validate()
    with pytest.raises(ValueError, match=r"batch_size × seq_len must be <= the training tokens \(1,000\)"):
        lm.TeacherConfig(batch_size=32, seq_len=35).validate(1000)


def test_penn_treebank_counts():
    small = tasks.get("lm").load("ptb-small")  # the full corpus is read (and cached) to build the vocabulary
    full = lm._ptb(False)
    assert len(full.classes) == 10_000 and full.classes[:2] == ("<eos>", "<unk>")
    assert {s: len(getattr(full, f"y_{s}")) for s in ("train", "valid", "test")} == lm.PTB_TOKENS
    assert len(small.y_train) == lm.SMALL["train"] and small.classes == full.classes


def _unigram_perplexity(data) -> float:
    counts = np.bincount(data.y_train, minlength=len(data.classes)) + 1.0
    p = counts / counts.sum()
    return math.exp(-np.mean(np.log(p[data.y_test])))


@pytest.fixture(scope="module")
def toy_teacher(toy):
    """A 2×32 LSTM teacher, 4 epochs on the toy text (trained once for the module)."""
    return tasks.get("lm").train_teacher(lm.TeacherConfig(units=32, epochs=4, batch_size=8, seq_len=10, dropout=0.0),
                                         toy)


@pytest.mark.slow
@pytest.mark.parametrize("soft_targets", ["cache", "online"])
def test_a_tiny_teacher_and_student_beat_a_unigram_model(toy, toy_teacher, soft_targets):
    task, teacher = tasks.get("lm"), toy_teacher
    cfg = task.distill_from({"student_units": 16, "epochs": 4, "batch_size": 8, "seq_len": 10, "temperature": 2.0,
                             "alpha": 0.5, "soft_targets": soft_targets, "top_k": 4}).validate(len(toy.y_train))
    student = task.distill_student(cfg, teacher.model, toy)
    unigram = _unigram_perplexity(toy)
    assert teacher.status == student.status == "finished"
    assert teacher.score < 0.7 * unigram and student.score < 0.8 * unigram, \
        (teacher.score, student.score, unigram)
    assert student.history[-1]["soft"] > 0 and "valid_perplexity" in student.history[0]
    assert student.valid_score == student.history[-1]["valid_perplexity"]  # the curves read valid
    assert not any("test_perplexity" in r for r in student.history)  # test is scored once, on the final model


@pytest.mark.slow
def test_cli_train_teacher_distill_and_predict(toy_text, tmp_path, capsys):
    teacher, student = tmp_path / "t.keras", tmp_path / "s.keras"
    common = ["--task", "lm", "--dataset", str(toy_text), "--epochs", "1", "--batch-size", "8", "--seq-len", "10"]
    assert cli.main(["train-teacher", *common, "--units", "16", "--out", str(teacher), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"model", "test_perplexity", "params", "seconds", "device", "history"} <= set(out)
    assert out["test_perplexity"] > 1 and out["params"] == lm.stats(10_000, 16, 2)["params"]  # sized for PTB's vocabulary
    assert cli.main(["distill", *common, "--teacher", str(teacher), "--temperature", "2", "--alpha", "0.5",
                     "--student-units", "16", "--baseline", "--out", str(student), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"model", "student_perplexity", "baseline_perplexity", "teacher_perplexity", "gap_recovered", "params",
            "seconds", "device", "history"} <= set(out)
    assert set(out["history"]) == {"student", "baseline"}
    low, high = out["gain_ci95"]  # student − baseline perplexity: below zero is the student's win
    assert out["verdict_method"].startswith("paired bootstrap over") and low <= high
    assert out["verdict"] == ("helped" if high < 0 else "hurt" if low > 0 else "tie")
    assert cli.main(["predict", "--task", "lm", "--model", str(teacher), "--model", str(student), "--prompt",
                     "the cat", "--temperature", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["model"] for p in out["predictions"]] == [str(teacher), str(student)]
    for p in out["predictions"]:
        probs = [w["probability"] for w in p["next_words"]]
        assert len(probs) == 15 and probs == sorted(probs, reverse=True) and isinstance(p["continuation"], str)
    again = ["predict", "--task", "lm", "--model", str(student), "--prompt", "the cat", "--json"]
    assert cli.main(again) == 0 and cli.main(again) == 0  # seeded: the same continuation twice
    first, second = capsys.readouterr().out.splitlines()
    assert json.loads(first) == json.loads(second)

    for prompt, message in (("", "the prompt is empty"), ("zebra quokka", "none of the prompt's words")):
        assert cli.main(["predict", "--task", "lm", "--model", str(student), "--prompt", prompt, "--json"]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and message in captured.err

    # The Next word screen: a typed prompt gives both models' bars, entropies and seeded continuations.
    from streamlit.testing.v1 import AppTest

    from kdcore import storage
    from tests.conftest import ROOT

    for kind, path in (("teacher", teacher), ("student", student)):
        storage.save_model(storage.load_model(path, tasks.get("lm")), storage.model_path(kind),
                           dict(storage.read_sidecar(path), kind=kind))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["task"], at.session_state["dataset"] = "lm", str(toy_text)
    at.switch_page("pages/prompt.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.text_input(key="prompt.text").set_value("the cat").run()
    assert not at.exception and not at.error
    assert [m.label for m in at.metric] == ["Teacher entropy", "Student entropy"]
    assert len(at.get("plotly_chart")) == 2 and at.query_params["text"] == "the cat"
    entropy = at.get("plotly_chart")[1].proto.spec  # entropy against T, a line per model
    assert '"Teacher"' in entropy and '"Student"' in entropy and "entropy (bits)" in entropy
    assert [m.value.startswith(f"**{who}:** the cat") for m, who in zip(at.markdown[-2:], ("Teacher", "Student"))] \
        == [True, True]
    at.text_input(key="prompt.text").set_value("zebra quokka").run()
    assert "none of the prompt's words" in at.error[0].value

    # The Predictions screen: test sentences coloured by surprisal, and where the two models disagree most.
    at.switch_page("pages/surprisal.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.label for m in at.metric] == ["Teacher perplexity", "Student perplexity"]
    coloured = [m.value for m in at.markdown if m.value.startswith(("**Teacher**", "**Student**"))]
    assert len(coloured) == 2 * 8 and all("-background[" in line for line in coloured)
    assert "\\<eos\\>" in coloured[0]  # markup characters in words are escaped, so <eos> shows
    table = at.dataframe[0].value
    assert len(table) == 15 and list(table["kl_bits"]) == sorted(table["kl_bits"], reverse=True)

    # evaluate: perplexity on the data the model was trained on, unless another is named
    assert cli.main(["evaluate", "--task", "lm", "--model", str(student), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == str(toy_text) and out["test_perplexity"] > 1 and out["valid_perplexity"] > 1
    assert cli.main(["predict", "--task", "lm", "--model", str(student)]) == 2
    assert "needs --prompt" in capsys.readouterr().err
    assert cli.main(["predict", "--model", str(student)]) == 2  # digits still needs an image, and says so
    assert "needs --image" in capsys.readouterr().err


def test_bad_text_files_and_caps_are_refused_in_one_line(tmp_path, monkeypatch):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "data.txt"
    binary.write_bytes(b"\x00\x01\x02 binary\n" * 20)
    short = tmp_path / "short.txt"
    short.write_text("one line only\n")
    good = tmp_path / "good.txt"
    good.write_text("a b c\n" * 20)
    cases = [(empty, "is empty"), (binary, "not a UTF-8 text file"), (short, "at least 10 are needed")]
    for path, message in cases:
        with pytest.raises(DatasetError, match=message):
            tasks.get("lm").load(str(path))
    monkeypatch.setattr(lm.data, "MAX_TEXT_BYTES", 10)  # read where load_text lives
    with pytest.raises(DatasetError, match="too large"):
        lm.load_text(good)
    with pytest.raises(DatasetError, match=r"vocabulary cap must be >= 2 \(got 1\)"):
        lm.load_text(good, cap=1)
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        tasks.get("lm").load("nope")


def test_a_capped_vocabulary_maps_the_rest_to_unk(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a a a b b c\n" * 10)
    data = lm.load_text(path, cap=3)
    assert data.classes == ("<eos>", "<unk>", "a")
    assert set(np.unique(data.y_train)) == {0, 1, 2}


def test_prompts_are_refused_when_empty_or_unknown_and_unknown_words_show_as_unk():
    vocab = ("<eos>", "<unk>", "the", "N", "company", "said")
    assert lm.prompt_ids("The Company said 1,000", vocab) == [2, 4, 5, 3]
    assert lm.prompt_ids("the zebra", vocab) == [2, 1]
    with pytest.raises(ValueError, match="the prompt is empty"):
        lm.prompt_ids("   ", vocab)
    with pytest.raises(ValueError, match="none of the prompt's words"):
        lm.prompt_ids("zebra quokka", vocab)
    model = _tiny(vocab=6)
    out = lm.complete(model, vocab, "the zebra", temperature=1.0, seed=0, top=3)
    assert out["prompt"] == "the <unk>" and len(out["next_words"]) == 3
    assert out == lm.complete(model, vocab, "the zebra", temperature=1.0, seed=0, top=3)


def test_live_curves_of_a_language_model_show_perplexity_on_a_log_axis():
    from kdcore import figures

    series = {"student": [{"epoch": 1, "perplexity": 900.0, "valid_perplexity": 950.0},
                          {"epoch": 2, "perplexity": 500.0, "valid_perplexity": 610.0}]}
    fig = figures.score_curves(series, 400.0)  # what the job panel calls, whatever the task
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.title.text == "perplexity"
    assert [t.name for t in fig.data] == ["student valid", "student train"] and list(fig.data[0].y) == [950.0, 610.0]


def test_entropy_rises_with_temperature_towards_the_uniform_ceiling():
    vocab = ("<eos>", "<unk>", "the", "N", "company", "said")
    model = _tiny(vocab=6)
    h = lm.entropy_curve(model, vocab, "the company", [0.25, 1.0, 4.0, 1000.0])
    assert h == sorted(h) and h[-1] == pytest.approx(math.log2(6), abs=1e-3)
    assert h[1] == pytest.approx(lm.complete(model, vocab, "the company")["entropy_bits"], rel=1e-6)


def test_surprisal_on_the_test_text_is_perplexity_word_by_word_and_kl_finds_disagreements(toy):
    task = tasks.get("lm")
    a, b = (lm.build(len(toy.classes), 8, 1, 0.0, name, seed) for name, seed in (("a", 0), ("b", 1)))
    out = task.compare({"Teacher": a, "Student": b}, toy, words=200)
    assert len(out["words"]) == 200 and out["words"][0] == toy.classes[toy.y_test[0]]
    expected = lm.perplexity(a, toy.x_test[:200], toy.y_test[:200], n=1)
    assert out["perplexity"]["Teacher"] == pytest.approx(expected, rel=1e-3)
    assert all(out["words"][end - 1] == "<eos>" for _, end in out["sentences"][:-1])
    assert sum(end - start for start, end in out["sentences"]) == 200
    kl = [row["kl_bits"] for row in out["disagreements"]]
    assert len(kl) == 15 and kl == sorted(kl, reverse=True) and kl[0] == pytest.approx(out["kl_bits"].max())
    assert set(out["disagreements"][0]) >= {"context", "word", "teacher_guess", "student_guess", "teacher_bits"}
    same = task.compare({"Teacher": a, "Student": a}, toy, words=50)
    np.testing.assert_allclose(same["kl_bits"], 0.0, atol=1e-6)
    assert [lm.band(bits) for bits in (1, 5, 9, 13)] == ["expected", "plausible", "surprising", "very surprising"]


TOY_PRESET = {"name": "toy-lm", "task": "lm", "dataset": "ptb-small",
              "teacher": {"units": 16, "epochs": 1, "batch_size": 8, "seq_len": 10, "dropout": 0.0},
              "distill": {"student": {"units": 16}, "epochs": 1, "batch_size": 8, "seq_len": 10,
                          "temperature": 2.0, "alpha": 0.5}}


@pytest.mark.slow
def test_an_lm_experiment_and_sweep_stand_beside_the_baseline(toy):
    from kdcore import experiments

    result = experiments.run_experiment(TOY_PRESET, seeds=2, data=toy)
    assert result["status"] == "finished" and result["metric"] == "perplexity"
    for key in ("student_perplexity", "baseline_perplexity", "gain", "gap_recovered"):
        assert set(result[key]) == {"mean", "std", "values"}
    runs = result["runs"]
    assert [r["seed"] for r in runs] == [0, 1] and result["teacher_perplexity"] > 1
    assert [r["student"] - r["baseline"] for r in runs] == result["gain"]["values"]
    assert all(r["student_cpu_seconds"] > 0 and r["baseline_cpu_seconds"] > 0 for r in runs)
    assert result["verdict"] in ("helped", "tie", "hurt") and "perplexity" in result["verdict_reason"]
    from scipy import stats as scipy_stats

    gains = result["gain"]["values"]  # student − baseline perplexity, the interval in the same sign
    half = scipy_stats.t.ppf(0.975, 1) * np.std(gains, ddof=1) / np.sqrt(2)
    assert result["gain_ci95"] == pytest.approx([np.mean(gains) - half, np.mean(gains) + half])
    assert result["verdict"] == ("helped" if half < -np.mean(gains) else "hurt" if half < np.mean(gains) else "tie")
    frame = experiments.sweep(TOY_PRESET, [1.0, 2.0], [0.5], seeds=1, data=toy)
    assert list(frame["temperature"]) == [1.0, 2.0] and set(frame["metric"]) == {"perplexity"}
    with pytest.raises(ValueError, match="omit_class is not a setting of task 'lm'"):
        experiments.run_experiment(TOY_PRESET, seeds=1, omit_class=3, data=toy)


def test_the_cli_refuses_a_preset_of_another_task_in_one_line(capsys):
    assert cli.main(["experiment", "--task", "lm", "--preset", "quick", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "preset 'quick' is for task 'digits', not 'lm'; presets of 'lm': lm-demo, lm-quick" in captured.err


@pytest.mark.slow
def test_the_lm_bench_reports_every_figure(toy):
    from kdcore import bench
    from kdcore.tasks.lm import bench as lm_bench

    result = tasks.get("lm").bench(toy, epochs=2, repeats=1, preset=TOY_PRESET)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert set(result["epoch_cpu_s"]) == {"scratch", "cache", "online"}
    assert all(v > 0 for v in result["epoch_s"].values()) and all(v > 0 for v in result["cpu_ratios"].values())
    assert 0 < result["cache_mb"] < result["cache_mb_full_ptb"] and result["peak_rss_mb"] > 0
    assert set(result["meets_target"]) == set(lm_bench.TARGETS)
    assert "cache/scratch" in bench.text(result)


@pytest.mark.slow
def test_the_experiments_page_runs_an_lm_preset_and_shows_perplexity(toy_text, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from kdcore import presets
    from kdcore.jobs import runner
    from tests.conftest import ROOT

    monkeypatch.setitem(presets.PRESETS, "lm-demo", dict(TOY_PRESET, dataset=str(toy_text), demo=True,
                                                           description="toy"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["task"], at.session_state["dataset"] = "lm", str(toy_text)
    at.switch_page("pages/experiments.py").run()
    assert not at.exception, [e.value for e in at.exception]
    preset = at.selectbox(key="experiments.preset")
    assert preset.options == ["lm-demo", "lm-quick", "lm-ptb"] and preset.value == "lm-demo"
    assert "1×16 LSTM" in " ".join(str(m.value) for m in at.markdown)
    # a language model has no share of labels and no class to leave out
    assert "Share of images with labels" not in {s.label for s in at.slider}
    assert "Leave out of the transfer set" not in {s.label for s in at.selectbox}
    at.number_input(key="experiments.lm-demo.seeds").set_value(2).run()
    next(b for b in at.button if b.label == "Run experiment").click().run()
    job = runner().get(at.session_state["experiment_job"])
    assert job.wait(240) and job.status == "finished", job.error
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert {"Change in perplexity", "Gap recovered"} <= {m.label for m in at.metric}
    bars = at.get("plotly_chart")[-1].proto.spec
    assert "Distilled student" in bars and "test perplexity" in bars
    assert list(at.dataframe[0].value["seed"]) == [0, 1]
    low, high = job.result["gain_ci95"]
    shown = " ".join(str(m.value) for m in at.markdown)
    assert f"(95 % CI {low:+,.1f} to {high:+,.1f} ppl, 95 % t-interval over 2 seeds)" in shown, shown


@pytest.mark.slow
def test_the_home_demo_runs_an_lm_teacher_then_student_and_baseline(toy_text, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from kdcore import presets
    from kdcore.jobs import runner
    from tests.conftest import ROOT

    monkeypatch.setitem(presets.PRESETS, "lm-demo", dict(TOY_PRESET, dataset=str(toy_text), demo=True,
                                                           description="toy"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["task"], at.session_state["dataset"] = "lm", str(toy_text)
    at.run()
    next(b for b in at.button if b.label == "Run quick demo").click().run()
    job = runner().get(at.session_state["demo_job"])
    assert job.wait(240) and job.status == "finished", job.error
    assert set(job.progress.snapshot()["series"]) == {"teacher", "student", "baseline"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert {"Distilled student", "Baseline (no teacher)", "Teacher"} <= {m.label for m in at.metric}
    shown = " ".join(str(m.value) for m in at.markdown)
    low, high = job.result.verdict().ci95
    assert f"(95 % CI {low:+,.1f} to {high:+,.1f} ppl, paired bootstrap over" in shown, shown


def test_the_lm_runs_the_one_recipe_its_loop_knows_by_writing_it_into_its_settings():
    import dataclasses

    from kdcore import recipes

    task = tasks.get("lm")
    cfg = task.default_distill()
    [stage] = task.recipe(cfg).stages
    assert [(t.kind, t.loss, t.weight, t.temperature) for t in stage.terms] == [
        ("logits", cfg.loss, cfg.alpha, cfg.temperature), ("labels", "ce", round(1 - cfg.alpha, 12), 1.0)]
    assert task.settings_of(dataclasses.replace(cfg, recipe=task.recipe(cfg).to_dict())) == cfg
    moved = recipes.from_dict([
        {"loss": "kl", "weight": 0.5, "temperature": 3.0, "schedule": "linear", "weight_end": 0.2, "temperature_end": 1.0},
        {"loss": "ce", "weight": 0.5, "schedule": "linear", "weight_end": 0.8}]).to_dict()
    moved["stages"][0]["epochs"] = 4
    got = task.settings_of(dataclasses.replace(cfg, recipe=moved))
    assert (got.alpha, got.alpha_end, got.alpha_schedule, got.temperature, got.temperature_end,
            got.temperature_schedule, got.epochs, got.recipe) == (0.5, 0.2, "linear", 3.0, 1.0, "linear", 4, None)
    for other, words in ((recipes.method("fitnets"), "(got hint: hint; distil: kl, ce)"),
                         (recipes.from_dict([{"loss": "kl", "weight": 0.5}, {"loss": "ce", "weight": 0.3}]),
                          "got ce 0.3 beside kl 0.5")):
        with pytest.raises(recipes.RecipeError) as err:
            task.distill_student(dataclasses.replace(cfg, recipe=other.to_dict()), None, None)
        assert str(err.value).startswith("task lm runs one stage of a logits term") and words in str(err.value)
