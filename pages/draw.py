"""Draw — your own digit, as the models see it, and what each of them answers.

Storyboard: draw on the canvas or upload a picture → the 28×28 image the
models get (the task's prepare_image does the preprocessing) → each model's answer, big
→ both models' probabilities at T = 1 and at a chosen T. The digit is kept in
``st.session_state["drawn_digit"]`` so the Temperature page can study it.
"""
import streamlit as st

from kdcore import figures, inference
from pages import state

UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]

st.title("✏️ Draw")
st.caption("Draw a digit (white on black, like MNIST) or upload a picture of one; "
           "it is centred and scaled to 28×28 pixels the way MNIST digits were.")

ds = state.current_dataset()
models = state.loaded_models()
if not models:
    st.stop()

method = st.radio("Input", ["Draw on the canvas", "Upload an image"], horizontal=True, key="draw_input")
left, right = st.columns([1, 2], gap="large")
with left:
    if method == "Draw on the canvas":
        from streamlit_drawable_canvas import st_canvas  # only importable inside a running app

        st.caption("One digit, big:")  # also leaves room for the canvas's own toolbar above it
        canvas = st_canvas(stroke_width=18, stroke_color="#FFFFFF", background_color="#000000",
                           width=280, height=280, drawing_mode="freedraw", return_image_data=True,
                           key="draw_canvas")
        drew = bool((canvas.json_data or {}).get("objects"))
        source, name = (canvas.image_data if drew else None), "drawn"
        hint = "Draw a digit in the black box with your mouse or finger."
    else:
        upload = st.file_uploader("Image of a digit", type=UPLOAD_TYPES, key="draw_upload",
                                  help="PNG, JPG, GIF, BMP or WebP; dark digit on light paper or light on dark.")
        source, name = upload, (upload.name if upload else "")
        hint = "Upload a picture of one handwritten digit."
    if source is None:
        st.info(hint, icon="✏️")
        st.stop()
    try:
        image = state.task().prepare_image(source, next(iter(models.values())).input_shape[1:])
    except ValueError as exc:
        state.error(exc)
        st.stop()
    st.session_state["drawn_digit"] = {"image": image, "source": name, "task": state.task().name}
    st.image(figures.enlarged(image, 5), caption="What the models see: 28×28 pixels", output_format="PNG")

with right:
    logits = {model_name: inference.predict_one(model, image) for model_name, model in models.items()}
    for col, (model_name, z) in zip(st.columns(len(logits)), logits.items()):
        p = inference.softened(z, 1.0)
        col.metric(f"{model_name} says", ds.classes[int(p.argmax())], f"{p.max():.1%} sure", delta_color="off",
                   delta_arrow="off")
    temperature = st.slider("Temperature T", min_value=0.5, max_value=20.0, value=4.0, step=0.5, key="draw_T")
    st.plotly_chart(figures.probability_bars({n: inference.softened(z, 1.0) for n, z in logits.items()},
                                             ds.classes, "Probabilities at T = 1"), key="draw_bars_t1")
    st.plotly_chart(figures.probability_bars({n: inference.softened(z, temperature) for n, z in logits.items()},
                                             ds.classes, f"Softened at T = {temperature:g}"), key="draw_bars_t")
    st.page_link("pages/temperature.py", label="Study this digit on the Temperature page", icon="🌡️")
