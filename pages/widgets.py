"""Pieces several screens share: the sidebar, the active models, cached loaders, error display.

Not a screen itself (app.py does not list it). Like the pages, it only lays
out and calls kdcore; it never trains and never imports TensorFlow directly.
"""
from __future__ import annotations

import streamlit as st

from kdcore import data, storage
from kdcore.jobs import runner


def _route_through_app() -> None:
    """Make a deep link opened first after a restart go through app.py's st.navigation.

    Streamlit 1.67 still treats a folder named ``pages/`` the old (v1) way
    until the entry script has called ``st.navigation`` once: the very first
    request for ``/distill?...`` would run that page alone, with no shared
    sidebar and with ``widgets`` listed as a page. Every page imports this
    module, so the first such run switches the flag off and reruns, which
    executes app.py and lands on the requested page with its query string.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def _keep_keras_session() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run.

    Streamlit 1.67 does that to free memory in apps that build models in the
    script. Here models train in a background thread while fragments rerun
    every second, so each rerun wiped TensorFlow's kernel cache under the
    training loop: a watched run took 16-27 s per epoch instead of 1.2 s.
    KD Studio never builds models in a script run, so there is nothing to clear.
    """
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = lambda: None


_route_through_app()
_keep_keras_session()


# --- cached heavy objects ----------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading dataset…")
def dataset(name: str):
    return data.load(name)


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def model(path: str, mtime: float):
    """A loaded Keras model, kept in memory; ``mtime`` makes a re-saved file load afresh."""
    return storage.load_model(path)


def load_model(path: str):
    import os

    return model(path, os.path.getmtime(path))


@st.cache_resource
def _device() -> dict:
    from kdcore.training import device_info

    return device_info()


# --- session choices -----------------------------------------------------------------------------
def dataset_name() -> str:
    if "dataset" not in st.session_state:
        st.session_state["dataset"] = data.default_dataset()[0]
    return st.session_state["dataset"]


def active_model(kind: str) -> dict | None:
    """The chosen teacher or student (sidecar dict), else the newest saved one, else None."""
    models = storage.list_models(kind)
    chosen = st.session_state.get(f"{kind}_path")
    for meta in models:
        if meta["path"] == chosen:
            return meta
    return models[0] if models else None


def set_active_model(kind: str, path: str) -> None:
    st.session_state[f"{kind}_path"] = path


def current_dataset():
    """The dataset chosen in the sidebar, loaded; if it cannot load, say why and stop the screen."""
    try:
        return dataset(dataset_name())
    except ValueError as exc:
        error(exc)
        st.stop()


def loaded_models() -> dict:
    """The active teacher and student, loaded, by title ("Teacher", "Student").

    For the screens that inspect models: what is missing is said in one
    sentence with a link to the page that makes it, and the screen goes on
    with what there is.
    """
    found = {}
    for kind, page, verb in (("teacher", "pages/teacher.py", "train one on the Teacher page"),
                             ("student", "pages/distill.py", "distil one on the Distill page")):
        meta = active_model(kind)
        if meta is None:
            st.info(f"No {kind} yet: {verb}.", icon="ℹ️")
            st.page_link(page, label=f"Go to {'Teacher' if kind == 'teacher' else 'Distill'}", icon="➡️")
            continue
        try:
            found[kind.title()] = load_model(meta["path"])
        except (ValueError, OSError) as exc:
            error(exc)
            continue
        if meta.get("dataset") and meta["dataset"] != dataset_name():
            st.caption(f"The {kind} was trained on {meta['dataset']}; the chosen dataset is {dataset_name()}.")
    return found


def error(exc: Exception) -> None:
    """One readable sentence, never a traceback."""
    st.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, icon="⚠️")


# --- widgets that remember ------------------------------------------------------------------------
def kept(widget, label: str, key: str, default, **kwargs):
    """``widget(label, key=key, **kwargs)`` whose value survives visits to other pages.

    Streamlit forgets the state of a widget that a run does not draw, so after
    a trip to another page every slider would jump back to its default; the
    value is mirrored in a plain session entry and handed back on return.
    """
    mirror = st.session_state.setdefault("kept", {})
    if key not in st.session_state:
        st.session_state[key] = mirror.get(key, default)
    mirror[key] = widget(label, key=key, **kwargs)
    return mirror[key]


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
        error(exc)
    else:
        st.rerun()


def current_job(kind: str):
    """The job a page of this kind shows: this session's, else the one running, else the latest.

    A job outlives its page, its tab and a reload, so a page that has no job
    id in its session (a fresh tab) finds the running job, or the most recent
    one, of its kind. Jobs whose run was deleted from the history are ignored,
    and after "Discard" (id set to "") only a running job is shown.
    """
    from kdcore.progress import ACTIVE

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
        if job.result.get("teacher_model"):
            set_active_model("teacher", job.result["teacher_model"])
        if job.result.get("model"):
            set_active_model(saves, job.result["model"])


