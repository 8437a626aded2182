"""Pieces several screens share: the sidebar, the active models, cached loaders, error display.

Not a screen itself (app.py does not list it). Like the pages, it only lays
out and calls kdcore; it never trains and never imports TensorFlow directly.
"""
from __future__ import annotations

import streamlit as st

from kdcore import data, storage
from kdcore.jobs import runner


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


def error(exc: Exception) -> None:
    """One readable sentence, never a traceback."""
    st.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, icon="⚠️")


# --- sidebar -------------------------------------------------------------------------------------
def sidebar_models() -> None:
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
