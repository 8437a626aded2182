"""The text task's tokenizer: sentences to ``[CLS] w1 … wn`` ids of fixed length, and ids back to words.

**Tokenizer.** Keras's ``TextVectorization`` (lower case, punctuation
stripped, split on whitespace), adapted on the **training split only**, at
most ``VOCAB_CAP`` entries including padding (0) and ``[UNK]`` (1). A sentence
becomes ``[CLS] w1 … wn`` padded with 0 to ``MAX_LEN``; ``[CLS]`` is one id past
the vectorizer's vocabulary. 99.9 % of the snippets fit (the longest has 53
words): a longer sentence is cut and :class:`Sentence` says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_LEN = 48  # [CLS] + 47 words: 99.9 % of the snippets fit whole
VOCAB_CAP = 10_000  # TextVectorization's max_tokens: padding, [UNK] and the 9,998 most frequent training words


def fit_vectorizer(train_texts: list[str]):
    """Keras ``TextVectorization`` adapted on the training sentences only (see the module docstring)."""
    import keras

    vec = keras.layers.TextVectorization(max_tokens=VOCAB_CAP, standardize="lower_and_strip_punctuation",
                                         split="whitespace", output_mode="int")
    vec.adapt(np.array(train_texts, dtype=object), batch_size=1024)
    return vec


@dataclass
class Sentence:
    """One sentence as the models read it: ids with [CLS] first, the words kept, and how many were cut."""

    ids: np.ndarray  # (MAX_LEN,) int32
    tokens: list[str]  # "[CLS]" and the words kept (unknown ones as [UNK])
    words: int  # words before truncation
    cut: int  # words dropped at the end (0 = the whole sentence fits)

    @property
    def note(self) -> str:
        return (f"The sentence has {self.words} words; the models read the first {self.words - self.cut} "
                f"(at most {MAX_LEN - 1}), so the last {self.cut} were cut." if self.cut else "")


class Tokenizer:
    """The vocabulary of one dataset: encode sentences to ``[CLS] …`` ids, and ids back to words."""

    def __init__(self, vectorizer):
        self.vectorizer = vectorizer
        self.vocab = tuple(vectorizer.get_vocabulary())
        self.cls = len(self.vocab)

    @property
    def size(self) -> int:
        """Embedding rows a model of this vocabulary needs: the vectorizer's entries and [CLS]."""
        return len(self.vocab) + 1

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N, MAX_LEN) int32, words per sentence before truncation)."""
        out = np.zeros((len(texts), MAX_LEN), "int32")
        counts = np.zeros(len(texts), "int64")
        for start in range(0, len(texts), 2048):
            chunk = np.asarray(self.vectorizer(np.array(texts[start:start + 2048], dtype=object)))
            chunk = chunk.reshape(len(chunk), -1)
            counts[start:start + len(chunk)] = (chunk != 0).sum(-1)
            keep = chunk[:, : MAX_LEN - 1]
            out[start:start + len(chunk), 0] = self.cls
            out[start:start + len(chunk), 1: 1 + keep.shape[1]] = keep
        return out, counts

    def sentence(self, text: str) -> Sentence:
        """One typed sentence; an empty one (or one of punctuation only) is refused in one line."""
        if not str(text or "").strip():
            raise ValueError("the sentence is empty: type a few words, e.g. --text \"a gripping, funny film\"")
        ids, counts = self.encode([str(text)])
        words = int(counts[0])
        if words == 0:
            raise ValueError("the sentence has no words once punctuation is stripped: type a few words")
        return Sentence(ids[0], self.tokens(ids[0]), words, max(0, words - (MAX_LEN - 1)))

    def tokens(self, ids) -> list[str]:
        return ["[CLS]" if i == self.cls else self.vocab[i] for i in np.asarray(ids) if i != 0]