def _status_line(job, snap: dict) -> None:
    from kdcore.progress import ACTIVE

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
                error(exc)


def job_panel(job) -> None:
    """A job's progress bar with ETA, its Stop button and live curves.

    While the job is queued or running the panel is a fragment that reruns
    every second and only reads ``job.progress.snapshot()`` (the training
    thread never touches Streamlit). When it sees the job end it reruns the
    whole page, so results, buttons and the sidebar catch up; a finished
    job's panel is drawn once and no longer polls.
    """
    from kdcore import figures
    from kdcore.progress import ACTIVE

    adopt_finished()
    live = job.status in ACTIVE

    @st.fragment(run_every=1.0 if live else None)
    def panel():
        snap = job.progress.snapshot()
        if live and snap["status"] not in ACTIVE:
            adopt_finished()
            st.rerun()
        _status_line(job, snap)
        if snap["status"] in ACTIVE and st.button("Stop training", key=f"stop_{job.kind}"):
            job.stop()
            st.caption("Stopping after the current batch…")
        st.plotly_chart(figures.accuracy_curves(snap["series"], snap["results"].get("teacher_accuracy")),
                        key=f"accuracy_{job.kind}")
        st.plotly_chart(figures.loss_curves(snap["series"], snap["batches"]), key=f"loss_{job.kind}")

    panel()


def _verdict(results: dict) -> str:
    student, base, teacher = (results.get(k) for k in ("student_accuracy", "baseline_accuracy", "teacher_accuracy"))
    if base is None:
        return "No baseline was trained, so this run cannot show what the teacher added; tick *Train baseline too*."
    gain = student - base
    if gain <= 0:
        text = (f"Distillation did not help this time: the distilled student ({student:.1%}) is no better than "
                f"the same student trained from scratch ({base:.1%}).")
    elif results.get("gap_recovered") is None:
        text = (f"The distilled student beats the baseline by {gain:.1%}, but the baseline already matches the "
                f"teacher ({teacher:.1%}), so there was no gap to recover.")
    else:
        text = (f"Distillation recovered **{results['gap_recovered']:.0%}** of the gap between the baseline "
                f"({base:.1%}) and the teacher ({teacher:.1%}).")
    n_test = results.get("test_images", 0)
    noise = 2 * (base * (1 - base) / max(n_test, 1)) ** 0.5  # two standard errors of a test accuracy
    if n_test and abs(gain) < noise:
        text += (f" On {n_test:,} test images a difference under {noise:.1%} is within noise, "
                 "so read this as a tie.")
    return text


def distill_outcome(results: dict) -> None:
    """Student, baseline and teacher accuracy side by side, and what distillation bought, said plainly."""
    student, base, teacher = (results.get(k) for k in ("student_accuracy", "baseline_accuracy", "teacher_accuracy"))
    cols = st.columns(3)
    cols[0].metric("Distilled student", f"{student:.1%}",
                   delta=f"{(student - base) * 100:+.1f} points vs baseline" if base is not None else None)
    cols[1].metric("Baseline (no teacher)", f"{base:.1%}" if base is not None else "not trained")
    cols[2].metric("Teacher", f"{teacher:.1%}")
    st.markdown(_verdict(results))


# --- sidebar -------------------------------------------------------------------------------------
def sidebar_models() -> None:
    adopt_finished()
    names = [row["name"] for row in data.available() if row["available"]]
    current = dataset_name()
    if current not in names:
        names.append(current)
    st.selectbox("Dataset", names, key="dataset")
    _, why = data.default_dataset()
    try:
        st.caption(dataset(st.session_state["dataset"]).source)
    except ValueError as exc:
        error(exc)
    if st.session_state["dataset"] == data.default_dataset()[0] == "mnist-5k":
        st.caption(why)
    for kind in ("teacher", "student"):
        meta = active_model(kind)
        acc = f" · {meta['test_accuracy']:.1%}" if meta and meta.get("test_accuracy") is not None else ""
        st.markdown(f"**{kind.title()}:** {meta['name'] + acc if meta else 'none yet'}")


@st.fragment(run_every=1.0)
def sidebar_jobs() -> None:
    jobs = runner().active()
    if not jobs:
        st.caption("No training running.")
        return
    for job in jobs:
        snap = job.progress.snapshot()
        label = f"{snap['title']} — {snap['status']}" + (f" ({snap['phase']})" if snap["phase"] else "")
        st.progress(snap["fraction"], text=label)


def sidebar_device() -> None:
    st.caption(f"Device: {_device()['label']}")
