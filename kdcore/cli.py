"""``python -m kdcore``: the command-line face of the engine, a stable contract for scripts.

Every subcommand takes ``--json`` and then prints exactly one JSON object on
stdout; without it, a short summary for people. Everything else — progress
lines, notes, TensorFlow's and Keras's chatter, Python warnings — goes to
stderr: while a command runs, ``sys.stdout`` itself points at stderr, and only
the final answer is written to the real stdout. An error (bad value, unknown
dataset, missing model, unreadable image, a run whose loss became NaN) exits
with code 2, prints one line naming the problem on stderr and nothing on
stdout. Every subcommand takes ``--task`` (default ``digits``); the training
commands' flags are generated from the settings table (:mod:`kdcore.params`),
which also validates them. Runs started here are kept in the run store, so
the dashboard's Runs page lists them too.

Adding a subcommand
-------------------
Write three small functions and register them with :func:`command`::

    def _speed_arguments(parser):          # argparse options (``--json`` is added for you)
        parser.add_argument("--model", required=True)

    def _speed_text(result: dict) -> str:  # the human summary of the JSON object
        return f"{result['images_per_s']:.0f} images/s"

    @command("speed", "time inference of a saved model", _speed_arguments, _speed_text)
    def _speed(args) -> dict:              # do the work by calling kdcore; return the JSON object
        ...

When the work lives in its own module, one line registers it, as ``bench``
does: ``command("bench", bench.HELP, bench.add_arguments, bench.text)(bench.from_args)``.
Raise ``ValueError`` (or one of its kdcore subclasses) or ``OSError`` for bad
input and the user sees one line and exit code 2. For training, wrap the call
in ``with live_progress() as progress:`` and pass ``progress`` on, so the
user sees one stderr line per epoch.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import bench, config, ensemble, export, metric, params, recipes, reproduce, storage, tasks
from .progress import Progress
from .results import Verdict

EXIT_ERROR = 2
BAR_WIDTH = 30
BAR_INTERVAL_S = 0.25


class RunFailed(Exception):
    """A run that ended without a model (its loss became NaN, or it was stopped)."""


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict]
    text: Callable[[dict], str]
    check: Callable[[argparse.Namespace], None] | None = None  # quick refusals, before TensorFlow loads


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments, text, check=None):
    """Register ``run(args) -> dict`` as subcommand ``name`` (see the module docstring).

    ``check(args)``, when given, runs before TensorFlow is imported (5 s or more), so a refusal that needs
    no model, such as an unreachable database, comes at once.
    """
    def register(run):
        COMMANDS[name] = Command(help, add_arguments, run, text, check)
        return run
    return register


# --- shared options --------------------------------------------------------------------------------
def add_run_options(parser: argparse.ArgumentParser, out: bool = True) -> None:
    """Where a training run reads its data and writes its model."""
    parser.add_argument("--dataset", help="a dataset of the task, or a file of your own (see `datasets`)")
    if out:
        parser.add_argument("--out", help="where to save the .keras model (default: the KD Studio models folder)")


def _setting_names(which: str) -> list[str]:
    """Every task's settings of one kind (teacher / student / distill): each becomes a flag."""
    names: dict[str, None] = {}
    for name in tasks.names():
        t = tasks.get(name)
        names.update(dict.fromkeys(getattr(t, f"{which}_params")()))
    return list(names)


def _given(args, which: str, task) -> dict:
    """The settings the user gave as flags; a flag of another task's is refused by name."""
    return params.given(args, [n for w in which.split() for n in _setting_names(w)], task.name)


def _finished(result: dict) -> dict:
    if result.get("status", "finished") != "finished":
        raise RunFailed(f"the run {result['status']}: {result.get('reason') or 'no reason given'}")
    return result


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


# --- live progress on stderr -----------------------------------------------------------------------
def epoch_line(series: str, record: dict, epochs: int) -> str:
    """One line per finished epoch, e.g. ``student epoch 2/5: loss 0.312, accuracy 91.0%, ...``."""
    parts = [f"loss {record['loss']:.4f}"] if "loss" in record else []
    m = metric.of_record(record)
    parts += [f"{key.replace('_', ' ')} {m.format(record[key])}"
              for key in (m.name, f"valid_{m.name}", f"test_{m.name}") if record.get(key) is not None]
    parts.append(f"{record.get('seconds', 0):.1f} s")
    return f"{series} epoch {record['epoch']}/{epochs or '?'}: {', '.join(parts)}"


