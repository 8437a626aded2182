"""The language model's distillation methods side by side on the lm-demo preset: perplexity, and gain on kl.

    .venv/bin/python -m lab.lm_methods                    # every condition, 3 seeds; OUT=/tmp/lm-methods SEEDS=3
    .venv/bin/python -m lab.lm_methods gjsd-0.5 kl-online  # some of them
    .venv/bin/python -m lab.lm_methods --table             # the table again, from OUT's saved results

Each condition is ``experiment --task lm --preset lm-demo`` with some distillation settings changed (the
``experiment`` command takes no such flags, so this calls :func:`kdcore.experiments.run_experiment` with the preset
as a dict); the teacher is trained once and reused. The seeds' students and baselines are the same networks from the
same start, so a method's gain on kl is taken seed by seed (paired) with a 95 % t-interval over the seeds.
docs/tasks/lm.md quotes its output.
"""
import json
import math
import os
import sys
from pathlib import Path

from scipy import stats

from kdcore import experiments, presets

CONDITIONS = {
    "kl-cache": {},  # the preset itself: forward KL from the top-32 cache
    "kl-online": {"soft_targets": "online"},
    "reverse-kl": {"loss": "reverse-kl", "soft_targets": "online"},
    "gjsd-0.5": {"loss": "gjsd", "gkd_beta": 0.5, "soft_targets": "online"},
    "seqkd-60k": {"sequence_kd_words": 60_000},  # kl from the cache, over the text and 60,000 teacher-written words
    "seqkd-60k-online": {"sequence_kd_words": 60_000, "soft_targets": "online"},
    "seqkd-60k-labels": {"sequence_kd_words": 60_000, "alpha": 0.0},  # pure sequence-level KD: labels only
}
OUT = Path(os.environ.get("OUT", "/tmp/lm-methods"))
SEEDS = int(os.environ.get("SEEDS", 3))


def run(label: str) -> dict:
    base = presets.get("lm-demo")
    spec = {**base, "name": f"lm-demo {label}", "distill": {**base["distill"], **CONDITIONS[label]}}
    result = experiments.run_experiment(spec, SEEDS, record=False)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{label}.json").write_text(json.dumps(result, default=str))
    return result


def _interval(diffs: list[float]) -> tuple[float, float, float]:
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def table(references=("kl-cache", "kl-online")) -> str:
    """Markdown: each condition's perplexity, its gain on scratch, and its paired gain on each reference."""
    results = {p.stem: json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))}
    lines = ["| condition | student perplexity | scratch | vs scratch (95 % CI) | "
             + " | ".join(f"vs {r} (paired, 95 % CI)" for r in references) + " | seconds |",
             "|---|---:|---:|---|" + "---|" * len(references) + "---:|"]
    for label in [c for c in CONDITIONS if c in results]:
        r = results[label]
        s, b = r["student_perplexity"], r["baseline_perplexity"]
        low, high = r.get("gain_ci95") or (math.nan, math.nan)
        paired = []
        for ref in references:
            if ref not in results or ref == label:
                paired.append("—")
                continue
            mean, lo, hi = _interval([a - c for a, c in zip(s["values"], results[ref]["student_perplexity"]["values"])])
            paired.append(f"{mean:+.1f} ({lo:+.1f} to {hi:+.1f})")
        lines.append(f"| `{label}` | {s['mean']:.1f} ± {s['std']:.1f} | {b['mean']:.1f} ± {b['std']:.1f} | "
                     f"{r['gain']['mean']:+.1f} ({low:+.1f} to {high:+.1f}), {r['verdict']} | " + " | ".join(paired)
                     + f" | {r['seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    wanted = [a for a in sys.argv[1:] if a != "--table"]
    if "--table" not in sys.argv:
        for label in wanted or CONDITIONS:
            run(label)
    print(table())
