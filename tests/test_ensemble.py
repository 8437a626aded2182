"""Ensembles of teachers and teacher-assistant chains: the averages against NumPy, the refusals, real runs.

The runs use three real digits teachers (one epoch each on the ``tiny``
slice of mnist-5k) trained once per session by ``pipeline.train_teachers``,
the function behind ``train-teacher --ensemble 3`` and the Teacher page.
"""
import json

import numpy as np
import pytest

from kdcore import cli, ensemble, losses, pipeline, recipes, storage, tasks
from kdcore.jobs import runner
from kdcore.tasks.digits import TeacherConfig


def softmax(z, temperature):
    z = np.asarray(z, "float64") / temperature
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_averaged_probabilities_become_logits_whose_softmax_at_t_is_their_mean():
    rng = np.random.default_rng(0)
    members = [rng.normal(0, 4, (40, 10)).astype("float32") for _ in range(3)]
    members[0][0, 3] = 300.0  # one member sure of one class: the others' probabilities underflow, logits stay finite
    for t in (1.0, 4.0):
        z = ensemble.average(members, t, "probs")
        mean = np.mean([softmax(m, t) for m in members], axis=0)
        assert np.isfinite(z).all()
        np.testing.assert_allclose(softmax(z, t), mean, atol=1e-6)
        kl_target = np.asarray(losses.soft_targets(z, t, "kl"))  # what a training step reads: p̄ and Σ p̄ log p̄
        np.testing.assert_allclose(kl_target[:, :10], mean, atol=1e-6)
        np.testing.assert_allclose(kl_target[:, 10], (mean * np.log(np.maximum(mean, 1e-30))).sum(-1), atol=1e-4)
    np.testing.assert_allclose(ensemble.average(members, 4.0, "logits"), np.mean(members, axis=0), atol=1e-5)
    with pytest.raises(ValueError, match="ensemble_average must be one of probs, logits"):
        ensemble.average(members, 4.0, "median")


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory, tiny):
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=tiny.x_train, y_train=tiny.y_train, x_test=tiny.x_test, y_test=tiny.y_test)
    return str(path)


@pytest.fixture(scope="session")
def three_teachers(tmp_path_factory, tiny_npz):
    """Three real one-epoch digits CNNs, seeds 0-2, saved as one ensemble group."""
    out = tmp_path_factory.mktemp("ensemble") / "trio"
    result = pipeline.train_teachers(TeacherConfig(epochs=1, batch_size=100, augment=False), 3, tiny_npz, out,
                                     task="digits")
    assert result.status == "finished" and len(result.models) == 3
    return result


def test_refusals_come_in_one_line_before_any_training(tmp_path):
    digits = tasks.get("digits")
    cfg = digits.default_distill()
    a, b, c = (str(tmp_path / f"untrained{seed}.keras") for seed in range(3))  # real teachers, not trained: enough
    for seed, path in enumerate((a, b, c)):
        storage.save_model(digits.build_teacher(TeacherConfig(seed=seed)), path, {"kind": "teacher", "task": "digits"})
    for teacher, how, change, message in [
        ([a, a], "probs", {}, "named twice"),
        ([a, str(tmp_path / "gone.keras")], "probs", {}, "no model file at"),
        ([a, b], "mean", {}, "ensemble_average must be one of probs, logits"),
        ([a, b], "probs", {"hint_epochs": 1}, "hint_epochs must be 0 with an ensemble"),
        ([a, b], "probs", {"loss": "logit-mse"}, "logit-mse needs ensemble_average logits"),
        ([a, b], "probs", {"recipe": recipes.method("at").to_dict()}, r"the recipe's layer terms \(at_@attention\)"),
    ]:
        for key, value in change.items():
            setattr(cfg, key, value)
        with pytest.raises(ValueError, match=message):
            ensemble.check(cfg, digits, teacher, how)
        cfg = digits.default_distill()
    assert ensemble.check(cfg, digits, [a, b], "logits") == [a, b]

    other = tmp_path / "other-task.keras"  # a member of another task, as its sidecar says
    storage.save_model(storage.load_model(c), other, {"kind": "teacher", "task": "images"})
    with pytest.raises(ValueError, match="is a images model, not a digits one"):
        ensemble.check(cfg, digits, [a, str(other)], "probs")

    import keras  # a five-class model among digit teachers is refused when the members load

    five = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    storage.save_model(five, tmp_path / "five.keras", {"kind": "teacher", "task": "digits"})
    with pytest.raises(ValueError, match=r"gives \(5,\)"):
        ensemble.Teachers.load([a, str(tmp_path / "five.keras")], digits, cfg)

    lm = tasks.get("lm")  # a task that makes its soft targets in training has nothing to average
    pair = ensemble.Teachers([a, b], [storage.load_model(a), storage.load_model(b)])
    with pytest.raises(ValueError, match="cannot average an ensemble's"):
        pair.targets(lm, None, 4.0)


