"""Next word — type a prompt; the teacher's and the student's next-word bars at T, and a seeded continuation.

For tasks whose example is a prompt (the LSTM language model). Storyboard:
a prompt → both models' 15 most likely next words at the slider's T, side by
side, with their entropies → entropy against T, a line per model, the
slider's T marked → each model continues the prompt by sampling at that T
with a fixed seed, so the link (which holds prompt, T and seed) reproduces
it. Words outside the vocabulary are read as ``<unk>``.
"""
import math

import numpy as np
import streamlit as st

from kdcore import figures, params
from pages import state

task = state.task()
st.title("Next word")
st.caption("A language model's answer is a distribution over its whole vocabulary. Softening it with a "
           "temperature T (softmax(logits / T)) is what the student learns from; sampling at T continues the prompt.")

for key, default in (("prompt.text", "the company said"), ("prompt.seed", 0)):  # a shared link's values, once
    if key not in st.session_state:
        raw = st.query_params.get(key.split(".")[1])
        st.session_state[key] = (int(raw) if key == "prompt.seed" and str(raw).isdigit() else raw) or default
text = st.text_input("Prompt", key="prompt.text", max_chars=300)
left, right = st.columns([3, 1])
kind, kwargs = params.widget_spec("temperature", task.name)
with left:
    temperature = getattr(st, kind)(key="prompt.temperature", value=float(st.query_params.get("T", 1.0)), **kwargs)
with right:
    seed = int(st.number_input("Sampling seed", min_value=0, max_value=2**31 - 1, step=1, key="prompt.seed"))
st.query_params.from_dict({"text": text, "T": f"{temperature:g}", "seed": str(seed)})

models = {kind.title(): meta for kind in ("teacher", "student") if (meta := state.active_model(kind))}
if not models:
    st.info("No language model yet: train a teacher on the Teacher page.", icon=":material/info:")
    st.stop()

answers = {}
for name, meta in models.items():
    try:
        answers[name] = task.prompt(meta["path"], text, temperature, seed)
    except (ValueError, OSError) as exc:
        state.error(exc)
        st.stop()

words = list(dict.fromkeys(w["word"] for a in answers.values() for w in a["next_words"]))
bars = {name: [next((w["probability"] for w in a["next_words"] if w["word"] == word), 0.0) for word in words]
        for name, a in answers.items()}
st.caption(f"Read as: *{next(iter(answers.values()))['prompt']}*")
cols = st.columns(len(answers))
for col, (name, a) in zip(cols, answers.items()):
    col.metric(f"{name} entropy", f"{a['entropy_bits']:.2f} bits",
               help="of the whole next-word distribution at this T: 0 bits is certain, log2(vocabulary) uniform")
st.plotly_chart(figures.probability_bars(bars, words, f"Most likely next words at T = {temperature:g}",
                                         full_scale=False),
                key="prompt_bars")
TEMPERATURES = np.round(np.geomspace(0.25, max(16.0, temperature), 41), 4)
curves = {name: task.prompt_entropy(meta["path"], text, TEMPERATURES) for name, meta in models.items()}
st.plotly_chart(figures.entropy_curve(TEMPERATURES, curves, temperature,
                                      math.log2(next(iter(answers.values()))["vocabulary_size"])),
                key="prompt_entropy")
st.caption("Entropy of the next word against T: high T spreads the mass towards all words equally (the dashed "
           "ceiling), low T piles it on the top word. The soft targets a student learns from are read at one T.")
st.subheader("Continued by sampling at T")
for name, a in answers.items():
    st.markdown(f"**{name}:** {a['prompt']} *{a['continuation']}*")