def bar_line(snapshot: dict) -> str:
    """The in-place bar drawn while stderr is a terminal: phase, epoch, batch and a filled bar."""
    epochs, steps = snapshot["epochs"], snapshot["steps"]
    if not epochs:
        return f"{snapshot['phase']}…"
    within = snapshot["step"] / steps if steps else 0.0
    filled = round(BAR_WIDTH * within)
    return (f"{snapshot['phase']} epoch {min(snapshot['epoch'] + 1, epochs)}/{epochs} "
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {snapshot['step']}/{steps}")


@contextlib.contextmanager
def live_progress(title: str = ""):
    """A Progress whose epochs are echoed to stderr, with a redrawn bar when stderr is a terminal.

    Epoch lines come from ``Progress.on_epoch`` (the training thread); the bar
    from a daemon thread polling ``snapshot()`` a few times a second, so the
    training loop never waits on the terminal. One lock keeps their writes apart.
    """
    progress = Progress(title)
    stream = sys.stderr
    tty = stream.isatty()
    lock = threading.Lock()
    done = threading.Event()

    def write(line: str, *, in_place: bool = False) -> None:
        with lock:
            prefix = "\r\033[K" if tty else ""
            stream.write(prefix + line + ("" if in_place else "\n"))
            stream.flush()

    def on_epoch(series: str, record: dict) -> None:
        write(epoch_line(series, record, progress.snapshot()["epochs"]))

    def draw() -> None:
        shown = ""
        while not done.wait(BAR_INTERVAL_S):
            snap = progress.snapshot()
            line = bar_line(snap) if snap["phase"] else ""
            if line != shown:
                write(line, in_place=True)
                shown = line

    progress.on_epoch.append(on_epoch)
    poller = threading.Thread(target=draw, name="cli-progress-bar", daemon=True) if tty else None
    if poller:
        poller.start()
    try:
        yield progress
    finally:
        done.set()
        if poller:
            poller.join()
            write("", in_place=True)


# --- datasets -------------------------------------------------------------------------------------
def _datasets_text(result: dict) -> str:
    lines = []
    for row in result["datasets"]:
        mark = " (default)" if row["name"] == result["default"] else ""
        state = "available" if row["available"] else "not here "
        lines.append(f"{row['name']:<14} {state}  {row['train']:>6,} train / {row.get('valid', 0):>6,} valid / "
                     f"{row['test']:>6,} test  "
                     f"{row['source']}{mark}")
    return "\n".join(lines)


@command("datasets", "list the task's built-in datasets and which is the default", lambda parser: None,
         _datasets_text)
def _datasets(args) -> dict:
    task = tasks.get(args.task)
    return {"task": task.name, "datasets": task.datasets(), "default": task.default_dataset()[0]}


# --- tasks ----------------------------------------------------------------------------------------
def _tasks_text(result: dict) -> str:
    lines = []
    for t in result["tasks"]:
        lines.append(f"{t['name']:<8} {t['title']}: {', '.join(d['name'] for d in t['datasets'])}")
        for group, rows in t["settings"].items():
            lines.append(f"  {group}: " + ", ".join(f"--{r['name'].replace('_', '-')} {r['allowed']}" for r in rows))
    return "\n".join(lines)


@command("tasks", "list the tasks, each with its datasets and settings", lambda parser: None, _tasks_text)
def _tasks(args) -> dict:
    from . import presets

    return {"tasks": [{**tasks.get(n).describe(), "demo_preset": presets.demo(n)} for n in tasks.names()]}


# --- train-teacher --------------------------------------------------------------------------------
def _teacher_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)
    params.add_flags(parser, _setting_names("teacher") + ["ensemble"])


def _teacher_text(result: dict) -> str:
    if "members" in result:  # an ensemble: one line per member
        return f"Ensemble {result['group']}:\n" + "\n".join(_teacher_text(m) for m in result["members"])
    m = metric.of_record(result)
    return (f"Teacher saved to {result['model']}: test {m.name} {m.format(result.get(f'test_{m.name}'))} "
            f"(valid {m.format(result.get(f'valid_{m.name}'))}), "
            f"{result['params']:,} parameters, {result['seconds']:.1f} s on {result['device']}")


@command("train-teacher", "train a teacher and save it", _teacher_arguments, _teacher_text)
def _train_teacher(args) -> dict:
    task = tasks.get(args.task)
    cfg = task.teacher_from(_given(args, "teacher", task)).validate()
    from . import pipeline
    from .jobs import recorded

    n = params.given(args, ["ensemble"], task.name).get("ensemble", 1)
    title = f"Teacher on {args.dataset or task.default_dataset()[0]}, {cfg.epochs} epochs (command line)"
    run_config = dict(config.to_dict(cfg), task=task.name)
    if n > 1:
        title = f"Ensemble of {n} teachers" + title.removeprefix("Teacher")
        run_config["ensemble"] = n
    with live_progress("teacher") as progress:
        result = recorded("teacher", title, run_config, args.dataset or "",
                          lambda p: (pipeline.train_teachers(cfg, n, args.dataset, args.out, p, task) if n > 1 else
                                     pipeline.train_teacher(cfg, args.dataset, args.out, p, task)), progress)
    return _finished(result.to_json())


