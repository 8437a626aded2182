"""Teacher: train the big network in the background, or pick one saved earlier.

The dataset comes from the sidebar. A finished teacher becomes the active
one, which the Distill page then teaches from.
"""
import streamlit as st

from kdcore import pipeline, presets, storage
from kdcore.config import TEACHER_VARIANTS, TeacherConfig, from_dict
from kdcore.models import teacher_stats
from pages import widgets

st.title("Teacher")
st.caption("The large network whose softened predictions the student learns from. "
           f"It trains on **{widgets.dataset_name()}** (change the dataset in the sidebar).")

saved = storage.list_models("teacher")
if saved:
    paths = [m["path"] for m in saved]
    by_path = {m["path"]: m for m in saved}
    active = widgets.active_model("teacher")

    def _describe(path: str) -> str:
        meta = by_path[path]
        acc = f"{meta['test_accuracy']:.1%}" if meta.get("test_accuracy") is not None else "accuracy unknown"
        return f"{meta['name']} — {acc}, {meta.get('dataset', 'dataset unknown')}"

    chosen = st.selectbox("Active teacher", paths, index=paths.index(active["path"]), format_func=_describe,
                          help="Saved teachers, newest first. The Distill page teaches from this one.")
    if chosen != active["path"]:
        widgets.set_active_model("teacher", chosen)
        st.rerun()  # the sidebar, drawn before this page, names the active teacher too
else:
    st.info("No teacher saved yet: train one below.", icon=":material/info:")

st.subheader("Train a new teacher")
start = TeacherConfig(**presets.get("default")["teacher"])
left, right = st.columns(2)
with left:
    variant = widgets.kept(st.selectbox, "Teacher network", "teacher.variant", start.variant,
                           options=TEACHER_VARIANTS,
                           format_func=lambda v: f"{v} ({teacher_stats(TeacherConfig(variant=v))['params']:,} parameters)")
    dropout = widgets.kept(st.slider, "Dropout", "teacher.dropout", start.dropout,
                           min_value=0.0, max_value=0.9, step=0.05)
    augment = widgets.kept(st.checkbox, "Augmentation (random shifts)", "teacher.augment", start.augment,
                           help="Shifts each training digit by up to 10 % so the teacher generalises better.")
with right:
    epochs = widgets.kept(st.number_input, "Epochs", "teacher.epochs", start.epochs, min_value=1, max_value=1000)
    batch = widgets.kept(st.number_input, "Batch size", "teacher.batch_size", start.batch_size,
                         min_value=1, max_value=8192)
    rate = widgets.kept(st.number_input, "Learning rate", "teacher.learning_rate", start.learning_rate,
                        min_value=1e-5, max_value=1.0, step=1e-4, format="%.4f")

job = widgets.current_job("teacher")
busy = job is not None and job.status in ("queued", "running")
if st.button("Train teacher", type="primary", disabled=busy):
    cfg = from_dict(TeacherConfig, {"variant": variant, "dropout": dropout, "augment": augment,
                                    "epochs": int(epochs), "batch_size": int(batch), "learning_rate": rate})
    widgets.start_job("teacher", lambda: pipeline.start_teacher(cfg, widgets.dataset_name()))

if job is not None:
    widgets.job_panel(job)
    if job.status == "finished":
        st.metric("Teacher test accuracy", f"{job.result['test_accuracy']:.1%}")
        st.caption(f"Saved as {job.result['model']}; it is now the active teacher.")
        st.page_link("pages/distill.py", label="Distil a student from it", icon=":material/science:")
