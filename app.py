"""KD Studio — the Streamlit entry point: navigation and the shared sidebar, nothing else.

Run with ``streamlit run app.py`` (or ``./scripts/dashboard``). Each screen is a
file in ``pages/``; all the work happens in ``kdcore``.
"""
import streamlit as st

from pages import widgets

st.set_page_config(page_title="KD Studio", page_icon="🎓", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/teacher.py", title="Teacher", icon="🧑‍🏫"),
    st.Page("pages/distill.py", title="Distill", icon="⚗️"),
    st.Page("pages/temperature.py", title="Temperature", icon="🌡️"),
    st.Page("pages/predictions.py", title="Predictions", icon="🔍"),
    st.Page("pages/draw.py", title="Draw", icon="✏️"),
    st.Page("pages/experiments.py", title="Experiments", icon="🧪"),
    st.Page("pages/runs.py", title="Runs", icon="📜"),
]

page = st.navigation(PAGES)
with st.sidebar:
    widgets.sidebar_models()
    widgets.sidebar_jobs()
    device_slot = st.empty()
page.run()
with device_slot:  # filled last: asking TensorFlow for devices must not delay the first paint
    widgets.sidebar_device()