# --- distill --------------------------------------------------------------------------------------
def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """``--recipe FILE`` or ``--method NAME``: the run's distillation as data (:mod:`kdcore.recipes`)."""
    from . import recipes

    group = parser.add_mutually_exclusive_group()
    group.add_argument("--recipe", metavar="FILE", help="the distillation's stages and terms as a .yaml or .json "
                       "file (docs/recipes.md); --temperature, --alpha and --hint-epochs fill its symbols")
    group.add_argument("--method", metavar="NAME", help=f"a shipped recipe: {', '.join(recipes.METHODS)} "
                       "(`methods` lists them)")


def recipe_of_args(args) -> dict | None:
    """The recipe ``--recipe`` or ``--method`` names, as data (None: the one the settings describe); one-line refusals."""
    from . import recipes

    if getattr(args, "recipe", None):
        return recipes.load(args.recipe).to_dict()
    if getattr(args, "method", None):
        return recipes.method(args.method).to_dict()
    return None


def _distill_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)
    parser.add_argument("--teacher", required=True, action="append",
                        help="a saved teacher .keras file; repeat it to distil from an ensemble of teachers")
    parser.add_argument("--assistant-width", type=int, metavar="INT",
                        help="distil an assistant of this width (the task's student width setting) from the "
                             "teacher first, then the student from the assistant (Mirzadeh et al. 2020)")
    add_recipe_options(parser)
    params.add_flags(parser, _setting_names("student") + _setting_names("distill") + ["ensemble_average"])


def _verdict_text(result: dict, m: metric.Metric) -> str:
    """"Verdict: helped: +2.0 points (95 % CI +1.2 to +2.8 points, …)"; without an interval, the reason why."""
    v = Verdict.of_record(result)
    return f"Verdict: {v.headline(m) if v.ci95 else v.why}"


def _distill_text(result: dict) -> str:
    m = metric.of_record(result)
    lines = [f"Student saved to {result['model']}: test {m.name} {m.format(result.get(f'student_{m.name}'))} "
             f"(teacher {m.format(result.get(f'teacher_{m.name}'))}), "
             f"valid {m.format(result.get(f'student_valid_{m.name}'))}"]
    if f"baseline_{m.name}" in result:
        gap = result.get("gap_recovered")
        lines.append(f"Baseline from scratch {m.format(result[f'baseline_{m.name}'])} "
                     f"({m.format_change(result.get('gain'))}); gap recovered: "
                     + ("n/a (the teacher is not better than the baseline)" if gap is None else f"{100 * gap:.0f} %"))
        lines.append(_verdict_text(result, m))
    for member in result.get("ensemble", {}).get("members", []):
        lines.append(f"Ensemble member {member['name']}: test {m.name} {m.format(member.get(f'test_{m.name}'))}")
    if "assistant" in result:
        a = result["assistant"]
        lines.append(f"Assistant saved to {a['model']}: test {m.name} {m.format(a.get(f'test_{m.name}'))}")
    lines.append(f"{result['params']['student']:,} student vs {result['params']['teacher']:,} teacher parameters, "
                 f"{result['seconds']:.1f} s on {result['device']}")
    return "\n".join(lines)


@command("distill", "distil a saved teacher into a smaller student", _distill_arguments, _distill_text)
def _distill(args) -> dict:
    task = tasks.get(args.task)
    given = _given(args, "student distill", task)
    given.setdefault("baseline", False)  # a baseline doubles the time: on the command line it is asked for
    cfg = task.distill_from(given)
    cfg.recipe = recipe_of_args(args)
    cfg.validate()
    from . import pipeline
    from .jobs import recorded

    average = params.given(args, ["ensemble_average"], task.name).get("ensemble_average", "probs")
    found = ensemble.check(cfg, task, args.teacher, average)
    teacher = ensemble.named(found)
    side = storage.read_sidecar(found[0])
    checked = []
    if cfg.recipe is not None:  # its layers and shapes are checked against the networks before a run is recorded
        checked = pipeline.check_recipe(cfg, found[0], args.dataset, task)[1]
    for note in pipeline.notes(cfg, side.get("params"), task, side.get("config")) + checked:
        print(f"note: {note}", file=sys.stderr)
    title = (f"Distil {task.describe_student(cfg.student)} (T={cfg.temperature:g}, alpha={cfg.alpha:g}) "
             "(command line)")
    run_config = dict(config.to_dict(cfg), teacher=teacher, task=task.name, **ensemble.run_settings(found, average))
    if args.assistant_width is not None:
        params.check(task.width_setting, args.assistant_width, task.name)
        run_config["assistant_width"] = args.assistant_width
    with live_progress("distill") as progress:
        result = recorded("distill", title, run_config, args.dataset or "",
                          lambda p: (pipeline.distill(cfg, teacher, args.dataset, args.out, p, task, average)
                                     if args.assistant_width is None else
                                     pipeline.chain(cfg, teacher, args.assistant_width, args.dataset, args.out, p,
                                                    task, average)), progress)
    return _finished(result.to_json())


