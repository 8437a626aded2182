"""What the screens, the CLI and sequence-level KD ask of a trained language model: a prompt's next words, surprisal
on test text, text it writes."""
from __future__ import annotations

import math
import re

import numpy as np

from ...dataset import Dataset
from .data import EOS, UNK
from .model import _runner, vocab_size, zero_state

TOP_WORDS = 15
CONTINUATION_WORDS = 20
PRIME_EOS = 5  # sentence ends read before a prompt, so it starts from a warmed state (see complete)


def prompt_ids(text: str, vocab: tuple[str, ...]) -> list[int]:
    """A typed prompt as word ids: lower case, numbers as PTB's ``N``, unknown words as ``<unk>``.

    An empty prompt, or one whose words are all unknown, is refused in one line.
    """
    words = [w.lower() for w in text.split()]
    if not words:
        raise ValueError("the prompt is empty: type a few words, e.g. --prompt \"the company said\"")
    index = {w: i for i, w in enumerate(vocab)}
    words = ["N" if w not in index and re.fullmatch(r"[\d.,:/-]*\d[\d.,:/-]*", w) else w for w in words]
    if not any(w in index and w != UNK for w in words):
        raise ValueError(f"none of the prompt's words is in the model's vocabulary ({len(vocab):,} words); "
                         "try common lower-case words")
    return [index.get(w, index[UNK]) for w in words]


def next_word_probs(model, ids: list[int], temperature: float = 1.0):
    """(probabilities of the next word at T, state after the prompt)."""
    import tensorflow as tf

    run = _runner(model)
    logits, state = run(tf.constant([ids], "int32"), [tf.constant(s) for s in zero_state(model, 1)])
    z = logits.numpy()[0, -1].astype("float64") / temperature
    p = np.exp(z - z.max())
    return p / p.sum(), state


def entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def complete(model, vocab: tuple[str, ...], text: str, temperature: float = 1.0, seed: int = 0,
             words: int = CONTINUATION_WORDS, top: int = TOP_WORDS) -> dict:
    """The next-word distribution at T (top words, entropy) and a seeded sample of up to ``words`` words.

    The prompt is read after ``PRIME_EOS`` sentence ends, as a sentence in
    training follows one: from a zero state, which training meets once per
    stream and epoch, the measured ptb-small models gave a near-uniform next
    word (13.1 bits for the student after "the company said"); after five
    ``<eos>`` the state has settled (9.8 bits, the same after twenty).
    """
    import tensorflow as tf

    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    if vocab_size(model) != len(vocab):
        raise ValueError(f"the model predicts {vocab_size(model):,} words but its vocabulary has {len(vocab):,}")
    ids = prompt_ids(text, vocab)
    p, state = next_word_probs(model, [vocab.index(EOS)] * PRIME_EOS + ids, temperature)
    order = np.argsort(-p, kind="stable")[:top]
    rng = np.random.default_rng(seed)
    run = _runner(model)
    out, q = [], p
    for _ in range(words):
        w = int(rng.choice(len(q), p=q))
        out.append(vocab[w])
        if vocab[w] == EOS:
            break
        logits, state = run(tf.constant([[w]], "int32"), state)
        z = logits.numpy()[0, -1].astype("float64") / temperature
        q = np.exp(z - z.max())
        q /= q.sum()
    return {"prompt": " ".join(vocab[i] for i in ids),
            "next_words": [{"word": vocab[i], "probability": float(p[i])} for i in order],
            "entropy_bits": entropy_bits(p), "vocabulary_size": len(vocab), "continuation": " ".join(out)}


SAMPLE_STREAMS = 32  # texts a teacher writes side by side: one forward pass serves them all


