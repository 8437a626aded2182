"""A run's recipe on the command line (``distill --recipe/--method``, ``methods``) and in the run's record.

The refusals and the listing call ``cli.main(argv)`` in this process (what
``python -m kdcore`` runs); one real FitNets distillation, also in process,
checks that the resolved recipe reaches the JSON, the sidecar and the run store.
"""
from __future__ import annotations

import json

import pytest

from kdcore import cli, recipes, storage, tasks


def write(path, text: str):
    path.write_text(text)
    return str(path)


def test_methods_lists_the_shipped_recipes_and_shows_one_resolved(capsys):
    assert cli.main(["methods", "--json"]) == 0
    listed = {m["name"]: m["description"] for m in json.loads(capsys.readouterr().out)["methods"]}
    assert {"kd", "fitnets", "at", "rkd", "dkd", "dist", "ls"} <= set(listed) and all(listed.values())
    assert cli.main(["methods", "--show", "fitnets"]) == 0  # for the task's default teacher and student
    shown = capsys.readouterr().out
    assert "fitnets for task digits" in shown and "hint feature hint" in shown and "regressor" in shown


@pytest.mark.parametrize("extra, words", [
    (["--method", "nope"], "unknown method 'nope'; accepted: at"),
    (["--recipe", "bad.txt"], "must end in .yaml, .yml or .json"),
    (["--recipe", "weight.yaml"], "stage 'distil', term 1: weight must be a number >= 0"),
    (["--recipe", "layer.yaml"], "the teacher has no layer 'conv9'; its layers: conv1 (26x26x"),
    (["--recipe", "shape.yaml"], "hint cannot match the student's logits (10) with the teacher's conv1 (26x26x"),
    (["--recipe", "weight.yaml", "--method", "kd"], "not allowed with argument"),
])
def test_a_bad_recipe_exits_2_with_one_line_before_any_run(extra, words, capsys, tmp_path, teacher_file):
    write(tmp_path / "bad.txt", "kl")
    write(tmp_path / "weight.yaml", "[{loss: kl, weight: -1}, {loss: ce}]")
    write(tmp_path / "layer.yaml", "[{loss: hint, teacher: conv9, student: hint}, {loss: ce}]")
    write(tmp_path / "shape.yaml", "[{loss: hint, teacher: conv1, student: logits}, {loss: ce}]")
    argv = ["distill", "--teacher", str(teacher_file), "--dataset", "mnist-5k", "--epochs", "1"]
    assert cli.main(argv + [str(tmp_path / a) if a.endswith((".txt", ".yaml")) else a for a in extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err, err
    assert storage.run_store().runs() == []  # refused before a run was recorded


def test_a_task_whose_loop_runs_one_shape_takes_that_recipe_and_refuses_others_in_one_line(capsys):
    lm = tasks.get("lm")
    cfg = lm.default_distill()
    recipe, notes = lm.check_recipe(cfg, None, None)  # no layer named: no network needed
    assert [t.loss for t in recipe.stages[-1].terms] == ["kl", "ce"] and notes == []
    cfg.recipe = recipes.method("kd").to_dict()  # the LM's own shape: taken
    assert [t.loss for t in lm.check_recipe(cfg, None, None)[0].stages[0].terms] == ["kl", "ce"]
    cfg.recipe = recipes.method("fitnets").to_dict()
    with pytest.raises(recipes.RecipeError, match="task lm runs one stage of a logits term"):
        lm.check_recipe(cfg, None, None)
    assert cli.main(["experiment", "--task", "lm", "--preset", "lm-demo", "--method", "dkd"]) == 2
    err = capsys.readouterr().err.strip()
    assert "task lm runs one stage" in err and "\n" not in err


@pytest.mark.slow
def test_distill_by_a_method_records_the_resolved_recipe_everywhere(capsys, tmp_path, teacher_file):
    argv = ["distill", "--teacher", str(teacher_file), "--dataset", "mnist-5k", "--method", "fitnets",
            "--epochs", "1", "--hint-epochs", "1", "--student-filters", "4", "--student-units", "16",
            "--temperature", "3", "--json"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    stages = result["recipe"]["stages"]
    assert [s["name"] for s in stages] == ["hint", "distil"]
    assert stages[0]["terms"][0] | {"teacher": "pool1", "student": "hint"} == stages[0]["terms"][0]
    assert stages[1]["terms"][0]["temperature"] == 3.0, "the flags fill the recipe's symbols"
    assert "a regressor maps the student's hint (13x13x4)" in result["recipe_notes"][0]
    assert "note: hint: a regressor maps" in err, "the notes are said before the run"
    assert set(result["history"]) == {"hint", "student"}
    assert storage.read_sidecar(result["model"])["recipe"] == result["recipe"]
    [row] = storage.run_store().runs()
    assert row["results"]["recipe"] == result["recipe"] and row["config"]["recipe"]["name"] == "fitnets"