# --- methods --------------------------------------------------------------------------------------
def _methods_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--show", metavar="NAME", help="print this method's recipe, its layers and numbers filled "
                        "in for the task's default teacher and student (--task)")


def _methods_text(result: dict) -> str:
    if "rows" not in result:
        return "\n".join(f"{m['name']:<8} {m['description']}" for m in result["methods"])
    import pandas as pd

    lines = [f"{result['method']} for task {result['task']} (default teacher and student): {result['description']}",
             pd.DataFrame(result["rows"]).fillna("").to_string(index=False)]
    return "\n".join(lines + [f"note: {n}" for n in result["notes"]])


@command("methods", "list the shipped distillation methods (recipes); --show NAME prints one resolved for a task",
         _methods_arguments, _methods_text)
def _methods(args) -> dict:
    from . import recipes

    if args.show is None:
        return {"methods": [{"name": n, "description": recipes.method(n).description} for n in recipes.METHODS]}
    recipe, task = recipes.method(args.show), tasks.get(args.task)
    _import_tensorflow_quietly()
    from . import stages

    cfg = task.default_distill()
    teacher = task.build_teacher(task.teacher_config())  # untrained: only its layers' shapes are read
    resolved, notes = stages.prepare(recipe, cfg, teacher, task.build_student(cfg.student, cfg.seed),
                                     task.hint_layers(cfg))
    return {"method": args.show, "task": task.name, "description": recipe.description, "rows": resolved.rows(),
            "recipe": resolved.to_dict(), "notes": notes}


# --- predict --------------------------------------------------------------------------------------
def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", required=True, help="a saved .keras model; repeat for more")
    parser.add_argument("--image", help="an image file (PNG, JPEG, ...) of one digit (tasks that classify images)")
    parser.add_argument("--prompt", help="the start of a sentence (tasks that predict the next word)")
    parser.add_argument("--text", help="a sentence to classify (tasks that classify text)")
    parser.add_argument("--temperature", type=float, default=1.0, help="soften the probabilities (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled continuation (default 0)")


def _predict_text(result: dict) -> str:
    lines = []
    for p in result["predictions"]:
        if "next_words" in p:
            top = ", ".join(f"{w['word']} {_percent(w['probability'])}" for w in p["next_words"][:5])
            lines.append(f"{Path(p['model']).name}: next {top}; continued: {p['continuation']}")
        else:
            lines.append(f"{Path(p['model']).name}: {p['label']} ({_percent(max(p['probabilities']))})")
    return "\n".join(lines)


def _predict_prompt(task, args) -> dict:
    """A language model: the next words and a sampled continuation (:class:`~kdcore.tasks.base.PromptExample`)."""
    if args.prompt is None:
        raise ValueError(f"task {task.name!r} needs --prompt \"some words\"")
    return {"predictions": [dict(model=path, **task.prompt(path, args.prompt, args.temperature, args.seed))
                            for path in args.model]}


def _predict_sentence(task, args) -> dict:
    """A text classifier: each model's class and probabilities at T (:class:`~kdcore.tasks.base.SentenceExample`)."""
    if args.text is None:
        raise ValueError(f"task {task.name!r} needs --text \"a sentence\"")
    if not args.text.strip():  # refused before any model or dataset loads
        raise ValueError("--text is empty: give a sentence, e.g. --text \"a gripping, funny film\"")
    predictions = []
    for path in args.model:
        model = storage.load_model(path, task)
        predictions.append(dict(model=path, **task.classify(model, task.dataset_of(path), args.text,
                                                            args.temperature)))
    for note in dict.fromkeys(p["note"] for p in predictions if p["note"]):
        print(f"note: {note}", file=sys.stderr)
    return {"predictions": predictions}


