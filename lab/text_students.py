"""Three students of one saved text teacher, per seed: from scratch, logits-only KD and TinyBERT-KD.

    .venv/bin/python -m lab.text_students --teacher T.keras [--dataset rotten-tomatoes] [--seeds 3]
        [--epochs 2] [--intermediate-epochs 1] [--temperature 2] [--alpha 0.9]

For each seed the same student (the text task's default size, same initial weights and batch order) is
trained three ways: labels only (``scratch``); ``epochs`` of prediction-layer distillation
(``logits``, i.e. ``--intermediate-epochs 0``); ``intermediate-epochs`` of TinyBERT's layer-wise stage, then the
same prediction-layer epochs (``tinybert``). The baseline is trained once per seed and shared, which is why this
is a script and not two ``experiment`` runs. It prints one JSON object: test accuracy per arm and seed,
mean ± std, student/teacher ratios, the verdict of ``kdcore.results.verdict`` on the per-seed gains
(tinybert − logits, and each against scratch), and the cost of an epoch of each kind in wall and process CPU
seconds (the intermediate stage reads the teacher's cached activations when they fit in
``kdcore.tasks.text.CACHE_BUDGET``; the first record says which). Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time


def _timed(run):
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _spread(values):
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def main(argv=None) -> dict:
    from kdcore import results, storage, tasks, training

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--dataset", default="rotten-tomatoes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed … first-seed + seeds − 1")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--intermediate-epochs", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    args = parser.parse_args(argv)

    task = tasks.get("text")
    ds = task.load(args.dataset)
    teacher = storage.load_model(args.teacher, task)
    teacher_acc = task.score(teacher, ds)
    logits = training.teacher_logits(teacher, ds)
    print(f"teacher {teacher_acc:.4f}", file=sys.stderr, flush=True)
    arms = {"scratch": [], "logits": [], "tinybert": []}
    cost = {"scratch_epoch": [], "prediction_epoch": [], "intermediate_epoch": []}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        cfg = task.distill_from({"seed": seed, "epochs": args.epochs, "intermediate_epochs": 0,
                                 "temperature": args.temperature, "alpha": args.alpha}).validate(len(ds.y_train))
        tiny_cfg = dataclasses.replace(cfg, intermediate_epochs=args.intermediate_epochs)
        base, wall, cpu = _timed(lambda: task.train_baseline(cfg, ds))
        cost["scratch_epoch"].append({"wall": wall / args.epochs, "cpu": cpu / args.epochs})
        logit, wall, cpu = _timed(lambda: task.distill_student(cfg, teacher, ds, logits=logits))
        cost["prediction_epoch"].append({"wall": wall / args.epochs, "cpu": cpu / args.epochs})
        wall0, cpu0 = time.perf_counter(), time.process_time()
        tiny = task.distill_student(tiny_cfg, teacher, ds, logits=logits)
        inter = sum(r["seconds"] for r in tiny.stages["intermediate"])
        pred = sum(r["seconds"] for r in tiny.history)
        cpu_all = time.process_time() - cpu0
        cost["intermediate_epoch"].append({"wall": inter / args.intermediate_epochs,
                                           "cpu_whole_run": cpu_all, "wall_whole_run": time.perf_counter() - wall0,
                                           "wall_prediction_epochs": pred})
        for name, run in (("scratch", base), ("logits", logit), ("tinybert", tiny)):
            assert run.status == "finished", (name, run.reason)
            arms[name].append(run.score)
        print(f"seed {seed}: " + json.dumps({"accuracy": {k: v[-1] for k, v in arms.items()},
                                             "cost": {k: v[-1] for k, v in cost.items()}}), file=sys.stderr, flush=True)

    def verdict(a, b):
        gains = [x - y for x, y in zip(arms[a], arms[b])]
        v = results.verdict(gains)
        return {"gains": gains, "outcome": v.outcome, "why": v.why}

    return {"dataset": ds.name, "teacher": args.teacher, "teacher_accuracy": teacher_acc,
            "settings": {k: v for k, v in vars(args).items() if k != "teacher"},
            "student": dataclasses.asdict(cfg.student),
            "accuracy": {k: _spread(v) for k, v in arms.items()},
            "student_over_teacher": {k: statistics.mean(v) / teacher_acc for k, v in arms.items()},
            "tinybert_vs_logits": verdict("tinybert", "logits"), "logits_vs_scratch": verdict("logits", "scratch"),
            "tinybert_vs_scratch": verdict("tinybert", "scratch"), "cost": cost}


if __name__ == "__main__":
    print(json.dumps(main()))
