"""Recipes as data: reading and refusing them in one line, today's methods as recipes, and every shipped method run."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from kdcore import recipes, stages, storage, training
from kdcore.config import DistillConfig
from kdcore.dataset import hide_labels
from kdcore.tasks.digits import DIGITS, StudentConfig


@pytest.fixture(scope="module")
def teacher(teacher_file):
    return storage.load_model(teacher_file)


def cfg_for(**overrides) -> DistillConfig:
    base = dict(student=StudentConfig(filters=4, units=16), epochs=1, batch_size=64, seed=5, alpha=0.7,
                temperature=3.0)
    return DistillConfig(**{**base, **overrides})


# --- reading ---------------------------------------------------------------------------------------------
def test_a_yaml_and_a_json_file_give_the_same_recipe(tmp_path):
    kd = recipes.method("kd")
    (tmp_path / "r.json").write_text(json.dumps(kd.to_dict()))
    assert recipes.load(tmp_path / "r.json") == kd
    assert [s.name for s in recipes.method("fitnets").stages] == ["hint", "distil"]
    assert set(recipes.METHODS) >= {"kd", "fitnets", "at", "rkd", "dkd", "dist", "ls"}


@pytest.mark.parametrize("recipe, words", [
    ([{"kind": "logits", "loss": "kld"}], ["unknown loss 'kld'", "accepted: kl"]),
    ([{"loss": "kl", "weight": -1}], ["stage 'distil', term 1", "weight must be a number >= 0"]),
    ([{"loss": "at", "teacher": "pool1"}], ["names a student layer"]),
    ([{"loss": "ce", "kind": "logits"}], ["'ce' is a labels loss"]),
    ([{"loss": "hint", "teacher": "a", "student": "b"}], ["the last stage", "needs a logits or labels term"]),
    ([{"loss": "kl", "schedule": "steps"}], ["schedule must be one of constant, linear, cosine"]),
    ({"stages": []}, ["non-empty list 'stages'"]),
])
def test_a_bad_recipe_is_refused_in_one_line(recipe, words):
    with pytest.raises(recipes.RecipeError) as err:
        recipes.from_dict(recipe)
    assert "\n" not in str(err.value) and all(w in str(err.value) for w in words), str(err.value)


def test_a_recipe_file_that_is_neither_yaml_nor_json_is_refused(tmp_path):
    (tmp_path / "r.txt").write_text("kl")
    (tmp_path / "r.yaml").write_text("stages: [unclosed")
    for name, words in (("r.txt", "must end in .yaml"), ("r.yaml", "is not valid YAML")):
        with pytest.raises(recipes.RecipeError, match=words):
            recipes.load(tmp_path / name)


def test_layers_that_do_not_exist_or_cannot_be_matched_are_refused_naming_both(teacher):
    student = DIGITS.build_student(StudentConfig(filters=4, units=16), 0)
    cfg = cfg_for()

    def refusal(term):
        with pytest.raises(recipes.RecipeError) as err:
            stages.prepare(recipes.from_dict([term, {"loss": "ce"}]), cfg, teacher, student)
        assert "\n" not in str(err.value)
        return str(err.value)

    assert "the student has no layer 'conv9'; its layers: " in refusal(
        {"loss": "at", "teacher": "conv1", "student": "conv9"})
    said = refusal({"loss": "hint", "teacher": "conv1", "student": "logits"})  # a vector cannot become a map
    assert "student's logits (10)" in said and "teacher's conv1 (26x26x" in said
    said = refusal({"loss": "at", "teacher": "logits", "student": "conv1"})
    assert "attention transfer compares feature maps" in said
    said = refusal({"loss": "token-mse", "teacher": "conv1", "student": "conv1"})  # TinyBERT's: the text task runs it
    assert "token-mse is run by the stage of a task whose networks read padded tokens" in said


def test_where_widths_differ_a_projection_is_added_and_said(teacher):
    student = DIGITS.build_student(StudentConfig(filters=4, units=16), 0)
    _, notes = stages.prepare(recipes.from_dict([{"loss": "hint", "teacher": "pool1", "student": "hint"},
                                                 {"loss": "ce"}]), cfg_for(), teacher, student)
    assert len(notes) == 1 and "a regressor maps the student's hint (13x13x4) to the teacher's pool1 (13x13x" in notes[0]


def test_the_settings_are_the_kd_recipe_and_hint_epochs_the_fitnets_one():
    cfg = cfg_for(hint_epochs=2)
    described = recipes.resolve(recipes.from_config(cfg, ("hint", "hint")), cfg)
    shipped = recipes.resolve(recipes.method("fitnets"), cfg, {"@hint": ("hint", "hint")})
    assert [s.terms for s in described.stages] == [s.terms for s in shipped.stages]
    assert [s.epochs for s in described.stages] == [s.epochs for s in shipped.stages] == [2, None]
    assert stages.fast_path(shipped.stages[0]) == "hint" and stages.fast_path(shipped.stages[1]) == "hinton"


# --- training ----------------------------------------------------------------------------------------------
def _same_weights(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


@pytest.mark.slow
def test_kd_and_fitnets_as_recipes_train_exactly_the_model_the_direct_calls_train(teacher, tiny):
    """The recipe layer adds no arithmetic: the same seed gives the same weights, bit for bit."""
    cfg = cfg_for(hint_epochs=1)
    labels = hide_labels(tiny.y_train, cfg.labels_fraction, cfg.seed)
    logits = training.teacher_logits(teacher, tiny)
    direct = DIGITS.build_student(cfg.student, cfg.seed)
    training.fit_hint(direct, teacher, tiny, cfg, DIGITS.hint_layers(cfg))
    training.fit(direct, tiny, cfg, labels=labels, teacher_logits=logits, temperature=3.0, alpha=0.7)
    recipe = dataclasses.replace(cfg, recipe=recipes.method("fitnets").to_dict())
    by_recipe = DIGITS.distill_student(recipe, teacher, tiny)
    assert _same_weights(direct, by_recipe.model)
    assert len(by_recipe.stages["hint"]) == 1 and len(by_recipe.history) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["at", "rkd", "dkd", "dist", "ls"])
def test_every_shipped_method_trains_a_student_end_to_end(teacher, tiny, name):
    cfg = dataclasses.replace(cfg_for(epochs=2, batch_size=32), recipe=recipes.method(name).to_dict())
    run = DIGITS.distill_student(cfg, teacher, tiny)
    assert run.status == "finished" and len(run.history) == 2
    terms = recipes.resolve(recipes.method(name), cfg, {"@attention": ("", ""), "@penultimate": ("", "")})
    for term in terms.stages[-1].terms:
        column = [c for c in run.history[-1] if c.startswith(term.label)]
        assert column and np.isfinite(run.history[-1][column[0]]), (term.label, run.history[-1])
    assert run.history[-1]["loss"] < run.history[0]["loss"]  # the weighted sum of the terms is what falls
    assert 0.0 <= run.score <= 1.0 and run.valid_score is not None  # scored once on test, curves on valid


@pytest.mark.slow
def test_a_scheduled_temperature_moves_epoch_by_epoch_and_is_recorded(teacher, tiny):
    cfg = cfg_for(epochs=3, temperature=5.0, temperature_schedule="linear", temperature_end=1.0)
    run = DIGITS.distill_student(cfg, teacher, tiny)
    assert [round(r["kl_temperature"], 6) for r in run.history] == [5.0, 3.0, 1.0]
    assert [r["kl_weight"] for r in run.history] == [0.7] * 3
