"""Distill: size a student, set temperature and alpha, and distil it from the active teacher.

Every setting is mirrored in the page's URL (``?units=64&temperature=8...``),
so a copied link reproduces the run. The student and its from-scratch
baseline train in a background job; the curves below poll it.
"""
import pandas as pd
import streamlit as st

from kdcore import pipeline, presets, storage
from kdcore.config import LOSS_MODES, DistillConfig, TeacherConfig, from_dict, to_dict
from kdcore.models import student_stats, teacher_stats
from pages import widgets

# URL/setting name → (type, widget bounds or None). Bounds are the sliders' own; kdcore.config validates.
FIELDS = {
    "filters": (int, (0, 64)), "units": (int, (8, 1024)), "layers": (int, (1, 4)),
    "temperature": (float, (0.5, 20.0)), "alpha": (float, (0.0, 1.0)), "loss": (str, None),
    "epochs": (int, None), "batch_size": (int, None), "learning_rate": (float, None),
    "labels_fraction": (float, (0.025, 1.0)), "hint_epochs": (int, None), "baseline": (bool, None),
}
STUDENT = ("filters", "units", "layers")
PRESETS = [name for name in presets.names() if "omit_class" not in presets.get(name)]  # omitting a class: Experiments


def _flat(cfg: DistillConfig) -> dict:
    """The config as the page's flat settings, each of its widget's type (a float slider refuses an int)."""
    values = {k: v for k, v in to_dict(cfg).items() if k in FIELDS}
    values |= {k: getattr(cfg.student, k) for k in STUDENT}
    return {k: FIELDS[k][0](v) for k, v in values.items()}


def _config(values: dict) -> DistillConfig:
    rest = {k: v for k, v in values.items() if k not in STUDENT}
    return from_dict(DistillConfig, {**rest, "student": {k: values[k] for k in STUDENT}})


def _parse(key: str, text: str):
    kind = FIELDS[key][0]
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{key} must be true or false (got {text!r})")
        return text.lower() in ("true", "1")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{key} must be {'a whole number' if kind is int else 'a number'} (got {text!r})") from None


def _from_url() -> tuple[dict, list[str]]:
    """Settings from a shared link on top of the defaults, and what had to be changed to fit the sliders.

    A value kdcore.config refuses is named in one sentence and the defaults are
    used instead; a valid value beyond a slider's end is moved to that end.
    """
    values, notes = _flat(DistillConfig()), []
    try:
        values |= {k: _parse(k, st.query_params[k]) for k in FIELDS if k in st.query_params}
        _config(values).validate()
    except ValueError as exc:
        return _flat(DistillConfig()), [f"The link's settings were not used: {exc}."]
    for key, (_, bounds) in FIELDS.items():
        if bounds and not bounds[0] <= values[key] <= bounds[1]:
            clipped = min(max(values[key], bounds[0]), bounds[1])
            notes.append(f"{key} {values[key]} is outside the slider's range, so {clipped} is used.")
            values[key] = clipped
    return values, notes


def _apply_preset() -> None:
    name = st.session_state["distill.preset"]
    if name in PRESETS:
        for key, value in _flat(presets.configs(name)[1]).items():
            st.session_state[f"distill.{key}"] = value


def _sizes(teacher: dict, student: dict) -> pd.DataFrame:
    def fmt(key, value):
        if value is None:
            return "—"
        return f"{value / 1e6:.2f} MB" if key == "weight_bytes" else f"{value:,}"

    rows = {"Parameters": "params", "Multiply-adds per image": "macs", "Weights (float32)": "weight_bytes"}
    table = {label: {"Teacher": fmt(key, teacher.get(key)), "Student": fmt(key, student[key]),
                     "Teacher ÷ student": f"{teacher[key] / student[key]:.1f}×" if teacher.get(key) else "—"}
             for label, key in rows.items()}
    return pd.DataFrame(table).T


st.title("Distill")
if "distill.url_read" not in st.session_state:  # once per session: a link's settings, then the user's
    st.session_state["distill.url_read"] = True
    start, url_notes = _from_url()
    st.session_state.setdefault("kept", {}).update({f"distill.{k}": v for k, v in start.items()})
    for note in url_notes:
        st.warning(note, icon=":material/link:")
teacher = widgets.active_model("teacher")
if teacher is None:
    st.info("There is no teacher yet: distillation needs one to learn from.", icon=":material/info:")
    st.page_link("pages/teacher.py", label="Train a teacher first", icon=":material/school:")
    st.stop()
data = widgets.current_dataset()
st.caption(f"Teacher: **{teacher['name']}**"
           + (f" ({teacher['test_accuracy']:.1%} test accuracy)" if teacher.get("test_accuracy") is not None else "")
           + f" · dataset **{data.name}** (sidebar)")
