"""What a task is: the :class:`Task` interface every kind of model fills in, and its small value types.

A :class:`Task` declares everything that differs between distilling a digit
classifier, an image classifier, a text classifier or a language model:

- its datasets (names, where each comes from, which is the default);
- its teacher and student configs, whose fields are rows of the settings
  table (:mod:`kdcore.params`), so widgets, flags and checks follow;
- its metric and which way is better;
- what its teacher's soft targets carry, in a sentence of its own (``soft_targets_story``, on Home);
- the distillation terms it offers, as data;
- how one example is entered and shown (``canvas``, ``image``, ``sentence``,
  ``prompt``, or ``none`` for a task with no example screens), and the
  methods that kind's screens call, declared by one Protocol per kind
  (:data:`EXAMPLES`);
- its presets (plain data), the student setting a sweep ranges over, its own
  benchmark if it has one, and how an exported file of it is scored;
- how to build, size, train and score its models.

The defaults here are those of a classifier trained with
:func:`kdcore.training.fit` (logits out, soft targets from the teacher's
logits); a task whose training differs overrides ``train_teacher``,
``distill_student`` and ``train_baseline``. Pages and the CLI ask
``tasks.get(name)`` and never name a task themselves.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .. import params
from ..metric import ACCURACY, Metric  # noqa: F401 - Metric is re-exported: tasks.Metric, from .base import Metric


@dataclass(frozen=True)
class Term:
    """One distillation term a task offers, with the setting that switches or weighs it."""

    name: str
    setting: str
    help: str


SOFT = Term("soft targets", "alpha", "the teacher's probabilities at temperature T (Hinton et al. 2015)")
HINT = Term("FitNets hint", "hint_epochs", "a middle student layer learns to predict a teacher layer first "
                                           "(Romero et al. 2015)")


class Task:
    name = ""
    title = ""
    description = ""
    metric = ACCURACY
    example = "none"
    example_noun = "example"  # what one example is called on the screens ("test digits", "the last drawn digit")
    soft_targets_story = ("The teacher's softened probabilities carry what it learnt about how "
                          "its classes resemble each other.")
    terms: tuple = (SOFT,)
    teacher_config: type = None
    student_config: type = None
    distill_config: type = None  # a DistillConfig subclass with the task's own run settings (default: DistillConfig)
    presets: dict = {}  # name -> {"dataset", "teacher", "distill", "description", optional "demo": True,
    #                                  optional "teacher_dataset": a larger dataset the teacher alone reads}
    width_setting = "student_units"  # the student setting a sweep or a study ranges over
    quick_datasets: tuple = ()  # datasets small enough that an experiment on them takes minutes on two cores
    bench_help = ""  # what :meth:`bench` times and on which data by default, a phrase for ``bench --help``
    recipe_editable = True  # the Distill page edits the recipe term by term; False: it shows what the settings describe

    # --- settings, from the table ------------------------------------------------------------
    @staticmethod
    def _names(cls) -> list[str]:
        prefix = getattr(cls, "PREFIX", "")
        return [prefix + f.name for f in dataclasses.fields(cls)
                if any(p.name == prefix + f.name for p in params.table())]

    def teacher_params(self) -> list[str]:
        """Settings the Teacher page and ``train-teacher`` show: the teacher's own, then training's."""
        return self._names(self.teacher_config)

    def student_params(self) -> list[str]:
        return self._names(self.student_config)

    def distill_class(self):
        """The config class of a distillation run: the task's own, else :class:`~kdcore.config.DistillConfig`."""
        from ..config import DistillConfig

        return self.distill_config or DistillConfig

    def default_distill(self):
        """A distillation run with every setting at its default (the Distill page starts from it)."""
        return self.distill_class()(student=self.student_config())

    def distill_params(self) -> list[str]:
        """Distillation and training settings a student run takes (the student's size aside)."""
        return [n for n in self._names(self.distill_class())
                if params.get(n, self.name).for_task(self.name) and self.offers(n)]

    def offers(self, setting: str) -> bool:
        """Whether a term-switching setting (``hint_epochs``) belongs to this task; other settings always do."""
        switches = {t.setting for t in (SOFT, HINT)}
        return setting not in switches or any(t.setting == setting for t in self.terms)

    def teacher_from(self, values: dict):
        """A teacher config from flat settings (a form, a link); missing ones keep their defaults."""
        return self.teacher_config(**{n: values[n] for n in self.teacher_params() if n in values})

    def distill_from(self, values: dict):
        """A :class:`~kdcore.config.DistillConfig` from flat settings: ``student_units`` goes to the student."""
        prefix = self.student_config.PREFIX
        student = self.student_config(**{n.removeprefix(prefix): values[n] for n in self.student_params()
                                         if n in values})
        return self.distill_class()(**{n: values[n] for n in self.distill_params() if n in values},
                                     student=student)

    def flat(self, cfg) -> dict:
        """The flat settings of a teacher or distillation config (the inverse of ``*_from``)."""
        out = {n: getattr(cfg, n) for n in self.distill_params() + self.teacher_params() if hasattr(cfg, n)}
        student = getattr(cfg, "student", None)
        if student is not None:
            prefix = self.student_config.PREFIX
            out.update({n: getattr(student, n.removeprefix(prefix)) for n in self.student_params()})
        return out

    # --- data ----------------------------------------------------------------------------------
    def datasets(self) -> list[dict]:
        """``[{"name", "available", "source", "train", "test"}]``: what ``tasks`` and the sidebar list."""
        raise NotImplementedError

    def default_dataset(self) -> tuple[str, str]:
        """(name, why it is the default)."""
        raise NotImplementedError

    def load(self, name: str | None = None):
        """A :class:`kdcore.dataset.Dataset` by name or path; ``None`` means the default."""
        raise NotImplementedError

    # --- models --------------------------------------------------------------------------------
    def build_teacher(self, cfg):
        raise NotImplementedError

    def build_student(self, cfg, seed: int = 0):
        raise NotImplementedError

    def teacher_size(self, cfg, data=None) -> dict:
        """``{"params", "macs", "weight_bytes"}`` without TensorFlow, for the size table.

        ``data``, when given, is the dataset the model is for: a task whose
        networks take their input and output sizes from it (images) counts for
        that shape; without it, for the task's usual one.
        """
        raise NotImplementedError

    def student_size(self, cfg, data=None) -> dict:
        raise NotImplementedError

    def describe_student(self, cfg) -> str:
        return "student"

    def describe_teacher(self, cfg) -> str:
        """A teacher recipe in a few words, as the Experiments page lists a preset: its size and how it trains."""
        return f"{cfg.epochs} epochs"

    def width_field(self) -> str:
        """The student config's field that :attr:`width_setting` sets (the setting without the student's prefix)."""
        return self.width_setting.removeprefix(getattr(self.student_config, "PREFIX", ""))

    def custom_objects(self) -> dict:
        """Keras layer classes of KD Studio's own that this task's saved models use (none: standard layers only)."""
        return {}

    def distill_notes(self, cfg, teacher_config: dict | None) -> list[str]:
        """Sentences about a distillation run that depend on its teacher (a layer mapping, say); default none."""
        return []

    def check_model(self, model, name: str) -> None:
        """Raise a one-line ``ValueError`` if ``model`` is not one of this task's (wrong shapes)."""

    def hint_layers(self, cfg) -> tuple[str, str]:
        """(teacher layer, student layer) that the FitNets stage pairs, by layer name.

        The default pairs the layers both networks name ``hint``; a task whose
        pair depends on the student's shape names its own.
        """
        return "hint", "hint"

    def student_for(self, cfg, data):
        """The untrained student a run of ``cfg`` builds for ``data`` (a task whose shapes come from the data overrides it)."""
        return self.build_student(cfg.student, cfg.seed)

    # --- recipes (kdcore.recipes) ----------------------------------------------------------------
    def recipe(self, cfg):
        """The recipe ``cfg``'s settings describe (symbols unresolved): Hinton's KD, after a FitNets hint stage if asked.

        A task whose distillation has more terms (TinyBERT's) says them here.
        """
        from .. import recipes

        return recipes.from_config(cfg, self.hint_layers(cfg))

    def accept_recipe(self, recipe: dict | None) -> None:
        """Refuse in one line, before any model loads, a recipe (a run's ``cfg.recipe``) this task cannot run.

        Default: any recipe; its layers are checked against the networks by
        :meth:`check_recipe`. A task whose loop runs one shape of recipe says so here.
        """

    def check_recipe(self, cfg, teacher, data):
        """(the run's recipe resolved for ``teacher`` and its student, notes) or one-line :class:`~kdcore.recipes.RecipeError`.

        The run's recipe is the one it carries (``cfg.recipe``), else
        :meth:`recipe`. Called before any training, so a layer that does not
        exist or shapes no projection maps are refused at once.
        """
        from .. import recipes, stages

        self.accept_recipe(cfg.recipe)
        recipe = recipes.from_dict(cfg.recipe) if cfg.recipe is not None else self.recipe(cfg)
        if not any(t.kind == "feature" for s in recipe.stages for t in s.terms):
            return recipes.resolve(recipe, cfg), []  # no layer is named: no network needs building
        return stages.prepare(recipe, cfg, teacher, self.student_for(cfg, data), self.hint_layers(cfg))

    # --- training ------------------------------------------------------------------------------
    def train_teacher(self, cfg, data, progress=None):
        from .. import training

        cfg.validate(len(data.y_train))
        return training.fit(self.build_teacher(cfg), data, cfg, series="teacher", progress=progress)

    def train_baseline(self, cfg, data, progress=None):
        from .. import training

        return training.fit_baseline(cfg, data, self.build_student(cfg.student, cfg.seed), progress)

    def distill_student(self, cfg, teacher, data, progress=None, logits=None):
        """Train the student by the run's recipe (``cfg.recipe``, else the one its settings describe)."""
        from .. import stages

        return stages.fit_distilled(cfg, teacher, data, self.build_student(cfg.student, cfg.seed),
                                    progress, logits, self.hint_layers(cfg))

    def compatible(self, teacher_data, data) -> None:
        """Refuse in one line a teacher dataset whose models cannot teach students of ``data``.

        A teacher may read more data than its students (a larger transfer set, Hinton et al. 2015 §3), but
        its outputs must be the students' classes (a language model's: the same vocabulary, word for word)
        and its inputs of the same shape, or its soft targets mean nothing to them.
        """
        got, want = tuple(teacher_data.x_train.shape[1:]), tuple(data.x_train.shape[1:])
        if tuple(teacher_data.classes) != tuple(data.classes) or got != want:
            raise ValueError(f"teacher dataset {teacher_data.name} does not fit students on {data.name}: it has "
                             f"{len(teacher_data.classes):,} classes and inputs of shape {got}, they have "
                             f"{len(data.classes):,} and {want}; a teacher dataset needs the same classes "
                             "(vocabulary) and input shape")

    def fit_data(self, model, data):
        """(``data`` as ``model`` takes it, a sentence saying what was converted, or ""). Most tasks convert nothing."""
        return data, ""

    def teacher_targets(self, teacher, data):
        """What a distillation run is fed from the teacher, computed once for many runs: its training logits.

        A task whose soft targets cannot be held whole (a language model's
        10,000 words per token) returns None and makes its own in training.
        """
        from .. import training

        return training.teacher_logits(teacher, data)

    def evaluate(self, model, data) -> dict:
        """What ``evaluate`` prints: the test metric and, for a classifier, its confusion matrix."""
        from .. import inference

        predicted = inference.test_logits(model, data).argmax(-1)
        return {"test_size": int(len(data.y_test)), "test_accuracy": float((predicted == data.y_test).mean()),
                "confusion": inference.confusion(data.y_test, predicted, len(data.classes)).tolist()}

    def score(self, model, data) -> float:
        """The metric on the test split."""
        from .. import training

        return training.accuracy(model, data.x_test, data.y_test)

    def paired_gain(self, student, baseline, data, cfg=None):
        """How much better ``student`` answers the test split than ``baseline``: a :class:`kdcore.stats.Interval`.

        The one-seed verdict's statistic (:func:`kdcore.results.verdict`): both
        models answer the same test examples, so the test pairs their answers
        example by example. A classifier's default is McNemar's exact test on
        each model's argmax right/wrong; a task scored otherwise overrides it.
        ``cfg`` is the run's settings, for a task whose scoring reads one.
        """
        from .. import stats, training

        right = [training.predict_logits(m, data.x_test).argmax(-1) == data.y_test for m in (student, baseline)]
        return stats.mcnemar(*right)

    def check_image(self, source) -> None:
        """Refuse in one line a file that is no picture this task reads (the CLI asks before loading any model)."""
        raise ValueError(f"task {self.name!r} takes no picture")

    def prepare_image(self, source, shape):
        """One picture (a path, bytes or an upload) as a model whose input is ``shape`` takes it."""
        raise ValueError(f"task {self.name!r} takes no picture")

    # --- benchmark and export -------------------------------------------------------------------
    def bench(self, dataset=None, epochs: int = 2, repeats: int = 1, quick: bool = False) -> dict:
        """``bench --task NAME``: this task's own measurements, which :meth:`bench_text` prints.

        ``quick`` asks for a first look (the command already cut ``epochs`` and
        ``repeats`` to 2 and 1): a task with a large default dataset times a slice.
        """
        raise ValueError(f"task {self.name!r} has no benchmark of its own; `bench --help` lists the tasks "
                         "that have one")

    def bench_text(self, result: dict) -> str:
        """:meth:`bench`'s result in a few lines for the terminal."""
        return "\n".join(f"{key}: {value}" for key, value in result.items())

    def export_window(self, run_config: dict) -> int | None:
        """The length an exported model's free time axis is fixed at (None: its inputs have a fixed shape)."""
        return None

    def score_export(self, model, exported, data, window: int | None = None) -> dict:
        """The exported file scored on ``data``'s test split beside the float ``model``: the figures its sidecar keeps.

        ``exported`` is a :class:`kdcore.export.Exported` (its ``outputs(x)``
        and its signature ``runner()``). A classifier's default: the argmax
        accuracy of the file's outputs against the Keras model's.
        """
        from .. import inference

        exported_acc = inference.accuracy(exported.outputs(data.x_test), data.y_test)
        float_acc = inference.accuracy(inference.test_logits(model, data), data.y_test)
        return {"accuracy": exported_acc, "float_accuracy": float_acc, "accuracy_change": exported_acc - float_acc,
                "test_images": int(len(data.y_test))}

    def export_text(self, scored: dict) -> str:
        """The line ``export`` prints for :meth:`score_export`'s figures, or "" when the file was not scored."""
        if scored.get("accuracy") is None:
            return ""
        examples = scored.get("test_examples", scored.get("test_images"))  # records before test_examples
        return (f"accuracy {100 * scored['accuracy']:.2f} % on {examples:,} test images "
                f"(float model {100 * scored['float_accuracy']:.2f} %, {100 * scored['accuracy_change']:+.2f} points)")

    def describe(self) -> dict:
        """What ``python -m kdcore tasks --json`` prints for this task."""
        def rows(names, role=""):
            return [{"name": n, "type": p.kind.__name__, "default": p.default_for(role), "allowed": p.allowed,
                     "help": p.help} for n, p in ((n, params.get(n, self.name)) for n in names)]

        return {"name": self.name, "title": self.title, "description": self.description,
                "metric": {"name": self.metric.name, "higher_is_better": self.metric.higher_is_better},
                "example": self.example, "terms": [t.name for t in self.terms], "width_setting": self.width_setting,
                "datasets": self.datasets(), "default_dataset": self.default_dataset()[0],
                "settings": {"teacher": rows(self.teacher_params(), "teacher"), "student": rows(self.student_params()),
                             "distill": rows(self.distill_params())}}


