"""The text task's networks: a BERT-style encoder whose layers also give their hidden states and attention scores.

**Networks.** Token + position embeddings (LayerNorm), ``layers`` post-LN
encoder layers (BERT's order: attention, add & norm, GELU feed-forward of
4 × hidden, add & norm) and a tanh pooler over ``[CLS]`` feeding the logits.
Each encoder layer returns its hidden states *and* its attention scores
before the softmax (batch, heads, tokens, tokens): the saved model's only
output is the logits, and :func:`features` rebuilds a model that also gives
the embeddings, every layer's hidden states and scores from the same
weights. The three layer classes are registered Keras layers, so a saved
model loads in safe mode.
"""
from __future__ import annotations

import functools
import math

from .tokenizer import MAX_LEN, VOCAB_CAP

SIZE_VOCAB = VOCAB_CAP + 1  # + [CLS]: what the size table assumes
SIZE_CLASSES = 2
FFN_FACTOR = 4  # BERT's feed-forward width: 4 × hidden
PADDING_PENALTY = 30.0  # subtracted from padded keys' attention scores (see EncoderLayer.call)


def stats(vocab: int, hidden: int, layers: int, classes: int = SIZE_CLASSES, max_len: int = MAX_LEN) -> dict:
    """Parameters, multiply-adds per sentence (all ``max_len`` positions) and float32 bytes.

    Embeddings: (vocab + max_len) × h and a LayerNorm; per layer: Q, K, V, O
    (h² + h each), two LayerNorms, the feed-forward h → 4h → h; the pooler
    (h² + h) and the logits. Multiply-adds per layer: 12·L·h² for the dense
    parts and 2·L²·h for scores and weighted sums (the head count does not change either).
    """
    f = FFN_FACTOR * hidden
    per_layer = 4 * (hidden * hidden + hidden) + 2 * 2 * hidden + (hidden * f + f) + (f * hidden + hidden)
    n = (vocab + max_len) * hidden + 2 * hidden + layers * per_layer + hidden * hidden + hidden + hidden * classes + classes
    macs = layers * (max_len * (4 * hidden * hidden + 2 * hidden * f) + 2 * max_len * max_len * hidden)
    macs += hidden * hidden + hidden * classes
    return {"params": n, "macs": macs, "weight_bytes": 4 * n}


