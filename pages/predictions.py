"""Predictions — teacher and student on the whole test set: accuracies, confusion, and the digits themselves.

Storyboard: both accuracies → both confusion matrices → a grid of test
digits with each model's answer, disagreements marked, filtered to all /
disagreements / errors and paged.
"""
import math

import streamlit as st

from kdcore import figures, inference
from pages import state

PER_PAGE = 40
COLUMNS = 8
NOUN = state.task().example_noun
FILTERS = {"all": f"All {NOUN}s", "disagreements": "Only disagreements", "errors": "Only errors"}

st.title("🔍 Predictions")
ds = state.current_dataset()
models = state.loaded_models()
if not models:
    st.stop()

with st.spinner("Predicting the test set…"):
    preds = {name: inference.test_logits(model, ds).argmax(-1) for name, model in models.items()}
labels = ds.y_test

cols = st.columns(len(preds) + 1)
for col, (name, pred) in zip(cols, preds.items()):
    col.metric(f"{name} test accuracy", f"{(pred == labels).mean():.1%}",
               help=f"on the {len(labels):,} test {NOUN}s of {ds.name}")
if len(preds) > 1:
    teacher, student = preds.values()
    cols[-1].metric("Disagreements", f"{int((teacher != student).sum()):,}",
                    help=f"test {NOUN}s where the teacher and the student give different answers")

with st.expander("Confusion matrices", expanded=True):
    for col, (name, pred) in zip(st.columns(len(preds)), preds.items()):
        col.plotly_chart(figures.confusion_heatmap(inference.confusion(labels, pred, len(ds.classes)), ds.classes,
                                                   f"{name}: true class (rows) vs predicted (columns)"),
                         key=f"confusion_{name.lower()}")

filters = [k for k in FILTERS if k != "disagreements" or len(preds) > 1]
show = st.radio("Show", filters, format_func=FILTERS.get, horizontal=True, key="predictions_show",
                on_change=lambda: st.session_state.update(predictions_page=1))
chosen = inference.select(labels, preds, show)
pages = max(1, math.ceil(len(chosen) / PER_PAGE))
if st.session_state.setdefault("predictions_page", 1) > pages:
    st.session_state["predictions_page"] = 1
page = int(st.number_input("Page", min_value=1, max_value=pages, step=1, key="predictions_page"))
shown = chosen[(page - 1) * PER_PAGE: page * PER_PAGE]
if not len(shown):
    st.info(f"No test {NOUN} matches “{FILTERS[show]}”.")
else:
    st.caption(f"Showing {len(shown)} of {len(chosen):,} {NOUN}s (page {page} of {pages}). "
               "T = teacher, S = student; green answers are right, red ones wrong.")


def answers(i: int) -> str:
    return " · ".join(f"{name[0]} :{'green' if pred[i] == labels[i] else 'red'}[{ds.classes[pred[i]]}]"
                      for name, pred in preds.items())


for start in range(0, len(shown), COLUMNS):
    for col, i in zip(st.columns(COLUMNS), shown[start:start + COLUMNS]):
        agree = len({int(p[i]) for p in preds.values()}) == 1
        badge = "" if len(preds) == 1 else "  \n" + (":gray-badge[agree]" if agree else ":orange-badge[disagree]")
        with col.container(border=True):
            st.image(figures.enlarged(ds.x_test[i], 3), caption=f"#{i} · label {ds.classes[labels[i]]}",
                     width=84, output_format="PNG")
            st.markdown(answers(i) + badge)
