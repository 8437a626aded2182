"""Looking inside one sentence: a model's logits and each layer's attention, for the screens and the CLI."""
from __future__ import annotations

import numpy as np

from .model import depth, features
from .tokenizer import Sentence


def logits_of(model, sentence: Sentence) -> np.ndarray:
    return np.asarray(model(sentence.ids[None, :], training=False))[0]


def attention_of(model, sentence: Sentence, layer: int, softmax: bool = True) -> np.ndarray:
    """Layer ``layer``'s attention of every head over the sentence's tokens: (heads, n, n).

    ``softmax`` gives the weights each token puts on the others (rows sum to
    1); without it, the scores before the softmax that the attention term
    compares. Padding is left out.
    """
    n = len(sentence.tokens)
    scores = np.asarray(features(model, logits=False)(sentence.ids[None, :], training=False)[depth(model) + layer])[0]
    scores = scores[:, :n, :n].astype("float64")
    if not softmax:
        return scores
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
