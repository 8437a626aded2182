"""Distill: size a student, set temperature and alpha, and distil it from the active teacher.

Every input comes from kdcore's settings table (label, range, step, help) for
the task chosen in the sidebar, and every setting is mirrored in the page's
URL (``?student_units=64&temperature=8...``), so a copied link reproduces the
run. The student and its from-scratch baseline train in a background job; the
curves below poll it.
"""
import pandas as pd
import streamlit as st

from kdcore import params, pipeline, presets, storage
from kdcore.config import DistillConfig, from_dict
from pages import job_panel, state

task = state.task()
NAMES = task.student_params() + task.distill_params()
PRESETS = [name for name in presets.names(task.name) if "omit_class" not in presets.get(name)]  # omit: Experiments


def _from_url() -> tuple[dict, list[str]]:
    """Settings from a shared link on top of the defaults, and what had to be changed to fit the sliders.

    A value the settings table refuses is named in one sentence and the
    defaults are used instead; a valid value beyond a slider's end is moved to that end.
    """
    values, notes = task.flat(task.default_distill()), []
    try:
        values |= params.from_url(st.query_params.to_dict(), NAMES, task.name)
        task.distill_from(values).validate()
    except ValueError as exc:
        return task.flat(task.default_distill()), [f"The link's settings were not used: {exc}."]
    for name in NAMES:
        clipped = params.clip_to_widget(name, values[name], task.name)
        if clipped is not None:
            notes.append(f"{name} {values[name]} is outside the slider's range, so {clipped} is used.")
            values[name] = clipped
    return values, notes


def _apply_preset() -> None:
    name = st.session_state["distill.preset"]
    if name in PRESETS:
        for key, value in task.flat(presets.configs(name)[1]).items():
            st.session_state[f"distill.{key}"] = value


def _sizes(teacher: dict, student: dict) -> pd.DataFrame:
    def fmt(key, value):
        if value is None:
            return "—"
        return f"{value / 1e6:.2f} MB" if key == "weight_bytes" else f"{value:,}"

    rows = {"Parameters": "params", "Multiply-adds per example": "macs", "Weights (float32)": "weight_bytes"}
    table = {label: {"Teacher": fmt(key, teacher.get(key)), "Student": fmt(key, student[key]),
                     "Teacher ÷ student": f"{teacher[key] / student[key]:.1f}×" if teacher.get(key) else "—"}
             for label, key in rows.items()}
    return pd.DataFrame(table).T


st.title("Distill")
if st.session_state.get("distill.url_read") != task.name:  # once per session and task: a link's settings
    st.session_state["distill.url_read"] = task.name
    start, url_notes = _from_url()
    st.session_state.setdefault("kept", {}).update({f"distill.{k}": v for k, v in start.items()})
    for note in url_notes:
        st.warning(note, icon=":material/link:")
teacher = state.active_model("teacher")
if teacher is None:
    st.info("There is no teacher yet: distillation needs one to learn from.", icon=":material/info:")
    st.page_link("pages/teacher.py", label="Train a teacher first", icon=":material/school:")
    st.stop()
data = state.current_dataset()
score = teacher.get(f"test_{task.metric.name}")
st.caption(f"Teacher: **{teacher['name']}**"
           + (f" ({task.metric.format(score)} test {task.metric.name})" if score is not None else "")
           + f" · dataset **{data.name}** (sidebar)")
if teacher.get("dataset") and teacher["dataset"] != data.name:
    st.warning(f"This teacher was trained on {teacher['dataset']}, not {data.name}: "
               "pick another teacher on the Teacher page or another dataset in the sidebar.", icon=":material/error:")

if PRESETS:
    st.selectbox("Preset", ["custom", *PRESETS], key="distill.preset", on_change=_apply_preset,
                 help="Fills in the settings below from a named recipe; change any of them afterwards. "
                      "Recipes that leave a class out of the transfer set are on the Experiments page.")
    if st.session_state["distill.preset"] != "custom":
        chosen = presets.get(st.session_state["distill.preset"])
        st.caption(chosen["description"] + (f" Made for {chosen['dataset']}." if chosen["dataset"] != data.name else ""))

defaults = task.flat(task.default_distill())
size, table = st.columns([2, 3])
soft, train = st.columns(2)
size.markdown("**Student size**")
soft.markdown("**Distillation**")
train.markdown("**Training**")
where = {"student": size, "distill": soft, "train": train}
values = {name: state.setting(name, "distill", defaults[name], where[params.get(name, task.name).group])
          for name in NAMES}

url = params.to_url(values)
if st.query_params.to_dict() != url:
    st.query_params.from_dict(url)

cfg = task.distill_from(values)
teacher_size = (task.teacher_size(from_dict(task.teacher_config, teacher["config"]),
                                  state.current_dataset())
                if teacher.get("config") else {"params": teacher.get("params")})
student_size = task.student_size(cfg.student, state.current_dataset())
with table:
    st.markdown("**Teacher vs student**")
    st.dataframe(_sizes(teacher_size, student_size))
    if teacher_size.get("params"):
        st.metric("Compression", f"{teacher_size['params'] / student_size['params']:.1f}×",
                  help="Teacher parameters ÷ student parameters")

for note in pipeline.notes(cfg, teacher_size.get("params"), task, teacher.get("config")):
    st.warning(note, icon=":material/lightbulb:")

job = job_panel.current_job("distill")
busy = job is not None and job.status.active


def _start(config: DistillConfig, teacher_path: str, dataset: str) -> None:
    job_panel.start_job("distill", lambda: pipeline.start_distill(config, teacher_path, dataset, task=task))


if st.button("Distil student", type="primary", disabled=busy):
    _start(cfg, teacher["path"], state.dataset_name())

if job is not None:
    job_panel.show(job)
    if job.status == "finished":
        job_panel.distill_outcome(job.result)
        st.page_link("pages/deploy.py", label="Export for deployment: size, speed and accuracy as LiteRT int8 or float16",
                     icon=":material/rocket_launch:")
    elif job.status in ("stopped", "failed", "interrupted"):
        again, discard = st.columns([1, 5])
        if again.button("Run again"):
            settings = {k: v for k, v in job.config.items() if k not in ("teacher", "task")}
            _start(from_dict(task.distill_class(), settings, task), job.config["teacher"],
                   state.dataset_name() if job.dataset == data.name else job.dataset)
        if discard.button("Discard"):
            storage.run_store().delete(job.run_id)
            job_panel.remember_job("distill", None)
            st.rerun()
