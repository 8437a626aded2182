"""What a visitor has chosen (task, dataset, active models), the heavy objects behind it, and error display.

Not a screen (app.py does not list it). Like the pages, it only lays out and
calls kdcore; it never trains and never imports TensorFlow directly.
"""
from __future__ import annotations

import os

import streamlit as st

from kdcore import params, presets, storage, tasks
from pages import streamlit_fixes  # noqa: F401 - applied on import, before any page draws


# --- cached heavy objects ----------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading dataset…")
def dataset(task_name: str, name: str):
    return tasks.get(task_name).load(name)


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def model(path: str, mtime: float, task_name: str = tasks.DEFAULT):
    """A loaded Keras model, kept in memory; ``mtime`` makes a re-saved file load afresh."""
    return storage.load_model(path, tasks.get(task_name))


def load_model(path: str):
    return model(path, os.path.getmtime(path), task().name)


# --- session choices -----------------------------------------------------------------------------
def task():
    """The task chosen in the sidebar (digits until another is chosen)."""
    name = st.session_state.get("task", tasks.DEFAULT)
    try:
        return tasks.get(name)
    except ValueError:
        st.session_state["task"] = tasks.DEFAULT
        return tasks.get(tasks.DEFAULT)


def dataset_name() -> str:
    if "dataset" not in st.session_state:
        st.session_state["dataset"] = task().default_dataset()[0]
    return st.session_state["dataset"]


def choose_dataset(name: str) -> None:
    """Make ``name`` the sidebar's dataset, as a button's ``on_click`` (the sidebar's box is drawn by then).

    The quick demo trains on its own dataset; unless the sidebar follows,
    the demo's models belong to a dataset no screen has chosen, so Deploy
    offers nothing to export and Upload says they were trained on another.
    """
    st.session_state["dataset"] = name


def choose_demo_dataset() -> None:
    """The quick demo button's ``on_click``: the chosen task's demo dataset becomes the sidebar's.

    The task is read when the click lands, not bound when the button was
    drawn: a click during the rerun that a task change starts would otherwise
    carry the previous task's dataset (seen in the browser test).
    """
    demo = presets.demo(task())
    if demo is not None:
        choose_dataset(presets.get(demo)["dataset"])


def _of_task(meta: dict) -> bool:
    return meta.get("task", tasks.DEFAULT) == task().name


def saved_models(kind: str) -> list[dict]:
    """Saved models of this kind for the current task, newest first."""
    return [m for m in storage.list_models(kind) if _of_task(m)]


def active_model(kind: str) -> dict | None:
    """The chosen teacher or student (sidecar dict), else the newest saved one, else None."""
    models = saved_models(kind)
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
        return dataset(task().name, dataset_name())
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


def setting(name: str, page: str, default, container=None):
    """The input for one setting of the current task, drawn from the settings table (label, bounds, help).

    Its key is ``<page>.<name>`` and its value is remembered across pages.
    """
    kind, kwargs = params.widget_spec(name, task().name)
    label = kwargs.pop("label")
    p = params.get(name, task().name)
    value = p.kind(default) if p.kind in (int, float) else default
    return kept(getattr(container or st, kind), label, f"{page}.{name}", value, **kwargs)
