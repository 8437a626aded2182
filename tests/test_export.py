"""LiteRT export: real tiny models converted, run by the real LiteRT interpreter, and the Deploy screen.

A 2-layer MLP (32 hidden units) trained for one epoch on 800 digits is
exported once per quantization; the tests read those files back with the
interpreter. Timing the Keras model costs two fresh processes (each imports
TensorFlow), so only the CLI contract test pays it; the other exports pass
``time_keras=False``, and the Deploy page test swaps the child processes for
fixed figures, because what it checks is the page, not the clock.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kdcore import export, storage
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def train_mlp(ds, units: int = 32):
    """Flatten - Dense(units, relu) - Dense(10): a student built from Keras layers alone."""
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input(ds.x_train.shape[1:])
    hidden = keras.layers.Dense(units, activation="relu")(keras.layers.Flatten()(image))
    model = keras.Model(image, keras.layers.Dense(10)(hidden), name="student")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(ds.x_train, ds.y_train, epochs=1, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def mlp(tiny):
    return train_mlp(tiny)


@pytest.fixture(scope="module")
def student_file(tmp_path_factory, mlp):
    path = tmp_path_factory.mktemp("student") / "student.keras"
    return storage.save_model(mlp, path, {"kind": "student", "dataset": "mnist-5k"})


@pytest.fixture(scope="module")
def exports(student_file):
    """{quantize: sidecar record} of the student exported three ways (without the Keras timing)."""
    return {q: export.export(student_file, q, time_keras=False) for q in export.QUANTIZE}


def run_cli(*args, home) -> subprocess.CompletedProcess:
    env = dict(os.environ, KDSTUDIO_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "kdcore", "export", *map(str, args), "--json"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


# --- round trip ----------------------------------------------------------------------------------
@pytest.mark.parametrize("quantize", export.QUANTIZE)
def test_round_trip_writes_the_file_and_its_sidecar(exports, student_file, quantize):
    record = exports[quantize]
    path = student_file.with_name(f"student-{quantize}.tflite")
    assert record["path"] == str(path) and path.stat().st_size == record["bytes"]
    assert storage.read_sidecar(path) == json.loads(json.dumps(record))
    assert record["source_model"] == str(student_file) and record["source_kind"] == "student"
    assert record["quantize"] == quantize and record["format"] == "litert" and record["test_images"] == 1000
    assert abs(record["accuracy"] - record["float_accuracy"]) <= 0.02
    assert record["accuracy_change"] == pytest.approx(record["accuracy"] - record["float_accuracy"])
    for threads in ("threads_1", "threads_2"):
        spread = record["latency_ms"][threads]
        assert 0 < spread["median"] <= spread["p90"] < 100
    assert record["keras_latency_ms"] is None  # not timed here (see the module docstring)
    assert (record["calibration"] is not None) == (quantize == "int8")


def test_quantization_shrinks_the_file_and_int8_is_integer_throughout(exports):
    from ai_edge_litert.interpreter import Interpreter

    sizes = {q: r["bytes"] for q, r in exports.items()}
    assert sizes["int8"] <= 0.3 * sizes["none"] and sizes["float16"] < 0.6 * sizes["none"]
    it = Interpreter(model_path=exports["int8"]["path"])
    assert it.get_input_details()[0]["dtype"] == np.int8 and it.get_output_details()[0]["dtype"] == np.int8


def test_accuracy_is_the_argmax_of_the_interpreters_own_outputs(exports, mnist5k):
    """Image by image with the bare interpreter: quantize the input, invoke, dequantize, argmax."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=exports["int8"]["path"], num_threads=1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    (in_scale, in_zero), (out_scale, out_zero) = inp["quantization"], out["quantization"]
    scores = []
    for image in mnist5k.x_test:
        q = np.clip(np.round(image[None] / in_scale + in_zero), -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], q)
        it.invoke()
        scores.append((it.get_tensor(out["index"])[0].astype(np.float32) - out_zero) * out_scale)
    scores = np.array(scores)
    assert exports["int8"]["accuracy"] == float(np.mean(scores.argmax(1) == mnist5k.y_test))
    np.testing.assert_allclose(export.outputs(exports["int8"]["path"], mnist5k.x_test), scores, atol=1e-6)


