"""``python -m kdcore bench --task lm``: the language model's soft targets three ways (cache, online, scratch).

The shared timing machinery (clocks, medians, the machine's facts) is
:mod:`kdcore.bench`'s; this module is what only the language model measures.
"""
from __future__ import annotations

import os

from ... import bench as shared
from .cache import _kept_cache
from .data import PTB_TOKENS
from .model import unigram_bias
from .train import fit

TARGETS = {  # docs/tasks/lm.md, on the 2-core development machine; never asserted by tests
    "cpu_ratios.cache_vs_scratch": ("<=", 1.25), "cpu_ratios.cache_vs_online": ("<=", 0.70),
    "cache_mb_full_ptb": ("<=", 300.0),
}


def _fit(task, cfg, ds, teacher=None, soft_targets="cache") -> list:
    """(wall, CPU) seconds of each epoch after the first, up to its last training batch (no validation pass)."""
    clock = shared._Clock()
    net = unigram_bias(task.build_student(cfg.student, cfg.seed, len(ds.classes)), ds.y_train)
    result = fit(net, ds, cfg, series="student", progress=clock, teacher=teacher,
                    temperature=cfg.temperature, alpha=cfg.alpha if teacher is not None else 0.0,
                    soft_targets=soft_targets, top_k=cfg.top_k)
    return shared._timed(result, clock)


def run(dataset=None, epochs: int = 2, repeats: int = 1, preset: str = "lm-ptb") -> dict:
    """The language model's soft targets three ways, on one teacher and student (the ``lm-ptb`` preset's shapes).

    ``scratch`` is the student from the words alone; ``cache`` distils from
    the teacher's top-k cache (built once beforehand, timed apart as
    ``cache_build_s``); ``online`` runs the teacher inside every step. Epochs
    are timed as in :func:`kdcore.bench.run` (first left out, medians, methods taking turns).
    ``cache_mb`` is the cache this run built; ``cache_mb_full_ptb`` the same
    arrays for the full Penn Treebank's training streams (929k words). The
    teacher is untrained: its weights do not change what a step costs.
    """
    load_before = os.getloadavg()
    task, spec, teacher_cfg, cfg, ds = shared.preset_run("lm", preset, dataset, "ptb-small", repeats,
                                                         epochs=epochs, soft_targets="cache")
    teacher = task.build_teacher(teacher_cfg, len(ds.classes))
    start = shared._now()
    probs, ids = _kept_cache(teacher, ds, cfg.batch_size, cfg.seq_len, cfg.temperature, cfg.top_k)  # fit reuses it
    build = shared._since(start)
    cache_bytes = probs.nbytes + ids.nbytes
    per_token = cache_bytes / probs[..., 0].size
    full_tokens = (PTB_TOKENS["train"] // cfg.batch_size) // cfg.seq_len * cfg.seq_len * cfg.batch_size
    del probs, ids
    times = {k: [] for k in ("scratch", "cache", "online")}
    rss_method = peak_rss = None
    for _ in range(repeats):
        if rss_method is None:
            rss_method = shared._peak_rss_reset()
        times["cache"] += _fit(task, cfg, ds, teacher, "cache")
        if peak_rss is None:
            peak_rss = shared._peak_rss_mb()
        times["scratch"] += _fit(task, cfg, ds)
        times["online"] += _fit(task, cfg, ds, teacher, "online")
    epoch_s, cpu_s = shared._epoch_medians(times)
    result = {
        "task": "lm", "dataset": ds.name, "train_words": int(len(ds.y_train)),
        "preset": preset if isinstance(preset, str) else spec.get("name", "custom"),
        "teacher": f"{teacher_cfg.layers}×{teacher_cfg.units} LSTM", "student": task.describe_student(cfg.student),
        "batch_size": cfg.batch_size, "seq_len": cfg.seq_len, "top_k": cfg.top_k, "temperature": cfg.temperature,
        "epochs": epochs, "repeats": repeats,
        **shared._epoch_fields(epoch_s, cpu_s),
        "ratios": {"cache_vs_scratch": round(epoch_s["cache"] / epoch_s["scratch"], 3),
                   "cache_vs_online": round(epoch_s["cache"] / epoch_s["online"], 3)},
        "cpu_ratios": {"cache_vs_scratch": round(cpu_s["cache"] / cpu_s["scratch"], 3),
                       "cache_vs_online": round(cpu_s["cache"] / cpu_s["online"], 3)},
        "cache_build_s": round(build[0], 2), "cache_build_cpu_s": round(build[1], 2),
        "cache_mb": round(cache_bytes / 2**20, 1), "cache_mb_full_ptb": round(full_tokens * per_token / 2**20, 1),
        "peak_rss_mb": round(peak_rss, 1), "peak_rss_method": rss_method,
        "machine": shared._machine(load_before),
    }
    result["meets_target"] = shared._verdicts(result, TARGETS)
    return result


def text(result: dict) -> str:
    return "\n".join([
        f"{result['dataset']}, {result['train_words']:,} words, teacher {result['teacher']}, student "
        f"{result['student']}, batch {result['batch_size']}×{result['seq_len']}, top-{result['top_k']} "
        "(s / epoch, CPU s / epoch):",
        *(f"  {k:<8} {v:7.2f} {result['epoch_cpu_s'][k]:7.2f}" for k, v in result["epoch_s"].items()),
        f"CPU: cache/scratch {result['cpu_ratios']['cache_vs_scratch']} (target <= 1.25), cache/online "
        f"{result['cpu_ratios']['cache_vs_online']} (target <= 0.7); wall: {result['ratios']['cache_vs_scratch']}, "
        f"{result['ratios']['cache_vs_online']}",
        f"cache built once in {result['cache_build_s']} s: {result['cache_mb']} MB here, "
        f"{result['cache_mb_full_ptb']} MB for full PTB (target <= 300); peak RSS {result['peak_rss_mb']} MB",
        shared._load_line(result["machine"])])
