"""A text teacher's validation and test accuracy after every epoch, for one choice of its settings.

    .venv/bin/python -m lab.text_teacher_probe [--layers 4] [--hidden 128] [--heads 4] [--dropout 0.1]
        [--lr 5e-4] [--epochs 4] [--batch 32] [--seed 0]

`train-teacher` reports test accuracy only; choosing a setting by it would tune on the test split. This
script trains the text task's own encoder (``kdcore.tasks.text.build``) with Keras's ``fit`` and Adam on the
rotten-tomatoes training split, and prints one JSON line per epoch with the training, validation and test
accuracy and the process's CPU seconds. It is a measurement, not part of the product.
"""
from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, kind, value in (("--layers", int, 4), ("--hidden", int, 128), ("--heads", int, 4),
                              ("--dropout", float, 0.1), ("--lr", float, 5e-4), ("--epochs", int, 4),
                              ("--batch", int, 32), ("--seed", int, 0)):
        parser.add_argument(flag, type=kind, default=value)
    args = parser.parse_args(argv)
    import keras

    from kdcore.tasks import text

    ds = text.load("rotten-tomatoes")
    net = text.build(ds.tokenizer.size, args.hidden, args.layers, args.heads, args.dropout, len(ds.classes),
                     "teacher", args.seed)
    net.compile(keras.optimizers.Adam(args.lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    for epoch in range(1, args.epochs + 1):
        cpu = time.process_time()
        fit = net.fit(ds.x_train, ds.y_train, batch_size=args.batch, epochs=1, verbose=0, shuffle=True)
        scores = {split: net.evaluate(x, y, batch_size=512, verbose=0)[1]
                  for split, x, y in (("valid", ds.x_valid, ds.y_valid), ("test", ds.x_test, ds.y_test))}
        print(json.dumps({**vars(args), "epoch": epoch, "train": fit.history["accuracy"][-1], **scores,
                          "cpu_s": round(time.process_time() - cpu, 1)}), flush=True)


if __name__ == "__main__":
    main()
