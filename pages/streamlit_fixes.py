"""Two Streamlit 1.67 behaviours KD Studio switches off; every page imports this module (through ``state``).

Not a screen (app.py does not list it).
"""
from __future__ import annotations

import streamlit as st


def _route_through_app() -> None:
    """Make a deep link opened first after a restart go through app.py's st.navigation.

    Streamlit 1.67 still treats a folder named ``pages/`` the old (v1) way
    until the entry script has called ``st.navigation`` once: the very first
    request for ``/distill?...`` would run that page alone, with no shared
    sidebar and with the helper modules listed as pages. The first such run
    switches the flag off and reruns, which executes app.py and lands on the
    requested page with its query string.
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