def write_text(model, words: int, eos: int, seed: int = 0, streams: int = SAMPLE_STREAMS) -> list[np.ndarray]:
    """``words`` word ids the model writes at T = 1, as up to ``streams`` texts sampled side by side (seeded).

    Each text starts as :func:`complete` does, after ``PRIME_EOS`` sentence
    ends, and runs on across the sentences it ends; the texts share each
    forward pass (32 streams of one word cost about what one does on a CPU).
    Draws are ``tf.random.stateless_categorical`` seeded by (seed, word
    index), so a seed gives the same words on every call.
    """
    import tensorflow as tf

    n = max(1, min(streams, words))
    per = -(-words // n)
    run = _runner(model)
    logits, state = run(tf.constant(np.full((n, PRIME_EOS), eos, "int32")),
                        [tf.constant(s) for s in zero_state(model, n)])
    out = np.zeros((n, per), "int32")
    for t in range(per):
        w = tf.random.stateless_categorical(logits[:, -1], 1, seed=[seed, t], dtype="int32")
        out[:, t] = w.numpy()[:, 0]
        logits, state = run(w, state)
    return [out[i, : words // n + (i < words % n)] for i in range(n)]  # the lengths differ by at most one


def entropy_curve(model, vocab: tuple[str, ...], text: str, temperatures) -> list[float]:
    """Entropy (bits) of the next-word distribution after ``text`` at each temperature, read as :func:`complete` reads it."""
    from ...inference import entropy_vs_temperature

    p, _ = next_word_probs(model, [vocab.index(EOS)] * PRIME_EOS + prompt_ids(text, vocab), 1.0)
    return entropy_vs_temperature(np.log(np.maximum(p, 1e-300)), temperatures).tolist()  # log p: the logits up to a constant



# --- surprisal on the test text ------------------------------------------------------------------------
WORDS_COMPARED = 3_000
BANDS = ((4.0, "expected"), (8.0, "plausible"), (12.0, "surprising"), (math.inf, "very surprising"))


def band(bits: float) -> str:
    """A word's surprisal in words: under 4 bits expected, under 8 plausible, under 12 surprising, else very.

    4 bits is a 1-in-16 guess; 13.3 bits (log2 of 10,000) is what a model that knew nothing would pay.
    """
    return next(name for limit, name in BANDS if bits < limit)


def compare(models: dict, data: Dataset, words: int = WORDS_COMPARED, seq_len: int = 35) -> dict:
    """Each model's surprisal (−log2 p of the word that came) on the first ``words`` test words, and where they differ.

    The test text is read as one stream from its start, as a reader would,
    with the state carried along. Per word and model: the surprisal in bits
    and the model's own top guess with its probability; for two models, the
    KL divergence (bits) of the first's next-word distribution from the
    second's, which is how much they disagree about that word, whatever came.
    """
    import tensorflow as tf

    n = min(int(words), len(data.y_test))
    x, y = data.x_test[:n], data.y_test[:n]
    names = list(models)
    for name, model in models.items():
        if vocab_size(model) != len(data.classes):
            raise ValueError(f"the {name.lower()} predicts {vocab_size(model):,} words but {data.name} has "
                             f"{len(data.classes):,}; choose the dataset it was trained on")
    out = {"words": [data.classes[i] for i in y], "surprisal": {m: np.zeros(n) for m in names},
           "guess": {m: [""] * n for m in names}, "guess_p": {m: np.zeros(n) for m in names},
           "kl_bits": np.zeros(n) if len(names) > 1 else None}
    states = {m: [tf.constant(s) for s in zero_state(model, 1)] for m, model in models.items()}
    for start in range(0, n, seq_len):
        chunk = slice(start, min(start + seq_len, n))
        rows, target = np.arange(chunk.stop - chunk.start), y[chunk]
        log_p = {}
        for m, model in models.items():
            logits, states[m] = _runner(model)(tf.constant(x[None, chunk]), states[m])
            lp = log_p[m] = tf.nn.log_softmax(logits[0], axis=-1).numpy().astype("float64")
            out["surprisal"][m][chunk] = -lp[rows, target] / math.log(2)
            guess = lp.argmax(-1)
            out["guess"][m][chunk] = [data.classes[g] for g in guess]
            out["guess_p"][m][chunk] = np.exp(lp[rows, guess])
        if out["kl_bits"] is not None:
            a, b = log_p[names[0]], log_p[names[1]]
            out["kl_bits"][chunk] = (np.exp(a) * (a - b)).sum(-1) / math.log(2)
    return out


def sentence_spans(words: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each sentence in a word list, its ``<eos>`` included; a tail with no ``<eos>`` is one too."""
    spans, start = [], 0
    for i, w in enumerate(words):
        if w == EOS:
            spans.append((start, i + 1))
            start = i + 1
    if start < len(words):
        spans.append((start, len(words)))
    return spans


def disagreements(compared: dict, top: int = 15, context: int = 8) -> list[dict]:
    """The ``top`` words where two models' next-word distributions differ most (KL, bits), with what led to each."""
    kl = compared.get("kl_bits")
    if kl is None:
        return []
    words, names = compared["words"], list(compared["surprisal"])
    rows = []
    for i in np.argsort(-kl, kind="stable")[:top]:
        rows.append({"position": int(i), "context": " ".join(words[max(0, i - context):i]), "word": words[i],
                     "kl_bits": float(kl[i]),
                     **{f"{m.lower()}_guess": f"{compared['guess'][m][i]} ({compared['guess_p'][m][i]:.0%})"
                        for m in names},
                     **{f"{m.lower()}_bits": float(compared["surprisal"][m][i]) for m in names}})
    return rows
