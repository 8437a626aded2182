"""TinyBERT as a recipe (:mod:`kdcore.recipes`): the one the text settings describe, and a recipe read back.

TinyBERT (Jiao et al. 2020) is two stages of terms. For the default
student (2 layers) under the default teacher (4 layers, uniform mapping)::

    stages:
    - name: intermediate
      epochs: 3                      # intermediate_epochs
      terms:
      - {kind: feature, loss: token-mse, teacher: embeddings, student: embeddings, weight: 1.0, projection: auto}
      - {kind: feature, loss: token-mse, teacher: layer2, student: layer1, weight: 1.0, projection: regressor}
      - {kind: feature, loss: attention-mse, teacher: layer2, student: layer1, weight: 1.0}
      - {kind: feature, loss: token-mse, teacher: layer4, student: layer2, weight: 1.0, projection: regressor}
      - {kind: feature, loss: attention-mse, teacher: layer4, student: layer2, weight: 1.0}
    - name: prediction
      terms:
      - {kind: logits, loss: soft-ce, weight: 0.9, temperature: 2.0}
      - {kind: labels, loss: ce, weight: 0.1}

Layers are named as the encoder names its blocks (:func:`.model.build`):
``embeddings``, ``layer1`` … ``layerN``. The weights are
``embedding_weight``, ``hidden_weight`` and ``attention_weight``; a term of
weight 0 is left out (and a term left out weighs 0). The hidden terms carry
``projection: regressor`` because TinyBERT gives every mapped layer its W_h;
the embedding term's ``auto`` adds W_e only where the widths differ.

:func:`read` takes any recipe of that shape back: the intermediate stage's
terms become a :class:`Layerwise` (which layer learns which, with what
weight), run by :func:`.intermediate.fit_intermediate`, and the prediction
stage (logits and labels terms) is a recipe of its own for
:func:`kdcore.stages.fit_recipe`. Editing a term's teacher layer changes the
mapping, removing one unmaps it. Pure Python: a recipe is checked with the
other settings, before anything trains.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ... import recipes

HIDDEN, ATTENTION = "token-mse", "attention-mse"
SHAPE = ("task text runs TinyBERT's shape: an intermediate stage of token-mse terms (embeddings, layer1…layerN) and "
         "attention-mse terms (layer1…layerN), then a prediction stage of logits and labels terms; or the "
         "prediction stage alone")


@dataclass(frozen=True)
class Pair:
    """One layer-wise term: student layer ``student`` (1-based) learns teacher layer ``teacher``."""

    student: int
    teacher: int
    weight: float
    projection: str = "regressor"


@dataclass(frozen=True)
class Layerwise:
    """TinyBERT's intermediate stage as :func:`.intermediate.fit_intermediate` runs it."""

    epochs: int | None  # None: the run's epochs
    embedding: Pair | None  # student 0 and teacher 0 stand for the embeddings
    hidden: tuple[Pair, ...]
    attention: tuple[Pair, ...]

    @property
    def teacher_layers(self) -> list[int]:
        """The teacher layers whose hidden states and scores the stage reads, in order."""
        return sorted({p.teacher for p in (*self.hidden, *self.attention)})

    def text(self) -> str:
        """Who learns from whom, in words: ``student 1 ← teacher 2 (hidden states, attention), …``."""
        kinds: dict[tuple[int, int], list[str]] = {}
        for kind, pairs in (("hidden states", self.hidden), ("attention", self.attention)):
            for p in pairs:
                kinds.setdefault((p.student, p.teacher), []).append(kind)
        parts = ["embeddings ← embeddings"] if self.embedding is not None else []
        return ", ".join(parts + [f"student {m} ← teacher {g} ({', '.join(k)})" for (m, g), k in sorted(kinds.items())])


def describe(cfg, mapping: list[int]) -> recipes.Recipe:
    """The recipe ``cfg``'s settings describe; ``mapping[m - 1]`` is student layer m's teacher layer (g(m))."""
    prediction = recipes.from_config(cfg).stages[-1]
    stages = [recipes.Stage("prediction", prediction.terms)]
    terms = []
    if cfg.embedding_weight:
        terms.append(recipes.Term("feature", HIDDEN, float(cfg.embedding_weight), "embeddings", "embeddings"))
    for m, g in enumerate(mapping, start=1):
        if cfg.hidden_weight:
            terms.append(recipes.Term("feature", HIDDEN, float(cfg.hidden_weight), f"layer{g}", f"layer{m}",
                                      projection="regressor"))
        if cfg.attention_weight:
            terms.append(recipes.Term("feature", ATTENTION, float(cfg.attention_weight), f"layer{g}", f"layer{m}"))
    if cfg.intermediate_epochs and terms:
        stages.insert(0, recipes.Stage("intermediate", tuple(terms), int(cfg.intermediate_epochs)))
    return recipes.Recipe("tinybert" if len(stages) == 2 else "prediction-layer", tuple(stages),
                          "TinyBERT (Jiao et al. 2020): layer-wise terms, then the prediction layer")