def test_a_model_needing_flex_ops_is_refused_in_one_line(tmp_path):
    import keras

    image = keras.Input((28, 28, 1))
    square = keras.layers.Reshape((28, 28))(image)
    gram = keras.layers.Lambda(lambda m: keras.ops.cholesky(
        keras.ops.matmul(keras.ops.transpose(m, (0, 2, 1)), m) + keras.ops.eye(28)))(square)
    model = keras.Model(image, gram, name="needs_flex")
    out = tmp_path / "flex.tflite"
    with pytest.raises(export.ExportError) as refused:
        export.convert(model, out, "none")
    message = str(refused.value)
    assert "\n" not in message and "needs tf.Cholesky" in message and "Flex" in message
    assert list(tmp_path.iterdir()) == []  # no half-written file left behind


def test_a_looped_lstm_exports_at_batch_1_but_int8_is_refused_in_one_line(tmp_path, mnist5k):
    """At batch 1 the LSTM converts to built-in ops; its int8 calibration would crash TensorFlow's calibrator."""
    import keras

    image = keras.Input((28, 28, 1))
    rows = keras.layers.LSTM(8, name="rows")(keras.layers.Reshape((28, 28))(image))
    model = keras.Model(image, keras.layers.Dense(10)(rows), name="lstm_student")
    with pytest.raises(export.ExportError) as refused:
        export.convert(model, tmp_path / "lstm-int8.tflite", "int8")
    assert "\n" not in str(refused.value) and "recurrent layer rows" in str(refused.value)
    path = export.convert(model, tmp_path / "lstm.tflite", "none")
    x = mnist5k.x_test[:5]
    np.testing.assert_allclose(export.outputs(path, x), np.asarray(model(x)), atol=1e-4)


def test_a_language_model_exports_with_its_state_and_is_scored_by_perplexity(tmp_path):
    """Windows of the training sequence length at batch 1; the state fed back gives the float model's perplexity."""
    from kdcore.tasks import lm

    text = tmp_path / "toy.txt"
    text.write_text("\n".join(f"the {a} sees a {b}" for a in ("cat", "dog", "bird") for b in ("fish", "ball")) * 5
                    + "\n")
    ds = lm.load_text(text)
    model = lm.build(len(ds.classes), 8, 2, 0.0, "student", seed=0)
    path = storage.save_model(model, storage.model_path("lm-student"),
                              {"kind": "student", "task": "lm", "dataset": str(text), "config": {"seq_len": 7},
                               "test_perplexity": 11.5})
    result = export.export(path, "none", time_keras=False)
    assert result["window_words"] == 7 and result["test_words"] == len(ds.y_test)
    assert result["float_perplexity"] == pytest.approx(lm.perplexity(model, ds.x_test, ds.y_test, 7, n=1), rel=1e-6)
    assert result["perplexity"] == pytest.approx(result["float_perplexity"], rel=1e-4)  # float32 both ways
    assert 1 < result["perplexity"] < 2 * len(ds.classes)  # untrained: near the vocabulary's size, not nonsense
    assert result["task"] == "lm" and f"perplexity {result['perplexity']:,.2f} on " in export.text(result)
    assert "accuracy" not in result and result["latency_ms"]["threads_1"]["median"] > 0
    with pytest.raises(export.ExportError, match="int8 cannot quantize the recurrent layer lstm1"):
        export.export(path, "int8", time_keras=False)

    points = export.catalogue(str(text), "perplexity")  # what the Deploy screen draws for a language model
    assert sorted((p["format"], p["score"]) for p in points) == [("keras", 11.5), ("none", result["perplexity"])]
    assert export.pareto(points, higher_is_better=False)[0]["format"] in ("keras", "none")


def test_bench_export_sets_the_three_files_side_by_side_against_the_targets(monkeypatch, student_file, exports):
    from kdcore import bench

    monkeypatch.setattr(export, "keras_latency", lambda path, threads: {"median": 2.0, "p90": 3.0})  # see the module doc
    result = bench.exports(student_file)
    assert result["int8_vs_float_bytes"] == round(result["bytes"]["int8"] / result["bytes"]["none"], 3)
    assert result["bytes"] == {q: exports[q]["bytes"] for q in export.QUANTIZE}  # the same files as before
    change = 100 * (result["accuracy"]["int8"] - result["accuracy"]["none"])
    assert result["int8_accuracy_change_points"] == round(change, 2) and result["keras_latency_ms_1_thread"] == 2.0
    assert result["meets_target"]["int8_vs_float_bytes"] is (result["int8_vs_float_bytes"] <= 0.3)


