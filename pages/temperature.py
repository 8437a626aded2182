"""Temperature — how T softens an answer, and the "dark knowledge" the softening brings to light.

Storyboard: pick a digit (from the test set, or the last one drawn on the
Draw page) → the teacher's and student's probabilities at the chosen T, side
by side, with their entropies → entropy against T for this digit → in words,
which wrong classes the teacher finds similar.
"""
import numpy as np
import streamlit as st

from kdcore import figures, inference, tasks
from pages import state

TEMPERATURES = np.linspace(0.5, 20.0, 79)

st.title("🌡️ Temperature")
st.caption("A distilled student learns from the teacher's probabilities softened by a temperature T: "
           "softmax(logits / T). T = 1 is the usual softmax; higher T flattens it, lower T sharpens it.")

ds = state.current_dataset()
NOUN = state.task().example_noun
MAX_BITS = float(np.log2(len(ds.classes)))
models = state.loaded_models()
if not models:
    st.stop()

drawn = st.session_state.get("drawn_digit")
if drawn is not None and drawn.get("task", tasks.DEFAULT) != state.task().name:  # one drawn for another task's models
    drawn = None
pick, temp_col = st.columns([1, 2], gap="large")
with pick:
    if drawn is None:
        source = f"A test {NOUN}"
        how = "draw on the Draw page" if state.task().example == "canvas" else "upload"
        st.caption(f"A {NOUN} you {how} can be studied here too.")
    else:
        source = st.radio(f"{NOUN.title()} to look at", [f"A test {NOUN}", f"The last drawn {NOUN}"], horizontal=True,
                          key="temperature_source")
    if source == f"A test {NOUN}":
        if st.session_state.setdefault("temperature_index", 0) >= len(ds.y_test):  # a smaller dataset was chosen
            st.session_state["temperature_index"] = 0
        index = int(st.number_input(f"Test {NOUN} index", min_value=0, max_value=len(ds.y_test) - 1, step=1,
                                    key="temperature_index"))
        image, caption = ds.x_test[index], f"Test {NOUN} #{index} — labelled {ds.classes[ds.y_test[index]]}"
    else:
        image, caption = drawn["image"], f"Your {NOUN} ({drawn['source']})"
with temp_col:
    temperature = st.slider("Temperature T", min_value=0.5, max_value=20.0, value=4.0, step=0.5,
                            key="temperature_T")

logits = {name: inference.predict_one(model, image) for name, model in models.items()}
probs = {name: inference.softened(z, temperature) for name, z in logits.items()}

left, right = st.columns([1, 3])
with left:
    st.image(figures.enlarged(image, 6), caption=caption, output_format="PNG")
    for name, z in logits.items():
        h = float(inference.entropy(probs[name]))
        h1 = float(inference.entropy(inference.softened(z, 1.0)))
        st.metric(f"{name} entropy", f"{h:.2f} bits", f"{h - h1:+.2f} bits vs T = 1", delta_color="off",
                  help=f"0 bits = certain; {MAX_BITS:.2f} bits = all {len(ds.classes)} classes equally likely.")
with right:
    st.plotly_chart(figures.probability_bars(probs, ds.classes, f"Softened probabilities at T = {temperature:g}"),
                    key="temperature_bars")
    curves = {name: inference.entropy_vs_temperature(z, TEMPERATURES) for name, z in logits.items()}
    st.plotly_chart(figures.entropy_curve(TEMPERATURES, curves, temperature, MAX_BITS),
                    key="temperature_entropy")

st.subheader("The dark knowledge in the small probabilities")
name = "Teacher" if "Teacher" in logits else next(iter(logits))
p1, pt = inference.softened(logits[name], 1.0), probs[name]
top = int(p1.argmax())
hints = ", ".join(f"**{ds.classes[c]}** ({100 * p:.2g} % at T = 1, {pt[c]:.1%} at T = {temperature:g})"
                  for c, p in inference.runners_up(p1))
st.markdown(f"The {name.lower()} reads this {NOUN} as **{ds.classes[top]}** ({p1[top]:.1%} at T = 1). "
            f"Its next guesses are {hints}.")
if temperature > 1:
    st.markdown("At T = 1 these hints nearly vanish; softening lifts them, so a student trained on them also "
                "learns which classes look alike — something a one-hot label cannot tell it "
                "(Hinton, Vinyals & Dean 2015).")
elif temperature < 1:
    st.markdown("Below T = 1 the softmax sharpens: the small probabilities shrink further and the answer "
                "approaches a one-hot label, with no similarity left to learn from.")
else:
    st.markdown("At T = 1 these hints are nearly invisible; move the slider above 1 to lift them.")