def _predict_image(task, args) -> dict:
    """A digit or a picture, prepared as each model takes it (``prepare_image`` of the canvas and image kinds)."""
    if args.image is None:
        raise ValueError(f"task {task.name!r} needs --image FILE")
    from . import inference

    task.check_image(Path(args.image))  # a file that is no picture is refused before any model loads
    predictions = []
    for path in args.model:
        model = storage.load_model(path, task)
        image = task.prepare_image(Path(args.image), model.input_shape[1:])
        probs = inference.softened(inference.predict_one(model, image), args.temperature)
        predictions.append({"model": path, "label": int(probs.argmax()), "probabilities": probs.tolist()})
    return {"predictions": predictions}


PREDICT = {"prompt": _predict_prompt, "sentence": _predict_sentence, "canvas": _predict_image,
           "image": _predict_image}  # a task's example kind -> how predict answers for one example of it


@command("predict", "one model's or several models' answer to one image or prompt", _predict_arguments,
         _predict_text)
def _predict(args) -> dict:
    task = tasks.get(args.task)
    if task.example not in PREDICT:
        raise ValueError(f"task {task.name!r} has no example to predict (its example kind is {task.example!r}); "
                         f"predict takes tasks whose examples are: {', '.join(PREDICT)}")
    return PREDICT[task.example](task, args)


# --- evaluate -------------------------------------------------------------------------------------
def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a saved .keras model")
    parser.add_argument("--dataset", help="default: the one the model was trained on, else see `datasets`")


def _evaluate_text(result: dict) -> str:
    m = metric.of_record(result)
    rows = [f"Test {m.name} {m.format(result[f'test_{m.name}'])} on {result['test_size']:,} examples"
            + (f" (valid {m.format(result[f'valid_{m.name}'])})" if f"valid_{m.name}" in result else "")
            + (f"; {result['note']}" if result.get("note") else "")]
    if "confusion" in result:
        rows.append("confusion (rows: true label, columns: predicted):")
        rows += [f"  {i}: " + " ".join(f"{n:>5}" for n in row) for i, row in enumerate(result["confusion"])]
    return "\n".join(rows)


@command("evaluate", "a saved model's test score (accuracy and confusion, or perplexity)", _evaluate_arguments,
         _evaluate_text)
def _evaluate(args) -> dict:
    task = tasks.get(args.task)
    trained_on = storage.read_sidecar(args.model).get("dataset")  # the default: the data the model learnt from
    known = trained_on in {d["name"] for d in task.datasets()} or (trained_on and Path(trained_on).is_file())
    ds = task.load(args.dataset or (trained_on if known else None))
    model = storage.load_model(args.model, task)
    ds = task.fit_data(model, ds)[0]  # grey data for a colour model, say, as distill converts it
    return {"model": args.model, "dataset": ds.name, **task.evaluate(model, ds)}


# --- bench (options, summary and work live in kdcore.bench) -----------------------------------------
command("bench", bench.HELP, bench.add_arguments, bench.text)(bench.from_args)


