"""A job on a page: start it, find it again after a reload, show it live, and say how it ended.

Not a screen (app.py does not list it). The panel only reads the job's
progress; the training thread never touches Streamlit.
"""
from __future__ import annotations

import streamlit as st

from kdcore import storage
from kdcore.jobs import runner
from pages import state

# --- background jobs ---------------------------------------------------------------------------
_SAVES = {"teacher": "teacher", "distill": "student", "demo": "student"}  # what a job kind's "model" is


def remember_job(kind: str, job) -> None:
    st.session_state[f"{kind}_job"] = job.id if job else ""


def start_job(kind: str, start) -> None:
    """Call ``start()`` (a kdcore ``start_*``), remember its job for this session and rerun to show it.

    A refused setting (ValueError from kdcore's validation) is shown as one sentence instead.
    """
    try:
        remember_job(kind, start())
    except ValueError as exc:
        state.error(exc)
    else:
        st.rerun()


def current_job(kind: str):
    """The job a page of this kind shows: this session's, else the one running, else the latest.

    A job outlives its page, its tab and a reload, so a page that has no job
    id in its session (a fresh tab) finds the running job, or the most recent
    one, of its kind. Jobs whose run was deleted from the history are ignored,
    and after "Discard" (id set to "") only a running job is shown.
    """
    from kdcore.results import ACTIVE

    store = storage.run_store()
    mine = [j for j in runner().jobs() if j.kind == kind and store.get(j.run_id)]
    chosen = st.session_state.get(f"{kind}_job")
    for job in mine:
        if job.id == chosen:
            return job
    running = [j for j in mine if j.status in ACTIVE]
    if running:
        return running[-1]
    return mine[-1] if mine and chosen is None else None


def adopt_finished() -> None:
    """Make the models saved by this session's finished jobs the active ones, once per job."""
    adopted = st.session_state.setdefault("adopted_jobs", set())
    for kind, saves in _SAVES.items():
        job = runner().get(st.session_state.get(f"{kind}_job") or "")
        if job is None or job.id in adopted or job.status != "finished":
            continue
        adopted.add(job.id)
        if getattr(job.result, "teacher_model", ""):
            state.set_active_model("teacher", job.result.teacher_model)
        if getattr(job.result, "model", ""):
            state.set_active_model(saves, job.result.model)


def _status_line(job, snap: dict) -> None:
    from kdcore.results import ACTIVE

    title, status = snap["title"], snap["status"]
    if status == "queued":
        jobs = runner().jobs()
        ahead = [j.title for j in jobs[: jobs.index(job)] if j.status in ACTIVE]
        st.info(f"Queued behind {'; '.join(ahead) or 'another run'}: it starts when that ends.", icon=":material/hourglass_top:")
    elif status == "running":
        where = snap["phase"] or "starting"
        if snap["epochs"]:
            where += f", epoch {min(snap['epoch'] + 1, snap['epochs'])} of {snap['epochs']}"
        eta = f" · about {snap['eta_s']:.0f} s left" if snap["eta_s"] is not None else ""
        st.progress(snap["fraction"], text=f"{title} — {where}{eta}")
    elif status == "finished":
        seconds = (snap["ended"] or 0) - (snap["started"] or snap["ended"] or 0)
        st.success(f"{title} — finished in {seconds:.0f} s.", icon=":material/check_circle:")
    elif status == "stopped":
        st.warning(f"{title} — stopped ({snap['reason']}); the curves show it up to that point.", icon=":material/stop_circle:")
    else:
        st.error(f"{title} — {status}: {snap['reason']}", icon=":material/error:")
        if job.unsaved is not None and st.button("Save the model again", key=f"save_again_{job.kind}"):
            from kdcore import pipeline

            try:
                st.success(f"Saved as {pipeline.save_unsaved(job)}.", icon=":material/save:")
            except ValueError as exc:
                state.error(exc)


def show(job) -> None:
    """A job's progress bar with ETA, its Stop button and live curves.

    While the job is queued or running the panel is a fragment that reruns
    every second and only reads the job's progress (the training thread never
    touches Streamlit); its curves come from ``figures.live_curves``, built
    once for all the sessions that watch the job. When it sees the job end it
    reruns the whole page, so results, buttons and the sidebar catch up; a
    finished job's panel is drawn once and no longer polls.
    """
    from kdcore import figures
    from kdcore.results import ACTIVE

    adopt_finished()
    live = job.status in ACTIVE

    @st.fragment(run_every=1.0 if live else None)
    def panel():
        snap = job.progress.snapshot(curves=False)
        if live and snap["status"] not in ACTIVE:
            adopt_finished()
            st.rerun()
        _status_line(job, snap)
        if snap["results"].get("note"):  # what was done to the data for this teacher (grey given as colour, say)
            st.info(snap["results"]["note"], icon=":material/info:")
        if snap["status"] in ACTIVE and st.button("Stop training", key=f"stop_{job.kind}"):
            job.stop()
            st.caption("Stopping after the current batch…")
        accuracy, loss = figures.live_curves(job.id, job.progress)
        st.plotly_chart(accuracy, key=f"accuracy_{job.kind}")
        st.plotly_chart(loss, key=f"loss_{job.kind}")

    panel()


def distill_outcome(result) -> None:
    """Student, baseline and teacher side by side, and kdcore's verdict on whether the teacher helped."""
    metric = result.metric
    cols = st.columns(3)
    gain = result.gain
    delta = None if gain is None else f"{metric.format_change(gain)} vs baseline"
    cols[0].metric("Distilled student", metric.format(result.student_score), delta=delta,
                   delta_color="normal" if metric.higher_is_better else "inverse",
                   help=f"Test, scored once on the final model; valid {metric.format(result.student_valid)}")
    cols[1].metric("Baseline (no teacher)", metric.format(result.baseline_score)
                   if result.baseline_score is not None else "not trained",
                   help=f"Test; valid {metric.format(result.baseline_valid)}")
    cols[2].metric("Teacher", metric.format(result.teacher_score))
    verdict = result.verdict()
    if verdict.outcome == "unknown" and result.baseline_score is None:
        st.markdown("No baseline was trained, so this run cannot show what the teacher added; tick *Train baseline too*.")
        return
    if verdict.outcome == "unknown":  # a result kept without its paired test: seeds give the interval instead
        st.markdown(f"{verdict.why} The Experiments page repeats the run over seeds and says whether the teacher "
                    "helped.")
        return
    text = {"helped": "**Distillation helped", "hurt": "**Distillation hurt", "tie": "**A tie"}[verdict.outcome]
    text += f":** {verdict.gain_text(metric)}."
    if verdict.outcome == "tie":
        text += " Distillation made no difference you can tell from noise."
    gap = result.gap_recovered
    if gap is not None:
        text += (f" It recovered {gap:.0%} of the gap between the baseline ({metric.format(result.baseline_score)})"
                 f" and the teacher ({metric.format(result.teacher_score)}).")
    st.markdown(text)