@functools.cache
def _layers():
    """The three Keras layer classes, defined (and registered for safe loading) when TensorFlow is first needed."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="kdstudio_text")
    class Embeddings(keras.layers.Layer):
        """Token and position embeddings, summed, LayerNorm, dropout (BERT's embedding layer without segments)."""

        def __init__(self, vocab, max_len, hidden, dropout=0.0, **kwargs):
            super().__init__(**kwargs)
            self.vocab, self.max_len, self.hidden, self.rate = vocab, max_len, hidden, dropout
            self.tokens = keras.layers.Embedding(vocab, hidden, name="tokens")
            self.positions = keras.layers.Embedding(max_len, hidden, name="positions")
            self.norm = keras.layers.LayerNormalization(epsilon=1e-12, name="norm")
            self.drop = keras.layers.Dropout(dropout)

        def build(self, input_shape):
            self.tokens.build(input_shape)
            self.positions.build((self.max_len,))
            self.norm.build((*input_shape, self.hidden))

        def call(self, ids, training=False):
            positions = self.positions(ops.arange(ops.shape(ids)[1]))
            return self.drop(self.norm(self.tokens(ids) + positions), training=training)

        def get_config(self):
            return dict(super().get_config(), vocab=self.vocab, max_len=self.max_len, hidden=self.hidden,
                        dropout=self.rate)

    @keras.saving.register_keras_serializable(package="kdstudio_text")
    class EncoderLayer(keras.layers.Layer):
        """One post-LN transformer layer; ``call([x, ids])`` gives ``[hidden states, attention scores]``.

        The scores are QKᵀ/√d per head before padding is masked and before the
        softmax: what TinyBERT's attention term compares (its eq. 3) and what
        the Attention screen draws. Padding (id 0) is masked out of the keys.
        """

        def __init__(self, hidden, heads, dropout=0.0, **kwargs):
            super().__init__(**kwargs)
            self.hidden, self.heads, self.rate = hidden, heads, dropout
            self.q, self.k, self.v, self.o = (keras.layers.Dense(hidden, name=n) for n in ("query", "key", "value",
                                                                                          "output"))
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-12, name="norm1")
            self.ff1 = keras.layers.Dense(FFN_FACTOR * hidden, activation="gelu", name="ff1")
            self.ff2 = keras.layers.Dense(hidden, name="ff2")
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-12, name="norm2")
            self.drop_attn, self.drop1, self.drop2 = (keras.layers.Dropout(dropout) for _ in range(3))

        def build(self, input_shape):
            x_shape = tuple(input_shape[0])
            for dense in (self.q, self.k, self.v, self.o, self.ff1):
                dense.build(x_shape)
            self.ff2.build((*x_shape[:-1], FFN_FACTOR * self.hidden))
            self.norm1.build(x_shape)
            self.norm2.build(x_shape)

        def _split(self, t, length):
            return ops.transpose(ops.reshape(t, (-1, length, self.heads, self.hidden // self.heads)), (0, 2, 1, 3))

        def call(self, inputs, training=False):
            x, ids = inputs
            length = x.shape[1]
            q, k, v = (self._split(layer(x), length) for layer in (self.q, self.k, self.v))
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.hidden // self.heads)
            # Padding is masked by lowering its scores by PADDING_PENALTY, not by the usual -1e9: exp(-30) leaves a
            # padded key ~1e-13 of the weight, and the tensor keeps a range an int8 export can hold (a -1e9 takes
            # all 256 levels of the scale and leaves the real scores one level: measured, 76.1 % fell to 58.5 %).
            keep = ops.cast(ops.not_equal(ids, 0), scores.dtype)[:, None, None, :]
            weights = self.drop_attn(ops.softmax(scores - (1.0 - keep) * PADDING_PENALTY, axis=-1), training=training)
            context = ops.reshape(ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3)), (-1, length, self.hidden))
            h = self.norm1(x + self.drop1(self.o(context), training=training))
            h = self.norm2(h + self.drop2(self.ff2(self.ff1(h)), training=training))
            return [h, scores]

        def get_config(self):
            return dict(super().get_config(), hidden=self.hidden, heads=self.heads, dropout=self.rate)

    @keras.saving.register_keras_serializable(package="kdstudio_text")
    class FirstToken(keras.layers.Layer):
        """The hidden state at position 0, where [CLS] stands: the sentence's summary for the classifier."""

        def call(self, x):
            return x[:, 0]

    return Embeddings, EncoderLayer, FirstToken


def build(vocab: int, hidden: int, layers: int, heads: int, dropout: float, classes: int, name: str,
          seed: int = 0):
    """``ids (MAX_LEN,) → logits``; layers ``embeddings``, ``layer1`` … ``layerN``, ``pooler``, ``logits``."""
    import keras

    Embeddings, EncoderLayer, FirstToken = _layers()
    keras.utils.set_random_seed(seed)
    ids = keras.Input((MAX_LEN,), dtype="int32", name="ids")
    x = Embeddings(vocab, MAX_LEN, hidden, dropout, name="embeddings")(ids)
    for i in range(layers):
        x, _ = EncoderLayer(hidden, heads, dropout, name=f"layer{i + 1}")([x, ids])
    pooled = keras.layers.Dense(hidden, activation="tanh", name="pooler")(FirstToken(name="cls")(x))
    if dropout:
        pooled = keras.layers.Dropout(dropout, seed=seed)(pooled)
    return keras.Model(ids, keras.layers.Dense(classes, name="logits")(pooled), name=name)


def depth(model) -> int:
    """Encoder layers of a text model."""
    return sum(1 for layer in model.layers if layer.name.startswith("layer") and layer.name[5:].isdigit())


def shape_of(model) -> dict:
    """``{"layers", "hidden", "heads", "vocab", "classes"}`` of a built or loaded text model."""
    first = model.get_layer("layer1")
    return {"layers": depth(model), "hidden": int(first.hidden), "heads": int(first.heads),
            "vocab": int(model.get_layer("embeddings").vocab), "classes": int(model.output_shape[-1])}


def features(model, logits: bool = True):
    """A model sharing ``model``'s weights whose outputs are [embeddings, h1…hN, scores1…scoresN] (+ logits).

    Without ``logits`` the pooler and classifier are not part of it, so the
    intermediate stage neither computes nor trains them.
    """
    import keras

    n = depth(model)
    hs = [model.get_layer(f"layer{i}").output for i in range(1, n + 1)]
    outputs = [model.get_layer("embeddings").output, *[h[0] for h in hs], *[h[1] for h in hs]]
    return keras.Model(model.input, outputs + ([model.output] if logits else []))


def projection(student_hidden: int, teacher_hidden: int, name: str):
    """One of TinyBERT's learned projections W_e, W_h (student width → teacher width, no bias), built.

    A recipe's term says whether it has one (:mod:`.tinybert`: W_h always, as
    in the paper; W_e where the widths differ). They train with the student
    in the intermediate stage and are then thrown away.
    """
    import keras

    layer = keras.layers.Dense(teacher_hidden, use_bias=False, name=name)
    layer.build((None, None, student_hidden))
    return layer