# --- experiment and sweep (the work lives in kdcore.experiments) ----------------------------------
def _number_list(kind):
    """argparse type for comma-separated numbers such as ``1,2,4,8``."""
    def parse(text: str) -> list:
        try:
            return [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1,2,4 (got {text!r})")
    return parse


def _experiment_arguments(parser: argparse.ArgumentParser) -> None:
    from . import presets

    parser.add_argument("--preset", required=True, help=f"one of {', '.join(presets.names())}")
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds (0..N-1) to average over (default 3)")
    parser.add_argument("--labels-fraction", type=float, help="share of training labels the student may see "
                                                              "(default: the preset's)")
    parser.add_argument("--omit-class", type=int, help="leave this class out of the transfer set (default: the preset's)")
    parser.add_argument("--teacher", help="a saved teacher .keras file to distil from, instead of training the "
                                          "preset's (a teacher trained before by the same recipe is reused anyway)")
    add_recipe_options(parser)
    parser.add_argument("--methods", help="compare distillation methods instead (comma-separated, of "
                                          f"{', '.join(recipes.METHODS)}; kd is always run as the reference): "
                                          "each distils the same student over the same seeds against one "
                                          "from-scratch baseline, its hyperparameter chosen on valid")
    params.add_flags(parser, _setting_names("student"))


def _experiment_check(args) -> None:
    """Refuse an unknown method, or student settings without --methods, before TensorFlow loads."""
    from . import comparison, presets

    if args.methods is not None:
        comparison.method_list(args.methods)
    task = tasks.get(presets.get(args.preset).get("task"))
    student = _given(args, "student", task)
    if student and args.methods is None:
        raise ValueError(f"{', '.join(n.replace('_', '-') for n in student)}: student settings apply to a "
                         "methods comparison (--methods) only")
    if args.methods is not None and (args.recipe is not None or args.method is not None):
        raise ValueError("--methods compares the shipped recipes; --recipe and --method run one (give one or the other)")
    if args.methods is not None and (args.labels_fraction is not None or args.omit_class is not None):
        raise ValueError("--labels-fraction and --omit-class apply to a plain experiment, not to --methods "
                         "(a comparison keeps the preset's)")


def _spread_text(spread: dict) -> str:
    """A share's mean ± std over seeds, in percent (without the sign, which the line adds)."""
    return "n/a" if spread.get("mean") is None else f"{100 * spread['mean']:.1f} ± {100 * spread['std']:.1f}"


def _preset_of_task(name: str, task: str | None) -> str:
    """The preset, refused in one line when it belongs to another task than ``--task`` names."""
    from . import presets

    own = presets.get(name).get("task", tasks.DEFAULT)
    if task is not None and own != task:
        raise ValueError(f"preset {name!r} is for task {own!r}, not {task!r}; presets of {task!r}: "
                         f"{', '.join(presets.names(task)) or 'none yet'}")
    return name


def _preset_with_recipe(name: str, args):
    """The preset, or (with ``--recipe``/``--method``) a copy of it whose distillation runs that recipe."""
    from . import presets

    recipe = recipe_of_args(args)
    if recipe is None:
        return name
    spec = presets.get(name)
    tasks.get(spec.get("task")).accept_recipe(recipe)
    return {**spec, "name": f"{name}+{recipe['name']}", "distill": {**spec["distill"], "recipe": recipe}}


def _experiment_text(result: dict) -> str:
    if "table" in result:  # a methods comparison
        from .comparison import table_text

        return table_text(result)
    m = metric.of_record(result)
    gap = "gap recovered" + (f" (log-{m.name})" if m.log_space else "")
    lines = [f"{result['preset']} on {result['dataset']}, seeds {result['seeds']}: "
             f"teacher {m.format(result.get(f'teacher_{m.name}'))}",
             f"distilled {m.format_spread(result.get(f'student_{m.name}'))}, "
             f"from scratch {m.format_spread(result.get(f'baseline_{m.name}'))} (test {m.name}{m.direction})",
             f"gain {m.format_spread(result.get('gain'), change=True)}, "
             f"{gap} {_spread_text(result['gap_recovered'])} %"]
    if "omit" in result:
        omit = result["omit"]
        lines.append(f"class {result['omit_class']}: {_spread_text(omit['student_class'])} % before, "
                     f"{_spread_text(omit['student_class_after_bias'])} % after a bias of "
                     f"{omit['bias']['mean']:+.2f} chosen on training images "
                     f"(baseline {_spread_text(omit['baseline_class'])} %)")
    if result.get("verdict_reason"):
        lines.append(_verdict_text(result, m))
    return "\n".join(lines + [f"{result['seconds']:.0f} s"])


@command("experiment", "distilled student vs its from-scratch twin, mean ± std over seeds; or --methods compared",
         _experiment_arguments, _experiment_text, _experiment_check)
def _experiment(args) -> dict:
    from . import comparison, experiments, presets

    if args.methods is not None:
        preset = _preset_of_task(args.preset, args.task)
        task = tasks.get(presets.get(preset).get("task"))
        prefix = task.student_config.PREFIX
        student = {n.removeprefix(prefix): v for n, v in _given(args, "student", task).items()}
        with live_progress("methods") as progress:
            result = _finished(comparison.run_methods(preset, args.methods, args.seeds, student, progress,
                                                      teacher=args.teacher))
        return {**result, "machine": reproduce.machine()}
    with live_progress("experiment") as progress:
        result = _finished(experiments.run_experiment(_preset_with_recipe(_preset_of_task(args.preset, args.task), args),
                                                      args.seeds,
                                                      args.labels_fraction, args.omit_class, progress,
                                                      teacher=args.teacher))
    return {**result, "machine": reproduce.machine()}  # what `reproduce --from` writes beside the figures


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    from . import presets

    parser.add_argument("--preset", help=f"one of {', '.join(presets.names())} (with --study, default quick)")
    parser.add_argument("--temperatures", type=_number_list(float), required=True, help="e.g. 1,2,4,8")
    parser.add_argument("--alphas", type=_number_list(float), required=True, help="e.g. 0.5,0.9")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per cell (default 1)")
    parser.add_argument("--widths", type=_number_list(int), help="student widths, values of the task's width setting (`tasks --json`), e.g. 32,128")
    add_recipe_options(parser)
    study = parser.add_argument_group("as an Optuna study that workers on any machine can join (docs/studies.md)")
    study.add_argument("--study", help="create the grid as the Optuna study of this name")
    _storage_argument(study)
    study.add_argument("--workers", type=int, default=1,
                       help="worker processes to run here until the study is done (default 1; 0: only create it)")
    study.add_argument("--epochs", type=int, help="student epochs per trial (default: the preset's)")
    study.add_argument("--dataset", help="default: the preset's")
    study.add_argument("--teacher", help="a saved teacher .keras file (default: the preset's, trained once and cached)")
    study.add_argument("--heartbeat", type=int, default=10, help=argparse.SUPPRESS)
    search = parser.add_argument_group(
        "as a search for the best recipe instead of a grid (with --study)",
        "--search N runs N trials chosen by Optuna's default sampler (TPE, seeded), maximising the gain over the "
        "from-scratch baseline: --temperatures LOW,HIGH and --alphas LOW,HIGH become ranges (T drawn on a log "
        "scale), --widths and --seeds the choices; a median pruner stops hopeless trials after an epoch.")
    search.add_argument("--search", type=int, metavar="N", help="run a search of N trials instead of the grid")
    search.add_argument("--prune-startup", type=int, default=3, metavar="K",
                        help="complete trials before any is pruned (default 3)")
    search.add_argument("--prune-warmup", type=int, default=1, metavar="E",
                        help="epochs of every trial never pruned (default 1)")


def _storage_argument(parser) -> None:
    parser.add_argument("--storage", help="the study database: sqlite:///PATH or postgresql://USER@HOST/DB "
                                          "(default: $KDSTUDIO_STORAGE, else studies.db in the data folder)")


def _sweep_text(result: dict) -> str:
    import pandas as pd

    if "study" in result:
        kind = "a search of " if result.get("mode") == "search" else ""
        lines = [f"Study {result['study']} in {result['storage']}: {kind}{result['trials']} trials"]
        if "completed" in result:
            pruned = f" ({result['pruned']} more pruned)" if "pruned" in result else ""
            lines.append(f"{result['completed']} completed{pruned} by {len(result['workers'])} local workers "
                         f"in {result['seconds']:.0f} s")
        if result.get("best"):
            lines.append(_best_text(result["best"]))
        if result.get("confirmation"):
            from .studies import confirmation_text

            lines.append(confirmation_text(result["confirmation"]))
        return "\n".join(lines)
    frame = pd.DataFrame(result["cells"])
    text = frame.to_string(index=False, float_format=lambda v: f"{v:.4f}") + f"\n{result['seconds']:.0f} s"
    best = result.get("best")
    if best:
        m = metric.get(best.get("metric"))
        text += (f"\nbest on valid: width {best['units']}, T {best['temperature']:g}, alpha {best['alpha']:g}: "
                 f"valid gain {m.format_change(best['valid_gain'])}, "
                 f"test gain {m.format_change(best['gain'])}")
    return text


def _best_text(best: dict) -> str:
    from .studies import best_text

    return f"best: {best_text(best)}"


def _study_check(args) -> None:
    """The study database is reachable (and, for a worker, holds the study) before TensorFlow loads."""
    from . import studies

    if getattr(args, "study", None) is None and getattr(args, "storage", None) is None:
        return  # a sweep in this process, no study
    rdb = studies.open_storage(args.storage)
    if args.command == "worker":
        studies.check_study(rdb, args.study, args.storage)


@command("sweep", "gain of distillation over a grid of temperatures, alphas and widths", _sweep_arguments,
         _sweep_text, _study_check)
def _sweep(args) -> dict:
    import time

    from . import experiments

    if args.search is not None and not args.study:
        raise ValueError("--search needs --study NAME: a search runs as an Optuna study")
    if args.study is not None or args.storage is not None:
        return _sweep_study(args)
    if args.preset is None:
        raise ValueError("sweep needs --preset (or --study to create an Optuna study)")
    t0 = time.perf_counter()
    with live_progress("sweep") as progress:
        frame = experiments.sweep(_preset_with_recipe(_preset_of_task(args.preset, args.task), args), args.temperatures, args.alphas, args.seeds, args.widths, progress)
    cells = frame.to_dict("records")
    return {"preset": args.preset, "cells": cells, "best": experiments.best_cell(cells),
            "seconds": time.perf_counter() - t0}


def _sweep_study(args) -> dict:
    from . import studies

    if not args.study:
        raise ValueError("--storage needs --study NAME: the name workers join")
    if args.workers < 0:
        raise ValueError(f"workers must be >= 0 (got {args.workers})")
    preset = _preset_with_recipe(args.preset or "quick", args)  # a recipe travels in the study's spec, as data
    with live_progress("sweep") as progress:
        if args.search is not None:
            result = studies.create_search_study(args.study, args.storage, preset, args.temperatures,
                                                 args.alphas, args.search, args.seeds, args.widths, args.epochs,
                                                 args.dataset, args.teacher, progress, args.prune_startup,
                                                 args.prune_warmup)
        else:
            result = studies.create_grid_study(args.study, args.storage, preset, args.temperatures,
                                               args.alphas, args.seeds, args.widths, args.epochs, args.dataset,
                                               args.teacher, progress)
    if args.workers:
        result.update(studies.run_local_workers(args.study, args.storage, args.workers, args.task, args.heartbeat,
                                                result["teacher"]))
        if args.search is not None:  # the chosen recipe, on seeds the search never saw, reported on test
            with live_progress("confirm") as progress:
                result["confirmation"] = studies.confirm(args.study, args.storage, result["teacher"],
                                                         progress=progress)
    return result


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True, help="the study to join (created by `sweep --study`)")
    _storage_argument(parser)
    parser.add_argument("--trials", type=int, help="stop after this many completed (or, in a search, pruned) trials "
                                                  "(default: until none is left)")
    parser.add_argument("--teacher", help="the study's teacher file, if it is not in the models folder")
    parser.add_argument("--heartbeat", type=int, default=10,
                        help="seconds between heartbeats; a trial silent for 3 of them is failed and retried")


