"""Upload — a photo of your own, as the models see it, and what the teacher and the student make of it.

Storyboard: upload a photo → it is centre-cropped and resized to the models'
input size, inverted when its background is light and the dataset's dark (or
the reverse), shown enlarged pixel for pixel (with a line when it was inverted
or colour or grey converted) → both models' probabilities at T = 1 and at the
slider's T.
"""
import numpy as np
import streamlit as st

from kdcore import figures, inference, params
from kdcore.training import predict_logits
from pages import state

ZOOM = 6

st.title("Upload")
st.caption("A photo is centre-cropped and resized to the input size of the models, then both classify it.")

ds = state.current_dataset()
models = state.loaded_models()
if not models:
    st.stop()
shape = next(iter(models.values())).input_shape[1:]

photo = st.file_uploader("A photo (PNG, JPEG, GIF, BMP, WebP)", type=["png", "jpg", "jpeg", "gif", "bmp", "webp"],
                         key="upload.photo")
kind, kwargs = params.widget_spec("temperature", state.task().name)
temperature = getattr(st, kind)(key="upload.temperature", value=4.0, **kwargs)
if photo is None:
    st.info("Upload a photo to see it as the models see it.", icon=":material/upload:")
    st.stop()
try:
    image, note = state.task().prepare_photo(photo, shape)
except ValueError as exc:  # a picture that cannot be read, in one sentence
    state.error(exc)
    st.stop()
image, inverted = state.task().match_background(image, ds)
st.session_state["drawn_digit"] = {"image": image, "source": photo.name, "task": state.task().name}  # Temperature

left, right = st.columns([1, 3])
with left:
    big = np.repeat(np.repeat(image, ZOOM, axis=0), ZOOM, axis=1)
    st.image(big[..., 0] if big.shape[-1] == 1 else big, clamp=True,
             caption=f"As the models see it: {shape[0]}×{shape[1]}×{shape[2]}")
    for line in (inverted, note):
        if line:
            st.caption(line)
with right:
    logits = {name: predict_logits(model, image[None])[0] for name, model in models.items()}
    for t in (1.0, temperature):
        probs = {name: inference.softened(z, t) for name, z in logits.items()}
        st.plotly_chart(figures.probability_bars(probs, ds.classes, f"Probabilities at T = {t:g}"),
                        key=f"upload.bars.{t}")