def _where(stage: str, i: int) -> str:
    return f"stage {stage!r}, term {i + 1}"


def _layer(name: str, where: str, who: str, high: int | None) -> int:
    """``embeddings`` → 0, ``layerK`` → K, checked against the network's depth when it is known."""
    if name == "embeddings":
        return 0
    found = re.fullmatch(r"layer([1-9][0-9]*)", name)
    if not found:
        raise recipes.RecipeError(f"{where}: the {who} has no layer {name!r}; a text encoder's layers are "
                                  "embeddings and layer1…layerN")
    k = int(found.group(1))
    if high is not None and k > high:
        raise recipes.RecipeError(f"{where}: the {who} has layers 1 to {high} (got {name})")
    return k


def read(recipe: recipes.Recipe, student: dict, teacher: dict | None = None) -> tuple[Layerwise | None,
                                                                                      recipes.Recipe]:
    """(the intermediate stage, or None; the prediction stage as a recipe) of a resolved text recipe.

    ``student`` and ``teacher`` are shapes (``{"layers", "hidden", "heads"}``,
    :func:`.model.shape_of`); without a teacher its depth, width and heads
    are checked later, when it is known. A recipe of another shape is
    refused in one line that says what the text task runs.
    """
    if len(recipe.stages) > 2:
        raise recipes.RecipeError(f"{SHAPE} (got {len(recipe.stages)} stages)")
    *first, last = recipe.stages
    for i, t in enumerate(last.terms):
        if t.kind == "feature":
            raise recipes.RecipeError(f"{_where(last.name, i)}: {SHAPE} (got {t.loss} in the last stage)")
    prediction = recipes.Recipe(recipe.name, (last,), recipe.description)
    if not first:
        return None, prediction
    stage = first[0]
    embedding, hidden, attention = None, [], []
    t_layers = None if teacher is None else teacher["layers"]
    for i, t in enumerate(stage.terms):
        where = _where(stage.name, i)
        if t.loss not in (HIDDEN, ATTENTION):
            raise recipes.RecipeError(f"{where}: {SHAPE} (got {t.loss} in the first stage)")
        if t.weight_end not in (None, t.weight):
            raise recipes.RecipeError(f"{where}: the intermediate stage's weights are constant (got a {t.schedule} "
                                      f"schedule from {t.weight:g} to {t.weight_end:g})")
        s, g = _layer(t.student, where, "student", student["layers"]), _layer(t.teacher, where, "teacher", t_layers)
        if (s == 0) != (g == 0) or (s == 0 and t.loss == ATTENTION):
            raise recipes.RecipeError(f"{where}: {t.loss} pairs embeddings with embeddings and layers with layers "
                                      f"(got the student's {t.student} with the teacher's {t.teacher})")
        if t.loss == ATTENTION and t.projection == "regressor":
            raise recipes.RecipeError(f"{where}: attention-mse compares scores head by head; it takes no regressor "
                                      "(projection auto or none)")
        if t.loss == HIDDEN and t.projection == "none" and teacher is not None and teacher["hidden"] != student["hidden"]:
            raise recipes.RecipeError(f"{where}: the student's {t.student} is {student['hidden']} wide and the "
                                      f"teacher's {t.teacher} {teacher['hidden']}: projection none cannot compare them "
                                      "(use auto or regressor)")
        if not t.weight:
            continue
        pair = Pair(s, g, float(t.weight), t.projection)
        if s == 0:
            if embedding is not None:
                raise recipes.RecipeError(f"{where}: the embeddings have one term (got a second)")
            embedding = pair
        else:
            (hidden if t.loss == HIDDEN else attention).append(pair)
    if attention and teacher is not None and teacher["heads"] % student["heads"]:
        raise recipes.RecipeError(f"the attention term needs the teacher's heads ({teacher['heads']}) to divide by "
                                  f"the student's (got {student['heads']}); set student_heads to a divisor, or "
                                  "attention_weight to 0 (a recipe: leave its attention-mse terms out)")
    if embedding is None and not hidden and not attention:
        return None, prediction  # every term weighs 0: the stage would train nothing
    return Layerwise(stage.epochs, embedding, tuple(hidden), tuple(attention)), prediction
