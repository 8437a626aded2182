"""The bar a text teacher must clear: a bag-of-words logistic regression on the same split and vocabulary.

    .venv/bin/python -m lab.text_bow [--dataset rotten-tomatoes|FILE.csv]

Each sentence becomes the set of its word ids (the text task's own TextVectorization vocabulary, fitted on
the training split, [UNK] included, [CLS] and padding left out); scikit-learn's LogisticRegression is
fitted on the training split for C in 0.1 … 10, the C with the best validation accuracy is kept, and its
test accuracy is printed with the validation one, as JSON. scikit-learn is not a KD Studio dependency:
this script is a measurement, run where it is installed.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)


def bags(ids: np.ndarray, size: int):
    """A sparse (sentences × vocabulary) 0/1 matrix of which words each sentence holds."""
    from scipy.sparse import csr_matrix

    rows, cols = np.nonzero((ids > 0) & (ids < size))
    return csr_matrix((np.ones(len(rows)), (rows, ids[rows, cols])), shape=(len(ids), size)).sign()


def main(argv=None) -> dict:
    from sklearn.linear_model import LogisticRegression

    from kdcore.tasks import text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="rotten-tomatoes")
    ds = text.load(parser.parse_args(argv).dataset)
    size = len(ds.tokenizer.vocab)  # the [CLS] id (= size) is left out
    x = {s: bags(a, size) for s, a in (("train", ds.x_train), ("valid", ds.x_valid), ("test", ds.x_test))}
    scores = {}
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(x["train"], ds.y_train)
        scores[c] = (model.score(x["valid"], ds.y_valid), model.score(x["test"], ds.y_test))
    best = max(C_GRID, key=lambda c: scores[c][0])
    return {"dataset": ds.name, "vocabulary": size, "train": len(ds.y_train), "C": best,
            "valid_accuracy": scores[best][0], "test_accuracy": scores[best][1],
            "by_C": {str(c): {"valid": v, "test": t} for c, (v, t) in scores.items()}}


if __name__ == "__main__":
    print(json.dumps(main()))
