"""Predictions (language model) — test sentences coloured by how surprised each model is, and where they disagree.

For tasks whose example is a prompt. Storyboard: both models' perplexity on
the first words of the test text → a page of test sentences, each word
coloured by each model's surprisal (−log2 of the probability it gave the
word that came) → the words where the teacher's and the student's next-word
distributions differ most (KL, bits), with what led to each and each model's
own guess. Everything is computed in kdcore (``Task.compare``); this page
lays it out.
"""
import pandas as pd
import streamlit as st

from pages import state

PER_PAGE = 8
COLOURS = {"expected": "green", "plausible": "blue", "surprising": "orange", "very surprising": "red"}
MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!$<>|~"})

task = state.task()
st.title("Predictions")
st.caption("How surprised is each model by the words that actually came? A word's surprisal is −log2 of the "
           "probability the model gave it, in bits: perplexity is 2 to the mean surprisal.")
ds = state.current_dataset()
models = state.loaded_models()
if not models:
    st.stop()


@st.cache_resource(show_spinner="Reading the test text with each model…", max_entries=4)
def compared(key: tuple):
    return task.compare(models, ds)


key = tuple(sorted((name, (meta or {}).get("path")) for name, meta in
                   ((n, state.active_model(n.lower())) for n in models))) + (ds.name,)
try:
    result = compared(key)
except ValueError as exc:
    state.error(exc)
    st.stop()

n_words = len(result["words"])
cols = st.columns(len(models) + 1)
for col, (name, ppl) in zip(cols, result["perplexity"].items()):
    col.metric(f"{name} perplexity", f"{ppl:,.1f}", help=f"on the first {n_words:,} words of {ds.name}'s test text, "
                                                       "read as one stream, <eos> included")
st.caption("Colours: " + " · ".join(f":{c}-background[{name}]" for name, c in COLOURS.items())
           + " (under 4, 8 and 12 bits; a model that knew nothing would pay 13.3 bits a word).")

spans = result["sentences"]
pages = max(1, -(-len(spans) // PER_PAGE))
if st.session_state.setdefault("surprisal.page", 1) > pages:
    st.session_state["surprisal.page"] = 1
page = int(st.number_input("Page of sentences", min_value=1, max_value=pages, step=1, key="surprisal.page"))


def coloured(name: str, start: int, end: int) -> str:
    bits = result["surprisal"][name]
    return " ".join(f":{COLOURS[task.band(bits[i])]}-background[{result['words'][i].translate(MARKDOWN)}]"
                    for i in range(start, end))


with st.container(key="surprisal_sentences"):
    for start, end in spans[(page - 1) * PER_PAGE: page * PER_PAGE]:
        with st.container(border=True):
            for name in models:
                bits = result["surprisal"][name][start:end]
                st.markdown(f"**{name}** ({bits.mean():.1f} bits a word): {coloured(name, start, end)}")

if len(models) > 1:
    st.subheader("Where the teacher and the student disagree most")
    st.caption("KL divergence of the student's next-word distribution from the teacher's, in bits, at each word of "
               "the test text: the largest first. Each model's own top guess is shown beside the word that came.")
    st.dataframe(pd.DataFrame(result["disagreements"]), hide_index=True, key="surprisal_disagreements")
