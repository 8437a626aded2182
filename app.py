"""KD Studio — the Streamlit entry point: navigation and the shared sidebar, nothing else.

Run with ``streamlit run app.py`` (or ``./scripts/dashboard``). Each screen is a
file in ``pages/``; all the work happens in ``kdcore``. The screens that look
at one example (a digit to draw, softened bars, a test-set grid) are listed
for the tasks whose example they can show.
"""
import streamlit as st

from pages import sidebar, state

st.set_page_config(page_title="KD Studio", page_icon="/app/static/favicon.png", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/teacher.py", title="Teacher", icon=":material/school:"),
    st.Page("pages/distill.py", title="Distill", icon=":material/science:"),
]
EXAMPLE_PAGES = {  # input kind (Task.example) -> the screens that can show it
    "canvas": [st.Page("pages/temperature.py", title="Temperature", icon=":material/thermostat:"),
               st.Page("pages/predictions.py", title="Predictions", icon=":material/grid_view:"),
               st.Page("pages/draw.py", title="Draw", icon=":material/draw:")],
    "image": [st.Page("pages/temperature.py", title="Temperature", icon=":material/thermostat:"),
              st.Page("pages/predictions.py", title="Predictions", icon=":material/grid_view:"),
              st.Page("pages/upload.py", title="Upload", icon=":material/upload:")],
    "prompt": [st.Page("pages/prompt.py", title="Next word", icon=":material/text_fields:"),
               st.Page("pages/surprisal.py", title="Predictions", icon=":material/grid_view:")],
    "sentence": [st.Page("pages/sentence.py", title="Temperature", icon=":material/thermostat:"),
                 st.Page("pages/attention.py", title="Attention", icon=":material/visibility:"),
                 st.Page("pages/sentence_predictions.py", title="Predictions", icon=":material/grid_view:")],
}
REPORT_PAGES = [
    st.Page("pages/experiments.py", title="Experiments", icon=":material/biotech:"),
    st.Page("pages/deploy.py", title="Deploy", icon=":material/rocket_launch:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
]

page = st.navigation(PAGES + EXAMPLE_PAGES.get(state.task().example, []) + REPORT_PAGES)
with st.sidebar:
    sidebar.models()
    sidebar.jobs()
    device_slot = st.empty()
page.run()
with device_slot:  # filled last: asking TensorFlow for devices must not delay the first paint
    sidebar.device()
