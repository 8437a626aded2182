"""How an exported language model is scored: its perplexity over the test words, beside the float model's.

:func:`kdcore.export.export` converts and times any task's model; this is
the language model's :meth:`~kdcore.tasks.base.Task.score_export`.
"""
from __future__ import annotations

import numpy as np

from .data import streams
from .model import perplexity


def file_perplexity(runner, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    """exp(mean next-word cross-entropy) of an exported language model over the words (x, y).

    One stream at batch 1, as a deployed model reads: windows of ``steps``
    words, the LSTM state fed back from each window's outputs into the next
    (the float model is scored the same way, by :func:`kdcore.tasks.lm.model.perplexity`
    with one stream). ``runner`` is the file's signature runner: inputs and
    outputs are matched by name, ``tokens`` and the states ``h1, c1, …`` in,
    ``output_0`` (logits) and the states out, in the order the Keras model
    lists them.
    """
    names = list(runner.get_input_details())
    states = [n for n in names if n != "tokens"]
    states.sort(key=lambda n: (int(n[1:]), n[0] == "c"))  # h1, c1, h2, c2, … as lm.build orders them
    feed = {n: np.zeros(runner.get_input_details()[n]["shape"], "float32") for n in states}
    xs, ys = streams(x, y, 1, steps, pad=True)
    total, count = 0.0, 0
    for xc, yc in zip(xs, ys):
        out = runner(tokens=xc.astype("int32"), **feed)
        logits = out["output_0"][0].astype("float64")
        feed = {n: out[f"output_{i + 1}"] for i, n in enumerate(states)}
        log_p = logits - logits.max(-1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
        mask = yc[0] >= 0
        total -= float(log_p[np.arange(steps), np.maximum(yc[0], 0)][mask].sum())
        count += int(mask.sum())
    return float(np.exp(total / max(count, 1)))


def score(task, model, exported, data, window: int) -> dict:
    """The export's figures: both perplexities over the test words read in windows of ``window``, and their change."""
    task.check_fits(model, data)
    exported_ppl = file_perplexity(exported.runner(), data.x_test, data.y_test, window)
    float_ppl = perplexity(model, data.x_test, data.y_test, window, n=1)
    return {"perplexity": exported_ppl, "float_perplexity": float_ppl, "perplexity_change": exported_ppl - float_ppl,
            "test_words": int(len(data.y_test)), "window_words": window}
