"""Temperature (text) — type a sentence and see both models' class probabilities softened at T.

Storyboard: a sentence (remembered across the text screens) and T → how the
models read it (their tokens; a cut is said) → each model's answer, then
both models' probabilities at T side by side → in words, what softening
does to a two-class answer.
"""
import streamlit as st

from kdcore import figures, inference, params
from pages import state

EXAMPLE = "an intelligent, moving and often very funny film"

task = state.task()
st.title("🌡️ Temperature")
st.caption("A distilled student learns from the teacher's probabilities softened by a temperature T: "
           "softmax(logits / T). Type a sentence and move T.")

ds = state.current_dataset()
models = state.loaded_models()
if not models:
    st.stop()
text = state.kept(st.text_input, "Sentence", "sentence.text", EXAMPLE, max_chars=2000,
                  help="Words the training split never showed are read as [UNK].")
kind, kwargs = params.widget_spec("temperature", task.name)
label = kwargs.pop("label")
temperature = state.kept(getattr(st, kind), label, "sentence.T", 1.0, **kwargs)

answers = {}
for name, model in models.items():
    try:
        answers[name] = task.classify(model, ds, text, temperature)
    except ValueError as exc:
        state.error(exc)
        st.stop()
first = next(iter(answers.values()))
if first["note"]:
    st.warning(first["note"], icon=":material/content_cut:")
st.caption("Read as: " + " ".join(f"`{t}`" for t in first["tokens"]))

for col, (name, a) in zip(st.columns(len(answers)), answers.items()):
    col.metric(f"{name} says", a["label"], f"{max(a['probabilities']):.1%} at T = {temperature:g}",
               delta_color="off")
st.plotly_chart(figures.probability_bars({name: a["probabilities"] for name, a in answers.items()}, ds.classes,
                                         f"Class probabilities at T = {temperature:g}"), key="sentence_bars")
bits = {name: float(inference.entropy(a["probabilities"])) for name, a in answers.items()}
st.markdown("With two classes the soft target is one number, the teacher's confidence; T moves it towards "
            "50 % (T > 1) or towards 0/100 % (T < 1). Entropy at this T: "
            + ", ".join(f"{name.lower()} {b:.2f} bits" for name, b in bits.items()) + " (1 bit = a coin toss).")
