"""The language model's distillation methods: reverse KL, GKD's generalised JSD, schedules, sequence-level KD.

The formulas themselves are tested against NumPy in test_losses_methods.py;
here they train a real tiny LSTM on a slice of ptb-small, and the settings
that choose them are refused in one line where they cannot work.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from kdcore import cli, tasks
from kdcore.tasks import lm


@pytest.fixture(scope="module")
def ptb_slice():
    """The first 3,000 / 600 / 600 words of ptb-small's splits (its 10,000-word vocabulary kept)."""
    full = tasks.get("lm").load("ptb-small")
    return dataclasses.replace(full, x_train=full.x_train[:3000], y_train=full.y_train[:3000],
                               x_valid=full.x_valid[:600], y_valid=full.y_valid[:600],
                               x_test=full.x_test[:600], y_test=full.y_test[:600])


def test_a_loss_the_cache_cannot_serve_is_refused_in_one_line_naming_both_settings(capsys):
    task = tasks.get("lm")
    assert {"loss", "gkd_beta", "sequence_kd_words", "temperature_schedule", "alpha_end"} <= set(task.distill_params())
    for loss in ("reverse-kl", "gjsd"):
        with pytest.raises(ValueError, match=rf"^loss {loss} needs soft_targets online: .* soft_targets cache keeps "
                                             r"only the top 32$"):
            task.distill_from({"loss": loss}).validate()
        task.distill_from({"loss": loss, "soft_targets": "online"}).validate()
    with pytest.raises(ValueError, match=r"gkd_beta must be < 1.0 \(got 1.0\); allowed: \(0.0, 1.0\)"):
        task.distill_from({"loss": "gjsd", "gkd_beta": 1.0, "soft_targets": "online"}).validate()
    with pytest.raises(ValueError, match=r"gkd_beta must be > 0.0 \(got 0.0\)"):
        task.distill_from({"gkd_beta": 0.0}).validate()
    with pytest.raises(ValueError, match=r"loss must be one of kl, reverse-kl, gjsd \(got 'soft-ce'\)"):
        task.distill_from({"loss": "soft-ce"}).validate()
    with pytest.raises(ValueError, match=r"temperature_schedule must be one of constant, linear, cosine"):
        task.distill_from({"temperature_schedule": "step"}).validate()
    # on the command line: exit 2 and one line, before any teacher is read
    assert cli.main(["distill", "--task", "lm", "--teacher", "nowhere.keras", "--loss", "gjsd"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "loss gjsd needs soft_targets online" in err


def test_schedules_give_one_temperature_and_alpha_per_epoch_from_start_to_end():
    cfg = tasks.get("lm").distill_from({"epochs": 4, "temperature": 4.0, "temperature_end": 1.0,
                                        "temperature_schedule": "linear", "alpha": 0.9, "alpha_end": 0.1,
                                        "alpha_schedule": "cosine"}).validate()
    assert cfg.per_epoch("temperature") == pytest.approx([4.0, 3.0, 2.0, 1.0])
    assert cfg.per_epoch("alpha") == pytest.approx([0.9, 0.1 + 0.8 * 0.75, 0.1 + 0.8 * 0.25, 0.1])
    assert tasks.get("lm").distill_from({"epochs": 3}).per_epoch("alpha") == [0.9, 0.9, 0.9]  # constant by default


def test_a_teacher_writes_exactly_the_words_asked_the_same_ones_for_the_same_seed(ptb_slice):
    teacher = lm.build(len(ptb_slice.classes), 16, 1, 0.0, "teacher", seed=0)
    eos = ptb_slice.classes.index(lm.EOS)
    texts = lm.write_text(teacher, 100, eos, seed=3)
    assert [len(t) for t in texts] == [4] * 4 + [3] * 28 and lm.SAMPLE_STREAMS == 32
    again, other = lm.write_text(teacher, 100, eos, seed=3), lm.write_text(teacher, 100, eos, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(texts, again))
    assert not all(np.array_equal(a, b) for a, b in zip(texts, other))
    assert sum(map(len, lm.write_text(teacher, 5, eos))) == 5  # fewer words than streams: one word a text
    longer = lm.followed_by(ptb_slice, texts)
    assert len(longer.y_train) == 3100 and np.array_equal(longer.y_train[3000:], np.concatenate(texts))
    assert longer.x_train[3000] == eos and np.array_equal(longer.x_train[3001:3000 + len(texts[0])], texts[0][:-1])
    assert longer.x_valid is ptb_slice.x_valid and longer.y_test is ptb_slice.y_test  # only training text grows


@pytest.mark.slow
def test_each_method_distils_a_tiny_lm_and_records_what_it_used(ptb_slice):
    """One teacher; students by kl, reverse-kl and gjsd online with schedules, and by sequence-level KD (~30 s)."""
    task = tasks.get("lm")
    shape = {"epochs": 2, "batch_size": 8, "seq_len": 20, "learning_rate": 0.01, "student_units": 16}
    teacher = task.train_teacher(lm.TeacherConfig(units=32, layers=1, epochs=1, batch_size=8, seq_len=20,
                                                  dropout=0.0, learning_rate=0.01), ptb_slice).model
    runs = {}
    for name, extra in {"kl": {"loss": "kl"}, "reverse-kl": {"loss": "reverse-kl"},
                        "gjsd": {"loss": "gjsd", "gkd_beta": 0.3}}.items():
        cfg = task.distill_from({**shape, **extra, "soft_targets": "online", "temperature": 2.0,
                                 "temperature_end": 1.0, "temperature_schedule": "linear", "alpha": 0.5,
                                 "alpha_end": 0.2, "alpha_schedule": "cosine"})
        runs[name] = task.distill_student(cfg, teacher, ptb_slice)
    for name, run in runs.items():
        assert run.status == "finished" and math.isfinite(run.score), name
        first, last = run.history
        assert last["hard"] < first["hard"] and first["soft"] > 0 and math.isfinite(last["soft"]), name
        assert [v for r in run.history for v in (r["temperature"], r["alpha"])] == pytest.approx([2.0, 0.5, 1.0, 0.2])
    weights = {n: r.model.get_layer("logits").get_weights()[0] for n, r in runs.items()}
    assert not np.allclose(weights["kl"], weights["reverse-kl"]) and not np.allclose(weights["kl"], weights["gjsd"])
    assert runs["kl"].history[0]["soft"] != pytest.approx(runs["reverse-kl"].history[0]["soft"], rel=1e-3)

    seq = task.distill_from({**shape, "sequence_kd_words": 400, "alpha": 0.0})  # pure sequence-level KD
    run = task.distill_student(seq, teacher, ptb_slice)
    assert run.status == "finished" and math.isfinite(run.score)
    assert all(r["teacher_words"] == 400 and r["training_words"] == 3400 for r in run.history)
    assert all(r["soft"] == 0 and "temperature" not in r for r in run.history)  # alpha 0: labels only
    assert run.history[-1]["hard"] < run.history[0]["hard"]


@pytest.mark.slow
def test_the_cli_distils_by_gjsd_and_prints_the_verdict(toy_text, tmp_path, capsys):
    teacher = tmp_path / "t.keras"
    common = ["--task", "lm", "--dataset", str(toy_text), "--epochs", "1", "--batch-size", "8", "--seq-len", "10"]
    assert cli.main(["train-teacher", *common, "--units", "16", "--layers", "1", "--out", str(teacher),
                     "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["distill", *common, "--teacher", str(teacher), "--loss", "gjsd", "--gkd-beta", "0.3",
                     "--soft-targets", "online", "--temperature", "2", "--temperature-end", "1",
                     "--temperature-schedule", "linear", "--student-units", "16", "--baseline",
                     "--out", str(tmp_path / "s.keras")]) == 0
    out = capsys.readouterr().out
    assert "Verdict: " in out and "Baseline from scratch" in out
    from kdcore import storage

    config = storage.read_sidecar(tmp_path / "s.keras")["config"]
    assert (config["loss"], config["gkd_beta"], config["temperature_schedule"]) == ("gjsd", 0.3, "linear")
    assert json.dumps(config)  # the run's settings are plain data