# --- what each kind of example asks of its task -----------------------------------------------------
# A task's ``example`` names one of these; the screens app.py lists for that kind, and ``predict``, call
# exactly these methods. ``who`` in ``check_fits`` is the model as a sentence names it ("the teacher").
@runtime_checkable
class CanvasExample(Protocol):
    """A drawn digit: the Draw, Temperature and Predictions screens, and ``predict --image``."""

    def prepare_image(self, source, shape):
        """One picture (a path, bytes or an upload) as the model takes it."""


@runtime_checkable
class ImageExample(Protocol):
    """A picture of any size: the Upload, Temperature and Predictions screens, and ``predict --image``."""

    def prepare_image(self, source, shape):
        """One picture as the model takes it (``prepare_photo``'s image alone)."""

    def prepare_photo(self, source, shape) -> tuple:
        """(the picture cropped and resized to ``shape``, a sentence on what colour conversion happened, or "")."""

    def match_background(self, image, data) -> tuple:
        """(``image`` flipped to ``data``'s background convention when it is the opposite one, a note or "")."""

    def check_fits(self, model, data, who: str = "the model") -> None:
        """Raise a one-line ``ValueError`` when ``model`` was trained on data of another shape than ``data``."""


@runtime_checkable
class SentenceExample(Protocol):
    """A sentence to classify: the Temperature (text), Attention and Predictions (text) screens, ``predict --text``."""

    def dataset_of(self, model_path):
        """The dataset a saved model was trained on (its vocabulary)."""

    def check_fits(self, model, data, who: str = "the model") -> None:
        """Raise a one-line ``ValueError`` when ``model`` reads another vocabulary or gives other classes."""

    def classify(self, model, data, text: str, temperature: float = 1.0) -> dict:
        """``{"label", "probabilities", "tokens", "truncated", "note"}`` for one sentence at T."""

    def attention(self, model, data, text: str, layer: int, softmax: bool = True) -> dict:
        """``{"tokens", "maps", "note"}``: one layer's attention over one sentence."""

    def layers_and_heads(self, model) -> tuple:
        """(layers, heads) of a saved model."""

    def mapping(self, student, teacher, spec: str = "uniform") -> list:
        """The teacher layer each student layer learned from."""


@runtime_checkable
class PromptExample(Protocol):
    """A prompt to continue: the Next word and Predictions (surprisal) screens, and ``predict --prompt``."""

    def check_fits(self, model, data, who: str = "the model") -> None:
        """Raise a one-line ``ValueError`` when ``model`` predicts another vocabulary than ``data``'s."""

    def prompt(self, model_path, text: str, temperature: float = 1.0, seed: int = 0) -> dict:
        """``{"prompt", "next_words": [{"word", "probability"}…], "entropy_bits", "continuation", …}``."""

    def prompt_entropy(self, model_path, text: str, temperatures) -> list:
        """Entropy (bits) of the next word after ``text`` at each temperature."""

    def compare(self, models: dict, data, words: int = 3000) -> dict:
        """Both models' surprisal word by word over test text, and where they disagree most."""

    def band(self, bits: float) -> str:
        """A word's surprisal in words (``expected`` … ``very surprising``)."""


EXAMPLES = {"canvas": CanvasExample, "image": ImageExample, "sentence": SentenceExample, "prompt": PromptExample}
