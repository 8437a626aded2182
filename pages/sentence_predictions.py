"""Predictions (text) — teacher and student on the test sentences: accuracies, then the sentences they disagree on.

Storyboard: both accuracies and the count of disagreements → a filter
(disagreements / errors / all) → a table of test sentences with the label,
each model's answer and its probability for each class.
"""
import numpy as np
import pandas as pd
import streamlit as st

from kdcore import inference
from pages import state

MAX_ROWS = 500
FILTERS = {"disagreements": "Only disagreements", "errors": "Only errors", "all": "All sentences"}

task = state.task()
st.title("🔍 Predictions")
ds = state.current_dataset()
models = state.loaded_models()
if not models:
    st.stop()
try:
    for model in models.values():
        task.check_fits(model, ds, f"the {model.name}")
except ValueError as exc:
    state.error(exc)
    st.stop()

with st.spinner("Reading the test sentences…"):
    probs = {name: inference.softened(inference.test_logits(model, ds), 1.0) for name, model in models.items()}
preds = {name: p.argmax(-1) for name, p in probs.items()}
labels = ds.y_test

cols = st.columns(len(preds) + 1)
for col, (name, pred) in zip(cols, preds.items()):
    col.metric(f"{name} test accuracy", f"{(pred == labels).mean():.1%}",
               help=f"on the {len(labels):,} test sentences of {ds.name}")
if len(preds) > 1:
    cols[-1].metric("Disagreements", f"{int(np.sum(preds['Teacher'] != preds['Student'])):,}"
                    if {"Teacher", "Student"} <= preds.keys() else "—")

filters = [k for k in FILTERS if k != "disagreements" or len(preds) > 1]
show = st.radio("Show", filters, format_func=FILTERS.get, horizontal=True, key="sentence_predictions.show")
chosen = inference.select(labels, preds, show)
if not len(chosen):
    st.info(f"No test sentence matches “{FILTERS[show]}”.")
    st.stop()
rows = {"sentence": [ds.texts["test"][i] for i in chosen[:MAX_ROWS]],
        "label": [ds.classes[labels[i]] for i in chosen[:MAX_ROWS]]}
columns = {}
for name in preds:
    rows[name] = [ds.classes[preds[name][i]] for i in chosen[:MAX_ROWS]]
    for c, cls in enumerate(ds.classes):
        key = f"{name} P({cls})"
        rows[key] = [float(probs[name][i, c]) for i in chosen[:MAX_ROWS]]
        columns[key] = st.column_config.ProgressColumn(key, min_value=0.0, max_value=1.0, format="%.2f")
st.caption(f"{len(chosen):,} test sentences match" + (f"; the first {MAX_ROWS} are listed." if len(chosen) > MAX_ROWS
                                                       else "."))
st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=columns)
