"""The hand-written training loops share one :class:`kdcore.training.Loop`: the same stop, the same NaN wording.

Each of the three (the language model's truncated BPTT, the text teacher's
masked-LM pre-training, TinyBERT's intermediate stage) runs for real on tiny
data and tiny models: once with a stop asked for before the first batch, once
with every weight NaN, so the loss is NaN on the first batch.
"""
from __future__ import annotations

import numpy as np
import pytest

from kdcore.progress import Progress
from kdcore.tasks import lm, text
from kdcore.training import STOPPED_BY_USER


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    """60 labelled sentences through the same path as a user's CSV (a tokenizer fitted on their train split)."""
    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "cast", "dull", "fun", "the", "a", "story"]
    rows = [(" ".join(rng.choice(words, 6)), "pos" if i % 2 else "neg") for i in range(60)]
    path = tmp_path_factory.mktemp("loops") / "toy.csv"
    path.write_text("text,label\n" + "\n".join(f"{t},{label}" for t, label in rows) + "\n")
    return text.load(str(path))


def _text_net(data, name):
    return text.build(data.tokenizer.size, 32, 1, 2, 0.0, len(data.classes), name)


def _language_model(progress, data, poison):
    net = poison(lm.build(len(data.classes), 8, 1, 0.0, "tiny"))
    cfg = lm.TeacherConfig(units=8, layers=1, epochs=2, batch_size=4, seq_len=10)
    return lm.fit(net, data, cfg, series="teacher", progress=progress), "teacher", ""


def _pretraining(progress, data, poison):
    net = poison(_text_net(data, "teacher"))
    cfg = text.TeacherConfig(layers=1, hidden=32, heads=2, epochs=1, batch_size=16, pretrain_epochs=2)
    ids = data.tokenizer.encode(data.texts["train"])[0]
    return text.pretrain(net, ids, cfg, data.tokenizer.size, progress), "pretrain", "pre-training "


def _intermediate(progress, data, poison):
    teacher, student = _text_net(data, "teacher"), poison(_text_net(data, "student"))
    cfg = text.TextDistillConfig(intermediate_epochs=2, batch_size=16,
                                 student=text.StudentConfig(layers=1, hidden=64, heads=2))
    return text.fit_intermediate(student, teacher, data, cfg, progress, cache=False), "intermediate", "intermediate "


LOOPS = {"language model": _language_model, "masked-LM pre-training": _pretraining,
         "intermediate stage": _intermediate}


def _data(name, toy_text, sentences):
    return lm.load_text(toy_text) if name == "language model" else sentences


def _poisoned(net):
    net.set_weights([np.full_like(w, np.nan) for w in net.get_weights()])
    return net


@pytest.mark.parametrize("name", LOOPS)
def test_each_hand_written_loop_stops_within_one_batch_of_a_stop(name, toy_text, sentences):
    progress = Progress(name)
    progress.request_stop()
    run, series, _ = LOOPS[name](progress, _data(name, toy_text, sentences), lambda net: net)
    assert (run.status, run.reason, run.history, run.score) == ("stopped", STOPPED_BY_USER, [], None)
    snap = progress.snapshot()
    assert [step for step, _ in snap["batches"][series]] == [1] and snap["series"] == {}


@pytest.mark.parametrize("name", LOOPS)
def test_each_hand_written_loop_fails_on_a_nan_loss_in_the_one_wording(name, toy_text, sentences):
    progress = Progress(name)
    run, series, stage = LOOPS[name](progress, _data(name, toy_text, sentences), _poisoned)
    assert run.status == "failed" and run.reason == f"loss became NaN at {stage}epoch 1 batch 1"
    assert run.history == [] and progress.snapshot()["series"] == {}  # no epoch of NaNs is a finished epoch
