"""The sidebar every screen shares: task, dataset, active models, running jobs, device.

Not a screen (app.py draws it around whichever page is open).
"""
from __future__ import annotations

import streamlit as st

from kdcore import tasks
from kdcore.jobs import runner
from pages import job_panel, state


@st.cache_resource
def _device() -> dict:
    from kdcore.training import device_info

    return device_info()


def _task_changed() -> None:
    st.session_state["dataset"] = tasks.get(st.session_state["task"]).default_dataset()[0]


def models() -> None:
    job_panel.adopt_finished()
    if len(tasks.names()) > 1:
        st.session_state.setdefault("task", tasks.DEFAULT)
        st.selectbox("Task", tasks.names(), key="task", on_change=_task_changed,
                     format_func=lambda n: tasks.get(n).title)
    task = state.task()
    names = [row["name"] for row in task.datasets() if row["available"]]
    current = state.dataset_name()
    if current not in names:
        names.append(current)
    st.selectbox("Dataset", names, key="dataset")
    default, why = task.default_dataset()
    try:
        ds = state.dataset(task.name, st.session_state["dataset"])
        st.caption(f"{ds.source} · {len(ds.y_train):,} train / {len(ds.y_valid):,} valid / {len(ds.y_test):,} test")
    except ValueError as exc:
        state.error(exc)
    if st.session_state["dataset"] == default:
        st.caption(why)
    for kind in ("teacher", "student"):
        meta = state.active_model(kind)
        score = meta.get(f"test_{task.metric.name}") if meta else None
        shown = f" · {task.metric.format(score)}" if score is not None else ""
        st.markdown(f"**{kind.title()}:** {meta['name'] + shown if meta else 'none yet'}")


JOBS_EVERY_S = 3.0  # a status line: every 3 s is enough, and each session's reruns cost the training thread CPU


@st.fragment(run_every=JOBS_EVERY_S)
def jobs() -> None:
    active = runner().active()
    if not active:
        st.caption("No training running.")
        return
    for job in active:
        snap = job.progress.snapshot(curves=False)  # the bar needs no curves: the light copy
        label = f"{snap['title']} — {snap['status']}" + (f" ({snap['phase']})" if snap["phase"] else "")
        st.progress(snap["fraction"], text=label)


def device() -> None:
    st.caption(f"Device: {_device()['label']}")
