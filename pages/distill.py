"""Distill: size a student, set temperature and alpha, pick or edit the recipe, and distil it from the active teacher.

Every input comes from kdcore's settings table (label, range, step, help) for
the task chosen in the sidebar, and every setting is mirrored in the page's
URL (``?student_units=64&temperature=8...``), so a copied link reproduces the
run. "Teach from" picks the active teacher, an ensemble trained on the Teacher
page (one choice for its members), or several saved teachers: an ensemble's
soft targets are averaged as *Ensemble: average* says. The student and its
from-scratch baseline train in a background job; the curves below poll it.
"""
import pandas as pd
import streamlit as st

from kdcore import ensemble, params, pipeline, presets, storage
from kdcore.config import DistillConfig, from_dict
from pages import job_panel, recipe_editor, state

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
saved = {m["path"]: m for m in state.saved_models("teacher")}
groups = ensemble.groups(list(saved.values()))
options = ["active", *(f"ensemble:{g}" for g in groups), *(["several"] if len(saved) > 1 else [])]


def _option(option: str) -> str:
    if option == "active":
        return f"the active teacher, {teacher['name']}"
    if option == "several":
        return "several saved teachers (an ensemble)…"
    group = option.removeprefix("ensemble:")
    return f"the ensemble {group} ({len(groups[group])} teachers)"


how = st.selectbox("Teach from", options, format_func=_option, key="distill.teach_from",
                   help="One teacher, or an ensemble whose members' soft targets are averaged (Hinton et al. 2015).",
                   ) if len(options) > 1 else "active"
if how == "several":
    teachers = st.multiselect("Teachers", list(saved), default=[teacher["path"]], key="distill.teachers",
                              format_func=lambda path: saved[path]["name"])
    if not teachers:
        st.info("Pick at least one teacher.", icon=":material/info:")
        st.stop()
else:
    teachers = groups[how.removeprefix("ensemble:")] if how != "active" else [teacher["path"]]
picked = [saved.get(path, teacher) for path in teachers]
score = picked[0].get(f"test_{task.metric.name}")
if len(picked) == 1:
    st.caption(f"Teacher: **{picked[0]['name']}**"
               + (f" ({task.metric.format(score)} test {task.metric.name})" if score is not None else "")
               + f" · dataset **{data.name}** (sidebar)")
else:
    st.caption("Teachers: " + ", ".join(f"**{m['name']}**" for m in picked) + f" · dataset **{data.name}** (sidebar)")
for meta in picked:
    if meta.get("dataset") and meta["dataset"] != data.name:
        st.warning(f"Teacher {meta['name']} was trained on {meta['dataset']}, not {data.name}: pick another "
                   "teacher on the Teacher page or another dataset in the sidebar.", icon=":material/error:")

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
average = (state.setting("ensemble_average", "distill", params.get("ensemble_average").default, soft)
           if len(teachers) > 1 else "probs")

url = params.to_url(values)
if st.query_params.to_dict() != url:
    st.query_params.from_dict(url)

cfg = task.distill_from(values)
sizes = [task.teacher_size(from_dict(task.teacher_config, meta["config"]), state.current_dataset())
         if meta.get("config") else {"params": meta.get("params")} for meta in picked]
teacher_size = {key: None if any(s.get(key) is None for s in sizes) else sum(s[key] for s in sizes)
                for key in ("params", "macs", "weight_bytes")}  # an ensemble: its members together
student_size = task.student_size(cfg.student, state.current_dataset())
with table:
    st.markdown("**Teacher vs student**")
    st.dataframe(_sizes(teacher_size, student_size))
    if teacher_size.get("params"):
        st.metric("Compression", f"{teacher_size['params'] / student_size['params']:.1f}×",
                  help="Teacher parameters ÷ student parameters")

for note in pipeline.notes(cfg, teacher_size.get("params"), task, picked[0].get("config")):
    st.warning(note, icon=":material/lightbulb:")

cfg.recipe, refused = recipe_editor.section(task, cfg, picked[0])  # None: the recipe the settings describe

job = job_panel.current_job("distill")
busy = job is not None and job.status.active


def _start(config: DistillConfig, teacher_path, dataset: str, how: str) -> None:
    job_panel.start_job("distill", lambda: pipeline.start_distill(config, teacher_path, dataset, task=task,
                                                                  average=how))


if st.button("Distil student", type="primary", disabled=busy or refused):
    _start(cfg, teachers if len(teachers) > 1 else teachers[0], state.dataset_name(), average)

if job is not None:
    job_panel.show(job)
    if job.status == "finished":
        job_panel.distill_outcome(job.result)
        members = job.result.more.get("ensemble", {}).get("members", [])
        if members:
            st.caption(f"The teacher's score is the ensemble's ({job.result.more['ensemble']['average']} averaged); "
                       "its members alone: " + ", ".join(
                           f"{m['name']} {task.metric.format(m.get(f'test_{task.metric.name}'))}" for m in members))
        st.page_link("pages/deploy.py", label="Export for deployment: size, speed and accuracy as LiteRT int8 or float16",
                     icon=":material/rocket_launch:")
    elif job.status in ("stopped", "failed", "interrupted"):
        again, discard = st.columns([1, 5])
        if again.button("Run again"):
            settings = {k: v for k, v in job.config.items() if k not in ("teacher", "task", "ensemble_average")}
            _start(from_dict(task.distill_class(), settings, task), job.config["teacher"],
                   state.dataset_name() if job.dataset == data.name else job.dataset,
                   job.config.get("ensemble_average", "probs"))
        if discard.button("Discard"):
            storage.run_store().delete(job.run_id)
            job_panel.remember_job("distill", None)
            st.rerun()