def _worker_text(result: dict) -> str:
    pruned = f", {result['pruned']} pruned" if "pruned" in result else ""
    text = (f"{result['worker']}: {result['completed']} trials completed ({result['failed']} failed{pruned}) in "
            f"{result['seconds']:.0f} s, study {result['study']} in {result['storage']}")
    return text + (f"\n{_best_text(result['best'])}" if result.get("best") else "")


@command("worker", "join an Optuna sweep study and run its trials until none is left (a search: until N are "
                   "finished)", _worker_arguments,
         _worker_text, _study_check)
def _worker(args) -> dict:
    from . import studies

    if args.trials is not None and args.trials < 1:
        raise ValueError(f"trials must be >= 1 (got {args.trials})")
    if args.heartbeat < 1:
        raise ValueError(f"heartbeat must be >= 1 second (got {args.heartbeat})")
    with live_progress("worker") as progress:
        return studies.run_worker(args.study, args.storage, args.trials, args.teacher, progress, args.heartbeat)


# --- reproduce (options, summary and work live in kdcore.reproduce) --------------------------------
@command("reproduce", reproduce.HELP, reproduce.add_arguments, reproduce.text)
def _reproduce(args) -> dict:
    with live_progress("reproduce") as progress:
        return reproduce.from_args(args, progress)


