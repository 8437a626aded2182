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
    "The teacher's softened probabilities (a 7 that looks a little like a 1) carry what it learnt about how "
    "digits resemble each other, and a student taught with them often beats the same student trained on labels "
    "alone. Here you train the teacher, distil students of any size and compare each with its from-scratch twin."
)


def _glance(column, kind: str, page: str) -> None:
    meta = state.active_model(kind)
    with column.container(border=True):
        st.markdown(f"**{kind.title()}**")
        if meta is None:
            st.caption(f"None yet — make one on the {page} page or run the demo below.")
            return
        acc = meta.get("test_accuracy")
        st.metric(meta["name"], f"{acc:.1%}" if acc is not None else "—", help="test accuracy")
        facts = [f"{meta['params']:,} parameters" if meta.get("params") else "", meta.get("dataset", "")]
        if meta.get("baseline_accuracy") is not None:
            facts.append(f"baseline {meta['baseline_accuracy']:.1%}")
        st.caption(" · ".join(f for f in facts if f))


left, right = st.columns(2)
_glance(left, "teacher", "Teacher")
_glance(right, "student", "Distill")

st.subheader("Quick demo")
preset = presets.get("quick")
st.caption(f"{preset['description']} Runs on {preset['dataset']}; the models it saves become the active ones.")
job = job_panel.current_job("demo")
busy = job is not None and job.status.active
if st.button("Run quick demo", type="primary", disabled=busy):
    from kdcore import pipeline

    job_panel.start_job("demo", lambda: pipeline.start_demo(*presets.configs("quick"), preset["dataset"]))

if job is not None:
    job_panel.show(job)
    if job.status == "finished":
        job_panel.distill_outcome(job.result)
