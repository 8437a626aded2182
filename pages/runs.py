"""Runs: every training run this data directory has seen, their curves side by side, and deletion.

The history is the SQLite run store that the job runner writes on every
epoch, so a run that was stopped, failed or cut short by a restart is listed
with the reason it ended.
"""
import pandas as pd
import streamlit as st

from kdcore import figures, metric, recipes, storage
from kdcore.jobs import runner
from kdcore.results import ACTIVE, Verdict
from pages import state  # noqa: F401 - routes deep links through app.py

# result fields are <who>_<metric>: student_accuracy, student_valid_accuracy (the final model on valid), ...
WHO = ("test", "valid", "teacher", "student", "student_valid", "baseline", "baseline_valid")


def _label(run: dict) -> str:
    return f"{run['kind']} {run['id'][:6]}"


def _key_results(results: dict) -> str:
    """Scores in the run's metric (an experiment's as mean ± std), the verdict with its interval, the gap recovered."""
    m = metric.of_record(results)
    parts = [f"{who.replace('_', ' ')} {m.format_spread(v) if isinstance(v, dict) else m.format(v)}"
             for who in WHO if (v := results.get(f"{who}_{m.name}")) is not None]
    verdict = Verdict.of_record(results)
    if verdict is not None:
        parts.append(verdict.headline(m))
    gap = results.get("gap_recovered")
    if isinstance(gap, dict):
        parts.append("gap recovered n/a" if gap.get("mean") is None else
                     f"gap recovered {gap['mean']:.0%} ± {gap['std']:.0%}")
    elif gap is not None:
        parts.append(f"gap recovered {gap:.0%}")
    return " · ".join(parts)


st.title("Runs")
store = storage.run_store()
if store.notice:
    st.warning(f"Note: {store.notice}.", icon=":material/database:")
runs = store.runs()
if not runs:
    st.info("No runs yet: train a teacher, distil a student or run the demo on Home.", icon=":material/info:")
    st.stop()

by_id = {run["id"]: run for run in runs}
table = pd.DataFrame([{"run": _label(r), "kind": r["kind"], "status": r["status"], "results": _key_results(r["results"]),
                       "reason": r["reason"], "dataset": r["dataset"],
                       "created": pd.to_datetime(r["created"], unit="s"), "name": r["name"]} for r in runs])
st.dataframe(table, hide_index=True,
             column_config={"created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm:ss")})

st.subheader("Compare")
picked = st.multiselect("Runs to compare", list(by_id), default=list(by_id)[:1],
                        format_func=lambda rid: f"{_label(by_id[rid])} — {by_id[rid]['name']}")
st.plotly_chart(figures.runs_overlay({_label(by_id[rid]): store.epochs(rid) for rid in picked}))
for rid in picked:  # a distillation's recipe as it ran: its stages and terms, layers and weights resolved
    recipe = by_id[rid]["results"].get("recipe") or by_id[rid]["config"].get("recipe")
    if recipe:
        recipe = recipes.from_dict(recipe)
        st.markdown(f"**Recipe of {_label(by_id[rid])}** ({recipe.name}): {recipes.summary(recipe)}")
        st.dataframe(pd.DataFrame(recipe.rows()), hide_index=True)
        for note in by_id[rid]["results"].get("recipe_notes", []):
            st.caption(note)

st.subheader("Delete")
doomed = st.selectbox("Run to delete", list(by_id), format_func=lambda rid: f"{_label(by_id[rid])} — {by_id[rid]['name']}")
st.caption("Deleting removes the run's history; a model it saved stays on the Teacher and Distill pages.")
if st.button("Delete run…"):
    st.session_state["runs.confirm"] = doomed
confirm = st.session_state.get("runs.confirm")
if confirm in by_id:
    job = runner().find_run(confirm)
    if job is not None and job.status in ACTIVE:
        st.error(f"{_label(by_id[confirm])} is still {job.status}: stop it before deleting it.", icon=":material/error:")
        del st.session_state["runs.confirm"]
    else:
        st.warning(f"Delete {_label(by_id[confirm])} ({by_id[confirm]['name']})? This cannot be undone.", icon=":material/delete:")
        yes, no = st.columns([1, 6])
        if yes.button("Yes, delete", type="primary"):
            store.delete(confirm)
            del st.session_state["runs.confirm"]
            st.rerun()
        if no.button("Cancel"):
            del st.session_state["runs.confirm"]
            st.rerun()