def test_an_export_never_replaces_a_file_kd_studio_did_not_write(tmp_path, student_file):
    foreign = tmp_path / "mine.tflite"
    foreign.write_bytes(b"someone else's file")
    with pytest.raises(export.ExportError, match="KD Studio did not write it"):
        export.export(student_file, "none", out=foreign, time_keras=False)
    assert foreign.read_bytes() == b"someone else's file"


def test_pareto_front_keeps_what_nothing_beats():
    points = [{"bytes": b, "score": a, "path": n} for n, b, a in
              (("big", 900, 0.98), ("mid", 300, 0.95), ("worse", 400, 0.94), ("small", 30, 0.95), ("tiny", 10, 0.90))]
    assert [p["path"] for p in export.pareto(points)] == ["tiny", "small", "big"]
    perplexities = [dict(p, score=1 / p["score"]) for p in points]  # lower is better: the same front
    assert [p["path"] for p in export.pareto(perplexities, higher_is_better=False)] == ["tiny", "small", "big"]


# --- the command line -------------------------------------------------------------------------------
def test_cli_json_has_every_field_of_the_contract(tmp_path, student_file):
    out = tmp_path / "deploy" / "student.tflite"
    proc = run_cli("--model", student_file, "--format", "litert", "--quantize", "int8", "--out", out, home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # the whole of stdout is one JSON object
    assert result["path"] == str(out) and out.stat().st_size == result["bytes"]
    assert result["quantize"] == "int8" and result["source_model"] == str(student_file)
    assert 0.5 < result["accuracy"] <= 1 and 0.5 < result["float_accuracy"] <= 1
    for key in ("latency_ms", "keras_latency_ms"):
        assert set(result[key]) == {"threads_1", "threads_2"}
        for spread in result[key].values():
            assert set(spread) == {"median", "p90"} and 0 < spread["median"] <= spread["p90"]
    assert result["keras_latency_ms"]["threads_1"]["median"] > result["latency_ms"]["threads_1"]["median"]


@pytest.mark.parametrize("case, problem", [
    ("not-a-model", "notes.keras is damaged or not a Keras model"),
    ("tflite-as-model", "is not a .keras model file"),
    ("no-calibration-data", "int8 needs training images to calibrate on"),
    ("unwritable", "is a file, not a folder"),
    ("custom-layer", "needs custom Python code to load"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, mlp, case, problem):
    model = tmp_path / "model.keras"
    args = ["--model", model, "--quantize", "int8"]
    if case == "not-a-model":
        args[1] = tmp_path / "notes.keras"
        args[1].write_text("this is not a model\n")
    elif case == "tflite-as-model":
        args[1] = tmp_path / "model.tflite"
        args[1].write_bytes(b"TFL3")
    elif case == "no-calibration-data":
        storage.save_model(mlp, model, {"kind": "student"})  # a sidecar that names no dataset
    elif case == "unwritable":
        storage.save_model(mlp, model, {"kind": "student", "dataset": "mnist-5k"})
        (tmp_path / "a-file").write_text("")
        args += ["--out", tmp_path / "a-file" / "student.tflite"]
    else:  # the class is registered in this process only: the CLI's process has never heard of it
        import keras

        @keras.saving.register_keras_serializable(package="theirs")
        class Twice(keras.layers.Layer):
            def call(self, x):
                return 2 * x

        image = keras.Input((28, 28, 1))
        custom = keras.Model(image, keras.layers.Dense(10)(keras.layers.Flatten()(Twice()(image))))
        storage.save_model(custom, model, {"kind": "student", "dataset": "mnist-5k"})
    proc = run_cli(*args, home=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and problem in proc.stderr and "Traceback" not in proc.stderr


# --- the Deploy screen ---------------------------------------------------------------------------------
def open_deploy():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["dataset"] = "mnist-5k"
    at.switch_page("pages/deploy.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_points(at) -> int:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return sum(len(trace["x"]) for trace in spec["data"] if trace.get("mode") == "markers")


def test_deploy_page_without_models_says_so():
    at = open_deploy()
    assert at.info[0].value.startswith("Export a distilled student to int8")
    assert at.info[1].value.startswith("No saved model for this dataset yet")
    assert chart_points(at) == 0


def test_deploy_page_answers_the_question_and_exports_a_new_point(kd_home, monkeypatch, mlp, teacher_file):
    keras_ms = {"teacher": 4.0, "student": 1.0}
    monkeypatch.setattr(export, "keras_latency",
                        lambda path, threads: {"median": keras_ms[storage.read_sidecar(path)["kind"]], "p90": 5.0})
    teacher = storage.save_model(storage.load_model(teacher_file), storage.model_path("teacher"),
                                 {"kind": "teacher", "dataset": "mnist-5k", "test_accuracy": 0.93})
    student = storage.save_model(mlp, storage.model_path("student"),
                                 {"kind": "student", "dataset": "mnist-5k", "test_accuracy": 0.85,
                                  "teacher": str(teacher)})
    export.export(teacher, "none")
    int8 = export.export(student, "int8")

    at = open_deploy()
    assert chart_points(at) == 4  # two .keras models, two exports
    smaller = storage.read_sidecar(teacher)["file_bytes"] / int8["bytes"]
    faster = 4.0 / int8["latency_ms"]["threads_1"]["median"]
    lost = 100 * (0.93 - int8["accuracy"])
    assert at.markdown[0].value == (f"**The int8 distilled student is {smaller:,.0f}× smaller and {faster:,.0f}× "
                                    f"faster than the teacher (teacher.keras, run by Keras) and "
                                    f"{lost:.1f} points less accurate.**")
    assert len(at.dataframe[0].value) == 2 and at.get("download_button")

    at.selectbox(key="deploy_model").set_value(str(student))
    at.radio(key="deploy_quantize").set_value("float16")
    at.button(key="deploy_export").click().run()
    from kdcore.jobs import runner

    job = runner().get(at.session_state["deploy_job"])
    assert job.wait(120) and job.status == "finished", job.error
    at.run()
    assert not at.exception and chart_points(at) == 5
    assert f"saved as {job.result['path']}" in at.success[0].value
    assert len(at.dataframe[0].value) == 3


@pytest.mark.browser
@pytest.mark.timeout(900)  # about a minute on a quiet machine; the server and Chromium share two busy cores
def test_browser_export_from_the_deploy_screen_adds_a_point(tmp_path, monkeypatch, student_file):
    """The real dashboard in Chromium: press Export, and the int8 file appears on the chart."""
    import shutil

    from playwright.sync_api import expect, sync_playwright

    from tests.support.e2e_server import CHROMIUM, Dashboard, launch_browser

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (./scripts/test does)", pytrace=False)
    models = tmp_path / "kdhome" / "models"
    models.mkdir(parents=True)
    source = shutil.copy2(student_file, models / "student.keras")
    storage.write_json(storage.sidecar_path(source), dict(storage.read_sidecar(student_file), test_accuracy=0.9))
    # A float export made here, with fixed Keras figures, lets the server reuse them instead of timing Keras
    # in two fresh processes: this test is about the screen.
    monkeypatch.setattr(export, "keras_latency", lambda path, threads: {"median": 2.0, "p90": 3.0})
    export.export(source, "none")
    app = Dashboard(tmp_path / "kdhome")
    try:
        with sync_playwright() as p:
            browser = launch_browser(p)
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.goto(app.url + "/deploy")
            expect(tab.get_by_role("heading", name="Deploy").first).to_be_visible(timeout=120_000)
            chart = tab.locator("[data-testid=stPlotlyChart] .js-plotly-plot").first
            count = ("g => g.data.filter(t => t.mode === 'markers')"
                     ".reduce((n, t) => n + t.x.length, 0)")
            expect(chart).to_be_visible(timeout=120_000)
            assert chart.evaluate(count) == 2  # the .keras student and its float export
            tab.get_by_role("button", name="Export", exact=True).click()
            tab.wait_for_function(f"() => {{ const g = document.querySelector("
                                  f"'[data-testid=stPlotlyChart] .js-plotly-plot'); "
                                  f"return g && ({count})(g) === 3; }}", timeout=600_000)
            expect(tab.get_by_text("student-int8.tflite").first).to_be_visible()
            browser.close()
    finally:
        app.stop()
    assert "Traceback" not in app.log_text()