if teacher.get("dataset") and teacher["dataset"] != data.name:
    st.warning(f"This teacher was trained on {teacher['dataset']}, not {data.name}: "
               "pick another teacher on the Teacher page or another dataset in the sidebar.", icon=":material/error:")

defaults = _flat(DistillConfig())

st.selectbox("Preset", ["custom", *PRESETS], key="distill.preset", on_change=_apply_preset,
             help="Fills in the settings below from a named recipe; change any of them afterwards. "
                  "Recipes that leave a digit out of the transfer set are on the Experiments page.")
if st.session_state["distill.preset"] != "custom":
    chosen = presets.get(st.session_state["distill.preset"])
    st.caption(chosen["description"] + (f" Made for {chosen['dataset']}." if chosen["dataset"] != data.name else ""))

values = {}
size, table = st.columns([2, 3])
with size:
    st.markdown("**Student size**")
    values["filters"] = widgets.kept(st.slider, "Conv filters (0 = MLP)", "distill.filters", defaults["filters"],
                                     min_value=0, max_value=64)
    values["units"] = widgets.kept(st.slider, "Hidden units", "distill.units", defaults["units"],
                                   min_value=8, max_value=1024, step=8)
    values["layers"] = widgets.kept(st.slider, "Hidden layers", "distill.layers", defaults["layers"],
                                    min_value=1, max_value=4)

soft, train = st.columns(2)
with soft:
    st.markdown("**Distillation**")
    values["temperature"] = widgets.kept(st.slider, "Temperature T", "distill.temperature", defaults["temperature"],
                                         min_value=0.5, max_value=20.0, step=0.5)
    values["alpha"] = widgets.kept(st.slider, "Alpha (weight of the soft targets)", "distill.alpha", defaults["alpha"],
                                   min_value=0.0, max_value=1.0, step=0.05)
    values["loss"] = widgets.kept(st.selectbox, "Soft loss", "distill.loss", defaults["loss"], options=LOSS_MODES)
    values["labels_fraction"] = widgets.kept(
        st.slider, "Share of training labels the student sees", "distill.labels_fraction",
        defaults["labels_fraction"], min_value=0.025, max_value=1.0, step=0.025,
        help="The rest of the training digits are taught by the teacher's soft targets alone.")
with train:
    st.markdown("**Training**")
    values["epochs"] = widgets.kept(st.number_input, "Epochs", "distill.epochs", defaults["epochs"],
                                    min_value=1, max_value=1000)
    values["batch_size"] = widgets.kept(st.number_input, "Batch size", "distill.batch_size", defaults["batch_size"],
                                        min_value=1, max_value=8192)
    values["learning_rate"] = widgets.kept(st.number_input, "Learning rate", "distill.learning_rate",
                                           defaults["learning_rate"], min_value=1e-5, max_value=1.0, step=1e-4,
                                           format="%.4f")
    values["hint_epochs"] = widgets.kept(st.number_input, "FitNets hint epochs (0 = off)", "distill.hint_epochs",
                                         defaults["hint_epochs"], min_value=0, max_value=1000)
    values["baseline"] = widgets.kept(st.checkbox, "Train baseline too", "distill.baseline", defaults["baseline"],
                                      help="The same student, same start, trained from the labels alone.")

url = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}
if st.query_params.to_dict() != url:
    st.query_params.from_dict(url)

cfg = _config(values)
teacher_size = (teacher_stats(from_dict(TeacherConfig, teacher["config"])) if teacher.get("config")
                else {"params": teacher.get("params")})
with table:
    st.markdown("**Teacher vs student**")
    st.dataframe(_sizes(teacher_size, student_stats(cfg.student)))
    if teacher_size.get("params"):
        st.metric("Compression", f"{teacher_size['params'] / student_stats(cfg.student)['params']:.1f}×",
                  help="Teacher parameters ÷ student parameters")

for note in pipeline.notes(cfg, teacher_size.get("params")):
    st.warning(note, icon=":material/lightbulb:")

job = widgets.current_job("distill")
busy = job is not None and job.status in ("queued", "running")


def _start(config: DistillConfig, teacher_path: str, dataset: str) -> None:
    widgets.start_job("distill", lambda: pipeline.start_distill(config, teacher_path, dataset))


if st.button("Distil student", type="primary", disabled=busy):
    _start(cfg, teacher["path"], widgets.dataset_name())

if job is not None:
    widgets.job_panel(job)
    if job.status == "finished":
        widgets.distill_outcome(job.result)
    elif job.status in ("stopped", "failed", "interrupted"):
        again, discard = st.columns([1, 5])
        if again.button("Run again"):
            settings = dict(job.config)
            _start(from_dict(DistillConfig, {k: v for k, v in settings.items() if k != "teacher"}),
                   settings["teacher"], widgets.dataset_name() if job.dataset == data.name else job.dataset)
        if discard.button("Discard"):
            storage.run_store().delete(job.run_id)
            widgets.remember_job("distill", None)
            st.rerun()
