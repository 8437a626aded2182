"""Attention — where each model looks in a sentence: a student layer and head beside the teacher layer it learned from.

Storyboard: a sentence (shared with Temperature) → a student layer m, shown
with its teacher layer g(m) (the run's layer mapping) and a head → the two
attention maps side by side over the sentence's tokens, as weights after
the softmax or as the scores before it (what TinyBERT's attention term matches).
"""
import streamlit as st

from kdcore import figures
from pages import state

EXAMPLE = "an intelligent, moving and often very funny film"
VIEWS = {"weights": "Weights (after the softmax; each row sums to 1)",
         "scores": "Scores before the softmax (what the attention term matches)"}

task = state.task()
st.title("👁️ Attention")
st.caption("Each head of each layer spreads every token's attention over the sentence. TinyBERT's attention "
           "term teaches student layer m the attention scores of teacher layer g(m), head by head.")
ds = state.current_dataset()
models = state.loaded_models()
if "Teacher" not in models:
    st.stop()
teacher, student = models["Teacher"], models.get("Student")


def choice(container, label: str, key: str, default: int, count: int, **kwargs) -> int:
    """A remembered select box of 1..count; a remembered value another model does not have falls back."""
    options = list(range(1, count + 1))
    if st.session_state.get("kept", {}).get(key, default) not in options:
        st.session_state.setdefault("kept", {})[key] = default
        st.session_state.pop(key, None)
    return int(state.kept(container.selectbox, label, key, default, options=options, **kwargs))


text = state.kept(st.text_input, "Sentence", "sentence.text", EXAMPLE, max_chars=2000)

t_layers, t_heads = task.layers_and_heads(teacher)
left, middle, right = st.columns(3)
if student is not None:
    s_layers, s_heads = task.layers_and_heads(student)
    spec = ((state.active_model("student") or {}).get("config") or {}).get("layer_map", "uniform")
    try:
        mapping = task.mapping(student, teacher, spec)
    except ValueError as exc:  # a student distilled from a deeper teacher than the active one
        st.caption(f"This student's layer mapping does not fit the active teacher ({exc}); the uniform one is used.")
        mapping = task.mapping(student, teacher)
    m = choice(left, "Student layer", "attention.layer", s_layers, s_layers,
               format_func=lambda k: f"student {k} ← teacher {mapping[k - 1]}")
    g = mapping[m - 1]
    head = choice(middle, "Head", "attention.head", 1, s_heads)
    group = t_heads // s_heads if t_heads % s_heads == 0 else 1
    t_heads_shown = list(range((head - 1) * group, head * group)) if group > 1 else [min(head, t_heads) - 1]
else:
    st.caption("No student yet: the teacher's attention alone.")
    g = choice(left, "Teacher layer", "attention.teacher_layer", t_layers, t_layers)
    head = choice(middle, "Head", "attention.head", 1, t_heads)
    t_heads_shown = [head - 1]
view = state.kept(right.radio, "Show", "attention.view", "weights", options=list(VIEWS), format_func=VIEWS.get)
softmax = view == "weights"

try:
    t = task.attention(teacher, ds, text, g, softmax)
    s = task.attention(student, ds, text, m, softmax) if student is not None else None
except ValueError as exc:
    state.error(exc)
    st.stop()
if t["note"]:
    st.warning(t["note"], icon=":material/content_cut:")
heads_name = (f"heads {t_heads_shown[0] + 1}–{t_heads_shown[-1] + 1} (mean)" if len(t_heads_shown) > 1
              else f"head {t_heads_shown[0] + 1}")
maps = {f"Teacher · layer {g}, {heads_name}": t["maps"][t_heads_shown].mean(axis=0)}
if s is not None:
    maps[f"Student · layer {m}, head {head}"] = s["maps"][head - 1]
st.plotly_chart(figures.attention_heatmaps(maps, t["tokens"], softmax=softmax), key="attention_maps")
st.caption("Rows: the token that attends; columns: the token it attends to. Padding is left out."
           + (f" The teacher has {t_heads} heads and the student {s_heads}: each student head is compared with "
              f"the mean of {group} teacher heads." if student is not None and group > 1 else ""))