# --- export (options, summary and work live in kdcore.export) --------------------------------------

command("export", export.HELP, export.add_arguments, export.text)(export.from_args)


# --- entry point ----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (its default prints the whole usage first)."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m kdcore", description="KD Studio's engine from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.add_argument("--task", help="what to distil: " + ", ".join(tasks.names())
                       + f" (default {tasks.DEFAULT}, or the preset's; `tasks` lists them)")
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for a while (C++ logging bypasses sys.stderr)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow and probe for GPUs with their C++ start-up chatter hidden.

    TensorFlow 2.21 writes absl and CUDA-probing lines straight to fd 2 before
    ``TF_CPP_MIN_LOG_LEVEL`` takes effect, so an error that should be one
    stderr line came out as eight. Set ``TF_CPP_MIN_LOG_LEVEL=0`` to see them.
    """
    if "tensorflow" in sys.modules or int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) < 2:
        return
    with _native_stderr_silenced():
        import keras  # noqa: F401 - keras before tensorflow, as everywhere in kdcore
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    out = sys.stdout
    prog = f"python -m kdcore {args.command}"
    try:
        tasks.get(args.task)  # an unknown task is refused before anything loads
        if COMMANDS[args.command].check:
            COMMANDS[args.command].check(args)
        if args.command not in ("datasets", "tasks", "methods"):
            _import_tensorflow_quietly()
        with contextlib.redirect_stdout(sys.stderr):
            result = COMMANDS[args.command].run(args)
    except (ValueError, OSError, RunFailed) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with the exception's type to report it by
        print(f"{prog}: error: unexpected {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    text = json.dumps(result, default=_jsonable) if args.json else COMMANDS[args.command].text(result)
    print(text, file=out, flush=True)
    return 0
