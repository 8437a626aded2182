"""A distillation recipe is data: ordered stages, each a list of terms that say what the student matches.

This is TextBrewer's ``intermediate_matches`` and torchdistill's loss entries
in KD Studio's words. A **term** is one row::

    {kind: feature, teacher: pool1, student: pool1, loss: at, weight: 1.0,
     projection: auto, temperature: 1.0, schedule: constant}

- ``kind`` says what the two sides are: ``logits`` (the networks' outputs:
  Hinton's soft targets and the methods that refine them), ``labels`` (the
  student's outputs against the true labels; no teacher side) or ``feature``
  (a named layer of each network: FitNets' hint, attention maps, relations).
- ``loss`` is one of :data:`LOSSES` for that kind; each formula lives once in
  :mod:`kdcore.losses`, with its paper and equation.
- ``weight`` multiplies the term in the stage's sum; ``temperature`` softens
  logits terms. With a ``schedule`` other than ``constant`` both move over the
  stage's epochs to ``weight_end`` and ``temperature_end`` (:func:`kdcore.losses.schedule`).
- ``projection`` (feature terms whose loss compares values, :data:`PROJECTED`):
  ``auto`` adds FitNets' regressor where the two layers' shapes differ (and
  says so in :func:`check`'s notes), ``regressor`` always adds it (as FitNets
  does), ``none`` refuses different shapes.

A **stage** trains the student on the sum of its terms for its ``epochs``
(None: the run's ``epochs``); only the layers a term's gradient reaches
train, so FitNets' hint stage, whose only term sits on the guided layer,
trains the student up to that layer and no further. Stages run in order:
FitNets is a hint stage then a Hinton stage; TinyBERT an intermediate stage
then a prediction stage. A run's recipe is written in its record.

Layer names and numbers may be **symbols** a run fills in
(:func:`resolve`): ``temperature``, ``alpha`` and ``1-alpha`` take the run's
settings; ``@hint`` is the task's FitNets pair (``Task.hint_layers``),
``@penultimate`` the layer that feeds each network's logits, ``@attention``
the student's deepest feature map and the teacher's last one of its height
and width (both found from the networks' shapes: :func:`layer_symbols`). The methods
KD Studio ships (:data:`METHODS`) are recipes written with them, in
``kdcore/methods/*.yaml``, one file per method, read like any user's recipe.

This module is pure Python (no TensorFlow): parsing and checking a recipe is
instant; :mod:`kdcore.stages` trains one.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .params import SCHEDULES

KINDS = ("logits", "labels", "feature")
# loss name → (kind, what it is, in a few words). The formulas: kdcore.losses (see each name's function there).
LOSSES = {
    "kl": ("logits", "Hinton et al. 2015: T² · KL(teacher ‖ student) at T"),
    "soft-ce": ("logits", "cross-entropy with the teacher's softened probabilities (TinyBERT's prediction layer)"),
    "prob-mse": ("logits", "squared error between the softened probabilities"),
    "logit-mse": ("logits", "squared error between raw logits (Caruana; T has no effect)"),
    "dkd": ("logits", "Decoupled KD, Zhao et al. 2022: target-class KL + 8 · non-target KL"),
    "dist": ("logits", "DIST, Huang et al. 2022: inter- and intra-class Pearson correlation"),
    "ls-kl": ("logits", "logit standardisation, Sun et al. 2024: KL between z-scored logits"),
    "reverse-kl": ("logits", "KL(student ‖ teacher): mode-seeking (Agarwal et al. 2024)"),
    "gjsd": ("logits", "generalised Jensen–Shannon divergence, β = 0.5 (Agarwal et al. 2024)"),
    "ce": ("labels", "cross-entropy with the true labels (hidden labels count nothing)"),
    "hint": ("feature", "FitNets, Romero et al. 2015: squared error to the teacher's layer, through a regressor"),
    "at": ("feature", "Attention Transfer, Zagoruyko & Komodakis 2017: distance between attention maps"),
    "rkd-distance": ("feature", "Relational KD, Park et al. 2019: the batch's pairwise distances"),
    "rkd-angle": ("feature", "Relational KD, Park et al. 2019: the batch's triplet angles"),
    "token-mse": ("feature", "TinyBERT, Jiao et al. 2020: squared error between token states (embeddings, a layer's "
                             "hidden states) over the real tokens, through a projection; a task's own stage runs it"),
    "attention-mse": ("feature", "TinyBERT, Jiao et al. 2020: squared error between attention scores before the "
                                 "softmax, head by head, over pairs of real tokens; a task's own stage runs it"),
}
# Feature losses that need what only a token model gives (the padding mask, an encoder layer's scores beside its
# states): the task whose networks give them runs them in its own stage, and the general step refuses them.
OWN_STAGE = ("token-mse", "attention-mse")
PROJECTED = ("hint",)  # feature losses that compare values one for one, so shapes must agree (through a regressor)
PROJECTIONS = ("auto", "regressor", "none")
SYMBOLS = ("temperature", "alpha", "1-alpha")
LAYER_SYMBOLS = ("@hint", "@attention", "@penultimate")
METHODS_DIR = Path(__file__).with_name("methods")


class RecipeError(ValueError):
    """A recipe that cannot run: the message is one line naming the stage, the term and what is accepted."""


@dataclass(frozen=True)
class Term:
    kind: str
    loss: str
    weight: float | str = 1.0
    teacher: str = ""
    student: str = ""
    projection: str = "auto"
    temperature: float | str = 1.0
    schedule: str = "constant"
    weight_end: float | str | None = None
    temperature_end: float | str | None = None

    @property
    def label(self) -> str:
        """A record's column for the term: ``kl``, ``hint_pool1``, ``rkd_angle_dense`` (the student's layer for features)."""
        return (f"{self.loss}_{self.student}" if self.kind == "feature" else self.loss).replace("-", "_")

    def at(self, epoch: int, epochs: int) -> tuple[float, float]:
        """(weight, temperature) at ``epoch`` (0-based) of a stage of ``epochs``, after :func:`resolve`."""
        from .losses import schedule

        end_w = self.weight if self.weight_end is None else self.weight_end
        end_t = self.temperature if self.temperature_end is None else self.temperature_end
        return (schedule(self.schedule, self.weight, end_w, epoch, epochs),
                schedule(self.schedule, self.temperature, end_t, epoch, epochs))


@dataclass(frozen=True)
class Stage:
    name: str
    terms: tuple[Term, ...]
    epochs: int | str | None = None  # None: the run's epochs; "hint_epochs": that setting


@dataclass(frozen=True)
class Recipe:
    name: str
    stages: tuple[Stage, ...]
    description: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "stages": [{"name": s.name, "epochs": s.epochs,
                            "terms": [_term_dict(t) for t in s.terms]} for s in self.stages]}

    def rows(self) -> list[dict]:
        """One row per term, stage first: the Distill page's table and the CLI's listing."""
        return [{"stage": s.name, **_term_dict(t)} for s in self.stages for t in s.terms]


def _term_dict(term: Term) -> dict:
    return {k: v for k, v in dataclasses.asdict(term).items() if v is not None}


# --- reading ------------------------------------------------------------------------------------------
def _where(stage: str, i: int | None = None) -> str:
    return f"stage {stage!r}" + ("" if i is None else f", term {i + 1}")


def _number(value, what: str, low: float = 0.0) -> float | str:
    if isinstance(value, str) and value in SYMBOLS:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise RecipeError(f"{what} must be a number >= {low:g} or one of {', '.join(SYMBOLS)} (got {value!r})")
    return float(value)


def term_from_dict(data: dict, where: str = "") -> Term:
    """One term from a dict (a YAML or JSON row, or the page's table), every field checked; one-line errors."""
    where = where or "term"
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a term is a mapping of {', '.join(f.name for f in dataclasses.fields(Term))} "
                          f"(got {type(data).__name__})")
    names = {f.name for f in dataclasses.fields(Term)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RecipeError(f"{where}: unknown field(s) {', '.join(unknown)}; a term has {', '.join(sorted(names))}")
    loss = data.get("loss")
    if loss not in LOSSES:
        raise RecipeError(f"{where}: unknown loss {loss!r}; accepted: {', '.join(LOSSES)}")
    kind = data.get("kind", LOSSES[loss][0])
    if kind not in KINDS:
        raise RecipeError(f"{where}: unknown kind {kind!r}; accepted: {', '.join(KINDS)}")
    if LOSSES[loss][0] != kind:
        raise RecipeError(f"{where}: loss {loss!r} is a {LOSSES[loss][0]} loss, not a {kind} one")
    values = dict(data, kind=kind)
    for name in ("weight", "weight_end"):
        if values.get(name) is not None:
            values[name] = _number(values[name], f"{where}: {name}")
    for name in ("temperature", "temperature_end"):
        if values.get(name) is not None:
            values[name] = _number(values[name], f"{where}: {name}", low=1e-6)
    if values.get("schedule", "constant") not in SCHEDULES:
        raise RecipeError(f"{where}: schedule must be one of {', '.join(SCHEDULES)} (got {values['schedule']!r})")
    if values.get("projection", "auto") not in PROJECTIONS:
        raise RecipeError(f"{where}: projection must be one of {', '.join(PROJECTIONS)} "
                          f"(got {values['projection']!r})")
    for side in ("teacher", "student"):
        value = values.get(side, "")
        if not isinstance(value, str):
            raise RecipeError(f"{where}: {side} must be a layer name (got {value!r})")
        if kind == "feature" and not value:
            raise RecipeError(f"{where}: a feature term names a {side} layer (or {' or '.join(LAYER_SYMBOLS)})")
    return Term(**values)


def from_dict(data: dict, name: str = "recipe") -> Recipe:
    """A recipe from a dict: ``{name, description, stages: [{name, epochs, terms: [...]}, ...]}``.

    A bare list of terms is one stage. Every error is one line naming the
    stage and the term (1-based) and what is accepted.
    """
    if isinstance(data, list):
        data = {"stages": [{"name": "distil", "terms": data}]}
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list) or not data["stages"]:
        raise RecipeError("a recipe is a mapping with a non-empty list 'stages' (each {name, epochs, terms}), "
                          "or a list of terms")
    stages = []
    for k, s in enumerate(data["stages"]):
        if not isinstance(s, dict) or not isinstance(s.get("terms"), list) or not s["terms"]:
            raise RecipeError(f"stage {k + 1}: a stage is a mapping with a non-empty list 'terms'")
        unknown = sorted(set(s) - {"name", "epochs", "terms"})
        if unknown:
            raise RecipeError(f"stage {k + 1}: unknown field(s) {', '.join(unknown)}; a stage has name, epochs, terms")
        sname = str(s.get("name") or f"stage{k + 1}")
        epochs = s.get("epochs")
        if epochs is not None and epochs != "hint_epochs" and (
                isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise RecipeError(f"{_where(sname)}: epochs must be a whole number >= 1, hint_epochs or left out "
                              f"(got {epochs!r})")
        terms = tuple(term_from_dict(t, _where(sname, i)) for i, t in enumerate(s["terms"]))
        stages.append(Stage(sname, terms, epochs))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise RecipeError(f"stage names must differ (got {', '.join(names)})")
    last = stages[-1]
    if not any(t.kind in ("logits", "labels") for t in last.terms):
        raise RecipeError(f"{_where(last.name)}: the last stage trains the whole student, so it needs a logits or "
                          "labels term")
    return Recipe(str(data.get("name") or name), tuple(stages), str(data.get("description") or ""))


def load(path) -> Recipe:
    """A recipe file: YAML (``.yaml``/``.yml``) or JSON (``.json``); a file that is neither is refused in one line."""
    import yaml

    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise RecipeError(f"recipe file {path} must end in .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"cannot read recipe file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecipeError(f"recipe file {path} is not valid {path.suffix[1:].upper()}: {first}") from None
    return from_dict(data, path.stem)


def method(name: str) -> Recipe:
    """A shipped method's recipe (``kdcore/methods/NAME.yaml``), symbols unresolved."""
    if name not in METHODS:
        raise RecipeError(f"unknown method {name!r}; accepted: {', '.join(METHODS)}")
    return load(METHODS_DIR / f"{name}.yaml")


METHODS = tuple(sorted(p.stem for p in METHODS_DIR.glob("*.yaml")))


def from_config(cfg, hint_layers: tuple[str, str] | None = None) -> Recipe:
    """The recipe today's settings describe: Hinton's soft targets and labels, after a FitNets hint stage if asked.

    ``alpha`` weighs the soft term and 1 − alpha the labels; ``hint_epochs``
    > 0 puts the hint stage (``hint_layers``: the task's pair) first.
    """
    stages = []
    if getattr(cfg, "hint_epochs", 0):
        if hint_layers is None:
            raise RecipeError("hint_epochs needs the (teacher, student) layers to pair; this task names none")
        stages.append(Stage("hint", (Term("feature", "hint", 1.0, *hint_layers, projection="regressor"),),
                            "hint_epochs"))
    t_moves = getattr(cfg, "temperature_schedule", "constant") != "constant"
    a_moves = getattr(cfg, "alpha_schedule", "constant") != "constant"
    if t_moves and a_moves and cfg.temperature_schedule != cfg.alpha_schedule:
        raise RecipeError(f"temperature_schedule and alpha_schedule must be the same kind when both move "
                          f"(got {cfg.temperature_schedule} and {cfg.alpha_schedule}); a term has one schedule")
    kind = cfg.temperature_schedule if t_moves else cfg.alpha_schedule if a_moves else "constant"
    alpha_end = cfg.alpha_end if a_moves else cfg.alpha
    stages.append(Stage("distil", (
        Term("logits", cfg.loss, cfg.alpha, temperature=cfg.temperature, schedule=kind,
             weight_end=alpha_end if kind != "constant" else None,
             temperature_end=(cfg.temperature_end if t_moves else cfg.temperature) if kind != "constant" else None),
        Term("labels", "ce", round(1.0 - cfg.alpha, 12), schedule=kind,
             weight_end=round(1.0 - alpha_end, 12) if kind != "constant" else None))))
    return Recipe("hinton" if len(stages) == 1 else "fitnets", tuple(stages))


# --- editing (the Distill page's term editor) ------------------------------------------------------------
def _edited(recipe: Recipe, stages: list[Stage]) -> Recipe:
    """The edited stages as a recipe, read again whole (so every rule of :func:`from_dict` holds after an edit)."""
    name = recipe.name if recipe.name.endswith("(edited)") else f"{recipe.name} (edited)"
    return from_dict(Recipe(name, tuple(stages), recipe.description).to_dict())


def add_term(recipe: Recipe, term: dict, stage: str, new_stage_epochs: int | None = None) -> Recipe:
    """``recipe`` with ``term`` (checked as a file's would be) last in the stage named ``stage``.

    A name no stage has starts a new first stage of ``new_stage_epochs``
    epochs (None: the run's): the place of a FitNets hint stage.
    """
    added = term_from_dict(term, f"the new term of stage {stage!r}")
    stages = list(recipe.stages)
    names = [s.name for s in stages]
    if stage in names:
        k = names.index(stage)
        stages[k] = Stage(stage, stages[k].terms + (added,), stages[k].epochs)
    else:
        stages.insert(0, Stage(stage, (added,), new_stage_epochs))
    return _edited(recipe, stages)


def remove_terms(recipe: Recipe, rows) -> Recipe:
    """``recipe`` without the terms at positions ``rows`` of :meth:`Recipe.rows`; a stage left empty goes too."""
    drop, k, stages = set(rows), 0, []
    for s in recipe.stages:
        kept = tuple(t for i, t in enumerate(s.terms, start=k) if i not in drop)
        k += len(s.terms)
        if kept:
            stages.append(Stage(s.name, kept, s.epochs))
    if not stages:
        raise RecipeError("a recipe needs at least one term: keep a logits or labels term in the last stage")
    return _edited(recipe, stages)


def summary(recipe: Recipe) -> str:
    """The stages in one line, as the pages caption a recipe: ``hint (1 epoch: hint hint→hint) → distil (kl, ce)``."""
    def term(t: Term) -> str:
        return f"{t.loss} {t.teacher}→{t.student}" if t.kind == "feature" else t.loss

    def epochs(s: Stage) -> str:
        if s.epochs is None:
            return ""
        return "hint epochs: " if s.epochs == "hint_epochs" else f"{s.epochs} epoch{'s' * (s.epochs != 1)}: "

    return " → ".join(f"{s.name} ({epochs(s)}{', '.join(term(t) for t in s.terms)})" for s in recipe.stages)


def layer_label(name: str, shape) -> str:
    """How a layer is offered in a list: ``pool1 (13x13x32)``."""
    return f"{name} ({shape_text(shape)})"


# --- filling in symbols and checking against the networks ----------------------------------------------
def resolve(recipe: Recipe, cfg, layers: dict[str, tuple[str, str]] | None = None) -> Recipe:
    """``recipe`` with its symbols filled in from the run's settings ``cfg`` and the task's ``layers``.

    ``layers`` maps a layer symbol (``@hint``…) to its (teacher, student)
    layer names; a symbol the task does not name is refused in one line.
    """
    layers = layers or {}
    values = {"temperature": float(cfg.temperature), "alpha": float(cfg.alpha), "1-alpha": round(1.0 - float(cfg.alpha), 12)}

    def number(v):
        return values[v] if isinstance(v, str) else v

    def layer(v, side: int, where: str):
        if not v.startswith("@"):
            return v
        if v not in layers:
            raise RecipeError(f"{where}: this task names no layer for {v}; name the layer itself")
        return layers[v][side]

    stages = []
    for s in recipe.stages:
        epochs = (getattr(cfg, "hint_epochs", 0) or 1) if s.epochs == "hint_epochs" else s.epochs
        terms = []
        for i, t in enumerate(s.terms):
            where = _where(s.name, i)
            terms.append(dataclasses.replace(
                t, weight=number(t.weight), temperature=number(t.temperature),
                weight_end=None if t.weight_end is None else number(t.weight_end),
                temperature_end=None if t.temperature_end is None else number(t.temperature_end),
                teacher=layer(t.teacher, 0, where), student=layer(t.student, 1, where)))
        stages.append(Stage(s.name, tuple(terms), epochs))
    return Recipe(recipe.name, tuple(stages), recipe.description)


def layer_symbols(teacher_layers: dict[str, tuple], student_layers: dict[str, tuple],
                  hint: tuple[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """The layer symbols these two networks give: each to a (teacher layer, student layer) pair.

    ``*_layers`` map layer names to output shapes in the networks' order,
    the logits last. ``@penultimate`` is the layer before the logits;
    ``@attention`` the student's deepest feature map (H×W×C) and the
    teacher's last map of the same H and W, when there is one; ``@hint`` the
    task's FitNets pair, when it names one.
    """
    out = {}
    if hint is not None:
        out["@hint"] = tuple(hint)
    t_names, s_names = list(teacher_layers), list(student_layers)
    if len(t_names) > 1 and len(s_names) > 1:
        out["@penultimate"] = (t_names[-2], s_names[-2])
    s_maps = [n for n in s_names if len(student_layers[n]) == 3]
    if s_maps:
        size = tuple(student_layers[s_maps[-1]][:2])
        t_maps = [n for n in t_names if len(teacher_layers[n]) == 3 and tuple(teacher_layers[n][:2]) == size]
        if t_maps:
            out["@attention"] = (t_maps[-1], s_maps[-1])
    return out


def fit_to(recipe: Recipe, cfg, teacher_layers: dict[str, tuple], student_layers: dict[str, tuple],
           hint: tuple[str, str] | None = None) -> tuple[Recipe, list[str]]:
    """(``recipe`` resolved for two networks given by their layers' shapes, :func:`check`'s notes), or one refusal.

    No model is needed: the Distill page checks an edited recipe with the
    shapes it keeps, the CLI and the pipeline with the loaded networks'
    (:func:`kdcore.stages.prepare`).
    """
    resolved = resolve(recipe, cfg, layer_symbols(teacher_layers, student_layers, hint))
    return resolved, check(resolved, teacher_layers, student_layers)


def shape_text(shape) -> str:
    """(16, 16, 32) → ``16x16x32``, as messages write a shape."""
    return "x".join(str(int(s)) for s in shape)


def _fits(loss: str, projection: str, t: tuple, s: tuple) -> str:
    """Why a feature term cannot compare a student layer of shape ``s`` with a teacher layer of shape ``t`` ("" = it can)."""
    if loss == "at":
        if len(t) != 3 or len(s) != 3:
            return "attention transfer compares feature maps (H×W×C), not vectors"
        if t[:2] != s[:2]:
            return "attention transfer needs maps of equal height and width"
        return ""
    if loss in PROJECTED:
        if t == s or projection != "none" and (len(t) == len(s) == 1 or (
                len(t) == len(s) == 3 and s[0] >= t[0] and s[1] >= t[1])):
            return ""
        if projection == "none":
            return "the shapes differ and projection is none (use auto or regressor)"
        return ("a convolution cannot enlarge a feature map" if len(t) == len(s) == 3 else
                "one is a feature map and the other a vector")
    return ""  # relations (RKD) compare batch-by-batch matrices: any two shapes


def check(recipe: Recipe, teacher_layers: dict[str, tuple], student_layers: dict[str, tuple]) -> list[str]:
    """Refuse in one line a resolved recipe that cannot run on these networks; else the notes worth saying.

    ``*_layers`` map each network's layer names to their output shapes
    (without the batch), in order. Refused: a layer that does not exist (the
    message lists the network's layers), shapes no projection can map (both
    layers and shapes named). Noted: each projection added where widths differ.
    """
    notes = []
    for s in recipe.stages:
        for i, t in enumerate(s.terms):
            if t.kind != "feature":
                continue
            where = _where(s.name, i)
            if t.loss in OWN_STAGE:
                raise RecipeError(f"{where}: {t.loss} is run by the stage of a task whose networks read padded "
                                  "tokens (as TinyBERT's intermediate stage), not by the general step")
            for who, name, known in (("teacher", t.teacher, teacher_layers), ("student", t.student, student_layers)):
                if name not in known:
                    listing = ", ".join(f"{n} ({shape_text(sh)})" for n, sh in known.items())
                    raise RecipeError(f"{where}: the {who} has no layer {name!r}; its layers: {listing}")
            ts, ss = tuple(teacher_layers[t.teacher]), tuple(student_layers[t.student])
            why = _fits(t.loss, t.projection, ts, ss)
            if why:
                raise RecipeError(f"{where}: {t.loss} cannot match the student's {t.student} ({shape_text(ss)}) with "
                                  f"the teacher's {t.teacher} ({shape_text(ts)}): {why}")
            if t.loss in PROJECTED and (t.projection == "regressor" or ts != ss):
                notes.append(f"{s.name}: a regressor maps the student's {t.student} ({shape_text(ss)}) to the "
                             f"teacher's {t.teacher} ({shape_text(ts)}); it is trained with the stage and dropped after")
    return notes