@pytest.mark.slow
def test_an_ensemble_of_three_teachers_distils_a_student_and_the_records_name_all_three(three_teachers, tiny_npz):
    digits = tasks.get("digits")
    members = three_teachers.models
    assert {storage.read_sidecar(p)["group"] for p in members} == {three_teachers.group}
    assert [storage.read_sidecar(p)["config"]["seed"] for p in members] == [0, 1, 2]

    cfg = digits.distill_from({"epochs": 1, "student_units": 32, "baseline": False})
    job = pipeline.start_distill(cfg, members, tiny_npz, task=digits, average="logits")
    assert job.wait(240) and job.status == "finished", job.error
    result = job.result
    assert result.teacher == members
    assert storage.run_store().get(job.run_id)["config"]["teacher"] == members  # the run store's record
    assert storage.run_store().get(job.run_id)["config"]["ensemble_average"] == "logits"
    side = storage.read_sidecar(result.model)  # the saved student's sidecar
    assert side["teacher"] == members
    assert [m["path"] for m in side["ensemble"]["members"]] == members and side["ensemble"]["average"] == "logits"

    # the teacher's score is the ensemble's: the argmax of its members' averaged test logits
    ds = digits.load(tiny_npz)
    logits = [np.asarray(storage.load_model(p)(ds.x_test)) for p in members]
    assert result.teacher_score == pytest.approx(float((np.mean(logits, 0).argmax(-1) == ds.y_test).mean()))
    scores = [m["test_accuracy"] for m in side["ensemble"]["members"]]
    assert scores == pytest.approx([float((z.argmax(-1) == ds.y_test).mean()) for z in logits])
    assert result.params["teacher"] == 3 * storage.load_model(members[0]).count_params()


@pytest.mark.slow
def test_the_assistant_chain_runs_from_the_command_line_and_records_both_stages(three_teachers, tiny_npz, capsys):
    teacher = three_teachers.models[0]
    code = cli.main(["distill", "--teacher", teacher, "--dataset", tiny_npz, "--assistant-width", "64",
                     "--student-units", "16", "--epochs", "1", "--baseline", "--json"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assistant = result["assistant"]
    assert result["teacher"] == teacher and assistant["teacher"] == teacher and assistant["student_units"] == 64
    assert storage.read_sidecar(assistant["model"])["config"]["student"]["units"] == 64
    assert storage.read_sidecar(assistant["model"])["teacher"] == teacher
    side = storage.read_sidecar(result["model"])
    assert side["teacher"] == assistant["model"] and side["assistant"]["test_accuracy"] == assistant["test_accuracy"]
    assert side["config"]["student"]["units"] == 16 and result["baseline_accuracy"] is not None
    assert result["teacher_accuracy"] == storage.read_sidecar(teacher)["test_accuracy"]
    run = storage.run_store().runs("distill")[0]
    assert run["config"]["assistant_width"] == 64 and run["results"]["assistant"]["model"] == assistant["model"]

    assert cli.main(["distill", "--teacher", teacher, "--dataset", tiny_npz, "--assistant-width", "0"]) == 2
    assert "student_units must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_the_teacher_page_trains_an_ensemble_that_the_distill_page_teaches_from(tiny_npz):
    from tests.test_pages_training import click, short_teacher_form, texts, wait_for_jobs

    at = short_teacher_form(tiny_npz)
    at.number_input(key="teacher.ensemble").set_value(2).run()
    click(at, "Train 2 teachers")
    job = runner().get(at.session_state["teacher_job"])
    wait_for_jobs()
    assert job.status == "finished", job.error
    at.run()
    assert [m.label for m in at.metric] == ["Seed 0 test accuracy", "Seed 1 test accuracy"]
    group = job.result.group
    assert [storage.read_sidecar(p)["group"] for p in job.result.models] == [group, group]

    at.switch_page("pages/distill.py").run()
    at.selectbox(key="distill.teach_from").select(f"ensemble:{group}").run()
    assert at.selectbox(key="distill.ensemble_average").value == "probs"
    at.number_input(key="distill.epochs").set_value(1)
    at.checkbox(key="distill.baseline").uncheck().run()
    click(at, "Distil student")
    wait_for_jobs()
    at.run()
    distilled = runner().get(at.session_state["distill_job"])
    assert distilled.status == "finished", distilled.error
    assert distilled.config["teacher"] == job.result.models
    assert "its members alone" in texts(at.caption)
