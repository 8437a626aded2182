"""Home: what distillation is, the models at hand, and a one-click demo that shows everything move.

The first screen a visitor sees must paint at once: it reads sidecar files
only, never loads a model, and imports the training pipeline only when the
demo button is pressed.
"""
import streamlit as st

from kdcore import presets
from pages import job_panel, state

st.title("KD Studio")
st.markdown(
    "**Knowledge distillation** trains a small *student* network to copy a large *teacher*, not just its answers. "
    f"{state.task().soft_targets_story} A student taught with them often beats the same student trained without "
    "them. Here you train the teacher, distil students of any size and compare each with its from-scratch twin."
)


def _glance(column, kind: str, page: str) -> None:
    meta = state.active_model(kind)
    with column.container(border=True):
        st.markdown(f"**{kind.title()}**")
        if meta is None:
            st.caption(f"None yet — make one on the {page} page or run the demo below.")
            return
        metric = state.task().metric
        score = meta.get(f"test_{metric.name}")
        st.metric(meta["name"], metric.format(score) if score is not None else "—", help=f"test {metric.name}")
        facts = [f"{meta['params']:,} parameters" if meta.get("params") else "", meta.get("dataset", "")]
        if meta.get(f"baseline_{metric.name}") is not None:
            facts.append(f"baseline {metric.format(meta[f'baseline_{metric.name}'])}")
        st.caption(" · ".join(f for f in facts if f))


left, right = st.columns(2)
_glance(left, "teacher", "Teacher")
_glance(right, "student", "Distill")

st.subheader("Quick demo")
task = state.task()
demo = presets.demo(task.name)
if demo is None:
    st.caption(f"{task.title} has no quick demo yet: train a teacher on the Teacher page.")
    st.stop()
preset = presets.get(demo)
teacher_reads = (f"The teacher reads {preset['teacher_dataset']}; the students run on {preset['dataset']}"
                 if preset.get("teacher_dataset") else f"Runs on {preset['dataset']}")
st.caption(f"{preset['description']} {teacher_reads}, which becomes the chosen dataset; the models it saves become "
           "the active ones.")
job = job_panel.current_job("demo")
busy = job is not None and job.status.active
if st.button("Run quick demo", type="primary", disabled=busy,
             on_click=state.choose_demo_dataset):
    from kdcore import pipeline

    job_panel.start_job("demo", lambda: pipeline.start_demo(*presets.configs(demo), preset["dataset"],
                                                            task=task.name,
                                                            teacher_dataset=preset.get("teacher_dataset")))

if job is not None:
    job_panel.show(job)
    if job.status == "finished":
        job_panel.distill_outcome(job.result)
