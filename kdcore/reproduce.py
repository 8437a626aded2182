"""``python -m kdcore reproduce --task NAME``: a task's headline experiments, run and written into docs/results.md.

A figure typed by hand drifts from what the code gives; one written by the
command that measured it, beside the command, the time, the date and the
machine, can be checked by running that command again. So each task's
section of ``docs/results.md`` between ``<!-- reproduce:NAME -->`` and
``<!-- /reproduce:NAME -->`` is this command's output alone: one row per
headline preset (the task's Home demo, and every preset it marks
``"headline": True``, such as the same regime with teacher and students on
the same data), each an ``experiment`` over ``--seeds`` seeds.

Experiments take minutes, and the measurements are often made first with
``experiment --json``: ``--from FILE.json`` (repeatable) hands such outputs in,
and only the headline presets no file covers are run. A file's date is its
modification time; its machine is the one ``experiment`` recorded in it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
from pathlib import Path

from . import metric, presets, tasks
from .results import Verdict, verdict

HELP = "run a task's headline experiments (its demo and same-data presets) and write its table in docs/results.md"
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def machine() -> str:
    """This machine as a table cell reads it: cores, processor, and the load it was under (1, 5, 15 minutes)."""
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{os.cpu_count()} cores {platform.machine()}, load {load}"


def headline(task: str) -> list[str]:
    """The presets ``reproduce`` runs for ``task``: its demo first, then those it marks ``"headline": True``."""
    demo = presets.demo(task)
    rest = [n for n in presets.names(task) if presets.get(n).get("headline") and n != demo]
    found = ([demo] if demo else []) + rest
    if not found:
        raise ValueError(f"task {task!r} has no demo or headline preset to reproduce")
    return found


def command_line(result: dict) -> str:
    """The command that gives ``result`` again."""
    line = (f"python -m kdcore experiment --task {result['task']} --preset {result['preset']} "
            f"--seeds {len(result['seeds'])}")
    default = presets.get(result["preset"])["distill"].get("labels_fraction", 1.0)
    if result.get("labels_fraction") not in (None, default):
        line += f" --labels-fraction {result['labels_fraction']:g}"
    return line


def judged(result: dict, m) -> Verdict | None:
    """The experiment's verdict by today's rule: from its per-seed gains, so an output saved before the rule
    changed reads as a new one would; a one-seed run keeps the verdict it was given (its paired test)."""
    gains = [r["gain"] for r in result["runs"]]
    return verdict(gains, m) if len(gains) >= 2 else Verdict.of_record(result)


def _time(result: dict) -> str:
    """The whole experiment's wall time, its teacher's, a seed's, and so the Home demo's (teacher + one seed)."""
    seed = sum(r["seconds"] for r in result["runs"]) / len(result["runs"])
    teacher = result.get("teacher_seconds")
    if result.get("teacher_cached") or teacher is None:
        return f"{result['seconds']:.0f} s (teacher cached; {seed:.0f} s a seed)"
    return (f"{result['seconds']:.0f} s (teacher {teacher:.0f} s; {seed:.0f} s a seed; "
            f"Home demo ≈ {teacher + seed:.0f} s)")


def row(result: dict, when: str) -> str:
    """One markdown table row of an experiment's JSON output."""
    m = metric.of_record(result)
    key = m.name
    v = judged(result, m)
    gain = v.gain_text(m) if v is not None and v.ci95 is not None else m.format_spread(result.get("gain"), change=True)
    teacher_read = result.get("teacher_dataset") or result["dataset"]
    data = result["dataset"] if teacher_read == result["dataset"] else f"{teacher_read} → {result['dataset']}"
    labels = result.get("labels_fraction")
    if labels not in (None, 1.0):
        data += f", {100 * labels:g} % of the labels"
    cells = [f"`{result['preset']}`", data, m.format(result.get(f"teacher_{key}")),
             m.format_spread(result.get(f"student_{key}")), m.format_spread(result.get(f"baseline_{key}")),
             gain, v.outcome if v is not None else "—", _time(result), when,
             result.get("machine") or "not recorded", f"`{command_line(result)}`"]
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


HEADER = ("| preset | data (teacher → students) | teacher | distilled | from scratch | gain | verdict | time | date "
          "| machine | command |\n|---|---|---|---|---|---|---|---|---|---|---|")


def table(task: str, dated: list[tuple[dict, str]]) -> str:
    m = tasks.get(task).metric
    lines = [f"Written by `python -m kdcore reproduce --task {task}`; test {m.name}{m.direction}, mean ± std "
             "over the seeds; the gain with its 95 % interval and the verdict by today's rule; the machine's load "
             "is its 1, 5 and 15-minute average as the experiment ended.", "", HEADER]
    return "\n".join(lines + [row(result, when) for result, when in dated])


def write_section(path: Path, task: str, body: str) -> None:
    """Replace the text between ``task``'s markers in ``path`` (or append the markers and ``body``)."""
    start, end = f"<!-- reproduce:{task} -->", f"<!-- /reproduce:{task} -->"
    text = path.read_text() if path.is_file() else ""
    block = f"{start}\n{body}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + f"\n\n{block}\n"
    path.write_text(text)


def _read(path: str, task: str, wanted: list[str]) -> dict:
    try:
        result = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"--from {path} is not JSON ({exc.msg}); give the output of `experiment --json`") from None
    if not isinstance(result, dict) or "preset" not in result or "runs" not in result:
        raise ValueError(f"--from {path} is no experiment's output; give the output of `experiment --json`")
    if result.get("task", tasks.DEFAULT) != task or result["preset"] not in wanted:
        raise ValueError(f"--from {path} is preset {result['preset']!r} of task {result.get('task')!r}; "
                         f"reproduce --task {task} takes {', '.join(wanted)}")
    return result


def reproduce(task: str, seeds: int = 3, sources=(), out: Path = RESULTS, progress=None) -> dict:
    """Run (or read from ``sources``) each headline experiment of ``task`` and write its section of ``out``."""
    from . import experiments

    wanted = headline(task)
    experiments.seed_list(seeds)  # a bad count is refused before any file is read or model trained
    given = {}
    for path in sources:
        result = _read(path, task, wanted)
        given[result["preset"]] = (result, dt.date.fromtimestamp(Path(path).stat().st_mtime).isoformat())
    dated = []
    for name in wanted:
        if name not in given:
            result = experiments.run_experiment(name, seeds, progress=progress)
            if result["status"] != "finished":
                raise ValueError(f"experiment {name} {result['status']}: {result.get('reason')}")
            result = {**result, "machine": machine()}
            given[name] = (result, dt.date.today().isoformat())
        dated.append(given[name])
    body = table(task, dated)
    write_section(Path(out), task, body)
    return {"task": task, "file": str(out), "presets": wanted, "table": body,
            "experiments": [{k: v for k, v in r.items() if k not in ("teacher_history",)} for r, _ in dated]}


def add_arguments(parser) -> None:
    parser.add_argument("--seeds", type=int, default=3, help="seeds per experiment (default 3)")
    parser.add_argument("--from", dest="sources", action="append", default=[], metavar="FILE.json",
                        help="an `experiment --json` output to use instead of running that preset (repeatable)")
    parser.add_argument("--out", default=str(RESULTS), help="the markdown file to write (default docs/results.md)")


def from_args(args, progress=None) -> dict:
    return reproduce(tasks.get(args.task).name, args.seeds, args.sources, Path(args.out), progress)


def text(result: dict) -> str:
    return f"{result['table']}\n\nwritten to {result['file']}"
