"""The Distill page's Recipe section: a method, its terms as a table, and an editor to add or remove terms.

Not a screen (app.py does not list it). The recipe being edited lives in
``st.session_state["distill.recipe"]`` as data (:mod:`kdcore.recipes`); the
editor's buttons change it in their callbacks, so the table drawn after them
shows the edit. Layers are offered with their output shapes, read from the
active teacher and from the student the sliders describe
(:func:`kdcore.stages.network_layers`, cached per teacher file and student size).
"""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from kdcore import recipes, stages, tasks
from pages import state

SETTINGS = "settings"  # the method "the recipe the sliders describe"
NEW_STAGE = "a new first stage"
KEY = "distill.recipe"  # the edited recipe (a dict); absent: the chosen method as it ships


@st.cache_data(show_spinner="Reading the networks' layers…", max_entries=16)
def _layers(task_name: str, teacher_path: str, mtime: float, dataset: str, student: dict) -> tuple[dict, dict]:
    """(teacher's, student's) layer → output shape; ``mtime`` and the student's settings key the cache."""
    task = tasks.get(task_name)
    return stages.network_layers(task, task.distill_from(student), state.load_model(teacher_path),
                                 state.current_dataset())


def _forget_edits() -> None:
    st.session_state.pop(KEY, None)
    st.session_state.pop("distill.recipe_error", None)


def _store(change) -> None:
    """Run an edit (a callback); a refusal is kept, one line, to be shown beside the editor."""
    try:
        st.session_state[KEY] = change().to_dict()
        st.session_state.pop("distill.recipe_error", None)
    except recipes.RecipeError as exc:
        st.session_state["distill.recipe_error"] = str(exc)


def _add(current: recipes.Recipe, check) -> None:
    ss = st.session_state
    kind, stage = ss["distill.term.kind"], ss["distill.term.stage"]
    term = {"kind": kind, "loss": ss["distill.term.loss"], "weight": float(ss["distill.term.weight"])}
    if kind == "logits":
        term["temperature"] = float(ss["distill.term.temperature"])
    if kind == "feature":
        term.update(teacher=ss["distill.term.teacher"], student=ss["distill.term.student"],
                    projection=ss["distill.term.projection"])
    if stage == NEW_STAGE:
        stage = ss["distill.term.new_stage"].strip() or "hint"

    def change():
        edited = recipes.add_term(current, term, stage, int(ss.get("distill.term.new_epochs", 1)))
        check(edited)  # a term the networks cannot take is refused before it joins the recipe
        return edited

    _store(change)


def _remove(current: recipes.Recipe) -> None:
    _store(lambda: recipes.remove_terms(current, st.session_state["distill.term.remove"]))
    st.session_state["distill.term.remove"] = []


def _fixed(task, cfg) -> tuple[dict | None, bool]:
    """A task that trains what its settings describe: its recipe, shown, not edited."""
    recipe = task.recipe(cfg)
    try:
        recipe = recipes.resolve(recipe, cfg)
    except recipes.RecipeError:
        pass  # layer symbols this screen cannot fill without the networks: shown as written
    st.dataframe(pd.DataFrame(recipe.rows()), hide_index=True)
    st.caption(f"Stages: {recipes.summary(recipe)}")
    st.caption(f"{task.title} trains the recipe its settings describe: change them above.")
    return None, False


def section(task, cfg, teacher: dict) -> tuple[dict | None, bool]:
    """Draw the section; return (the recipe the run carries, None for the sliders' own; whether it is refused)."""
    st.subheader("Recipe")
    if not task.recipe_editable:
        return _fixed(task, cfg)
    student = {n: v for n, v in task.flat(cfg).items() if n in task.student_params()}
    t_layers, s_layers = _layers(task.name, teacher["path"], os.path.getmtime(teacher["path"]),
                                 state.dataset_name(), student)
    hint = task.hint_layers(cfg)

    def check(recipe):
        return recipes.fit_to(recipe, cfg, t_layers, s_layers, hint)

    method = state.kept(st.selectbox, "Method", "distill.method", SETTINGS, options=[SETTINGS, *recipes.METHODS],
                        on_change=_forget_edits,
                        format_func=lambda m: ("the settings above (Hinton's KD; FitNets with hint epochs)"
                                               if m == SETTINGS else f"{m}: {recipes.method(m).description}"),
                        help="A distillation method is a recipe: stages of terms, each a loss between the "
                             "teacher and the student (docs/recipes.md). Edit it below.")
    base = task.recipe(cfg) if method == SETTINGS else recipes.method(method)
    current = recipes.from_dict(st.session_state[KEY]) if KEY in st.session_state else base
    refused = ""
    try:
        shown, notes = check(current)
    except recipes.RecipeError as exc:
        shown, notes, refused = current, [], str(exc)
    rows = shown.rows()
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(f"Stages: {recipes.summary(shown)}")
    if refused:
        st.error(refused, icon=":material/block:")
    for note in notes:
        st.warning(note, icon=":material/lightbulb:")
    if KEY in st.session_state:
        st.caption("Edited: the numbers the settings filled in stay as they were; pick the method again to start over.")

    st.markdown("**Add a term**")
    left, middle, right = st.columns(3)
    kind = left.selectbox("Kind", recipes.KINDS, key="distill.term.kind",
                          help="logits: the networks' outputs; labels: the true labels; feature: a named layer of each")
    left.selectbox("Loss", [n for n, (k, _) in recipes.LOSSES.items() if k == kind], key="distill.term.loss",
                   format_func=lambda n: f"{n}: {recipes.LOSSES[n][1]}")
    middle.number_input("Weight", min_value=0.0, value=1.0, step=0.1, key="distill.term.weight")
    if kind == "feature":
        middle.selectbox("Teacher layer", list(t_layers), key="distill.term.teacher",
                         format_func=lambda n: recipes.layer_label(n, t_layers[n]))
        middle.selectbox("Student layer", list(s_layers), key="distill.term.student",
                         format_func=lambda n: recipes.layer_label(n, s_layers[n]))
        middle.selectbox("Projection", recipes.PROJECTIONS, key="distill.term.projection",
                         help="auto: a regressor where the shapes differ; regressor: always (FitNets); none: never")
    if kind == "logits":
        middle.number_input("Temperature", min_value=0.01, value=float(cfg.temperature), step=0.5,
                            key="distill.term.temperature")
    stage = right.selectbox("Stage", [*[s.name for s in current.stages], NEW_STAGE], key="distill.term.stage")
    if stage == NEW_STAGE:
        right.text_input("New stage's name", value="hint", key="distill.term.new_stage")
        right.number_input("New stage's epochs", min_value=1, value=1, step=1, key="distill.term.new_epochs")
    right.button("Add term", on_click=_add, args=(current, check))

    picked = st.multiselect("Terms to remove", list(range(len(rows))), key="distill.term.remove",
                            format_func=lambda i: f"{i + 1}. {rows[i]['stage']}: {rows[i]['loss']}"
                                                  + (f" {rows[i]['teacher']} → {rows[i]['student']}"
                                                     if rows[i]['kind'] == "feature" else ""))
    st.button("Remove terms", on_click=_remove, args=(current,), disabled=not picked)
    if st.session_state.get("distill.recipe_error"):
        st.error(st.session_state["distill.recipe_error"], icon=":material/block:")
    edited = KEY in st.session_state or method != SETTINGS
    return (current.to_dict() if edited else None), bool(refused)
