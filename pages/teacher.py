"""Teacher: train the big network in the background, or pick one saved earlier.

The task and dataset come from the sidebar; the settings, their ranges and
help come from kdcore's settings table. A finished teacher becomes the
active one, which the Distill page then teaches from. "Teachers to train"
above 1 trains an ensemble in one job: the same recipe with seeds seed,
seed + 1, …, each saved under the ensemble's group name, which the Distill
page offers as one choice.
"""
import streamlit as st

from kdcore import params, pipeline, presets
from pages import job_panel, state

task = state.task()
st.title("Teacher")
st.caption("The large network whose softened predictions the student learns from. "
           f"It trains on **{state.dataset_name()}** (change the task or dataset in the sidebar).")

saved = state.saved_models("teacher")
if saved:
    paths = [m["path"] for m in saved]
    by_path = {m["path"]: m for m in saved}
    active = state.active_model("teacher")

    def _describe(path: str) -> str:
        meta = by_path[path]
        score = meta.get(f"test_{task.metric.name}")
        shown = task.metric.format(score) if score is not None else f"{task.metric.name} unknown"
        group = f", ensemble {meta['group']}" if meta.get("group") else ""
        return f"{meta['name']} — {shown}, {meta.get('dataset', 'dataset unknown')}{group}"

    chosen = st.selectbox("Active teacher", paths, index=paths.index(active["path"]), format_func=_describe,
                          help="Saved teachers, newest first. The Distill page teaches from this one.")
    if chosen != active["path"]:
        state.set_active_model("teacher", chosen)
        st.rerun()  # the sidebar, drawn before this page, names the active teacher too
else:
    st.info("No teacher saved yet: train one below.", icon=":material/info:")

st.subheader("Train a new teacher")
recipes = presets.names(task.name)
start = task.flat(presets.configs(recipes[0])[0]) if recipes else {}
own, train = st.columns(2)
values = {}
for name in task.teacher_params():
    column = train if params.get(name, task.name).group == "train" else own
    values[name] = state.setting(name, "teacher", start.get(name, params.get(name, task.name).default_for("teacher")),
                                 column)
n = state.setting("ensemble", "teacher", 1, train)
cfg = task.teacher_from(values)
size = task.teacher_size(cfg, state.current_dataset())
own.caption(f"{size['params']:,} parameters · {size['macs']:,} multiply-adds per example")

job = job_panel.current_job("teacher")
busy = job is not None and job.status.active
if st.button("Train teacher" if n == 1 else f"Train {n} teachers", type="primary", disabled=busy):
    job_panel.start_job("teacher", lambda: pipeline.start_teacher(cfg, state.dataset_name(), task=task) if n == 1
                        else pipeline.start_teachers(cfg, n, state.dataset_name(), task=task))

if job is not None:
    job_panel.show(job)
    if job.status == "finished":
        members = getattr(job.result, "members", [job.result])  # an ensemble's job holds each member's result
        for i, (column, member) in enumerate(zip(st.columns(len(members)), members)):
            column.metric(f"Teacher test {task.metric.name}" if len(members) == 1 else
                          f"Seed {job.config['seed'] + i} test {task.metric.name}", task.metric.format(member.score),
                          help=f"Scored once, on the final model; valid {task.metric.format(member.valid_score)} "
                               "(the curves above are valid's).")
        if len(members) == 1:
            st.caption(f"Saved as {job.result.model}; it is now the active teacher.")
        else:
            st.caption(f"Saved as ensemble {job.result.group} ({len(members)} files); its first member is now the "
                       "active teacher, and the Distill page can teach from the whole ensemble.")
        st.page_link("pages/distill.py", label="Distil a student from it", icon=":material/science:")
