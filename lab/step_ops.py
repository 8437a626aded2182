"""How many operations a training step runs: from scratch, and distilling with each loss mode.

    .venv/bin/python -m lab.step_ops

Counts the nodes of ``fit``'s own train step (``kdcore.training``'s trainer,
the bench's 128-unit MLP student, T = 4, alpha = 0.9) in the graph as
TensorFlow's Grappler optimises it. On this small student most of a step's
time is per-operation overhead, so the count of distillation's extra
operations is a measure of its extra cost that no machine load can blur (CPU
seconds on a shared 2-core machine move by several per cent from run to run).
It uses TensorFlow's internal ``tensorflow.python.grappler`` module: a
measuring tool, not part of KD Studio.
"""
from __future__ import annotations

import collections
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402 - keras before tensorflow, as everywhere in kdcore
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2  # noqa: E402
from tensorflow.python.framework import meta_graph  # noqa: E402
from tensorflow.python.grappler import tf_optimizer  # noqa: E402

from kdcore import losses, training  # noqa: E402
from kdcore.params import LOSS_MODES  # noqa: E402
from kdcore.tasks.digits import StudentConfig, build_student  # noqa: E402

TEMPERATURE, ALPHA = 4.0, 0.9
FREE = {"Const", "Placeholder", "NoOp"}  # no work at run time


def step_ops(mode: str | None) -> collections.Counter:
    """Op types of one optimised train step; ``mode=None`` is training from scratch."""
    net = build_student(StudentConfig(units=128), 0)
    trainer = training._trainer_class()(net, TEMPERATURE, ALPHA if mode else 0.0, mode or "kl")
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.optimizer.build(net.trainable_variables)
    x, y = tf.TensorSpec((None, 28, 28, 1)), tf.TensorSpec((None,), tf.int64)
    if mode is None:
        fn = tf.function(lambda xb, yb: trainer.train_step((xb, yb))).get_concrete_function(x, y)
    else:
        width = np.asarray(losses.soft_targets(np.zeros((1, 10), "float32"), TEMPERATURE, mode)).shape[1]
        fn = tf.function(lambda xb, yb, tb: trainer.train_step((xb, (yb, tb)))).get_concrete_function(
            x, y, tf.TensorSpec((None, width)))
    graph = meta_graph.create_meta_graph_def(graph=fn.graph)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.extend(t.name for t in fn.outputs)
    fetch.node_list.value.extend(op.name for op in fn.graph.get_operations() if op.type.startswith("Assign"))
    graph.collection_def["train_op"].CopyFrom(fetch)
    optimised = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), graph)
    return collections.Counter(node.op for node in optimised.node if node.op not in FREE)


def main() -> int:
    scratch = step_ops(None)
    print(f"from scratch: {sum(scratch.values())} operations per step")
    for mode in LOSS_MODES:
        ops = step_ops(mode)
        added = ", ".join(f"{name} {n}" for name, n in (ops - scratch).most_common())
        print(f"distilling, {mode:<9}: {sum(ops.values())} (+{sum(ops.values()) - sum(scratch.values())}; "
              f"more of: {added})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
