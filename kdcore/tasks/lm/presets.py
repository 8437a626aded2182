"""The language-model presets (plain data; :mod:`kdcore.presets` collects them; docs/tasks/lm.md
has what was measured of them).

- ``lm-demo`` is the Home demo: the lm-quick students on ptb-small, their
  teacher (1×128, one epoch) on the full PTB, whose test split begins with
  ptb-small's. On the same 60k words the teacher knows little more than
  its students (``lm-quick`` ties); read on 929k, its spread over the next
  words is what the slice cannot give them. The teacher runs in each
  student step (``soft_targets`` online): its whole distribution over the
  10,000 words, where the top-32 cache keeps 32 and costs the student about
  96 perplexity here, for 7 s more a seed (docs/tasks/lm.md#methods; the
  figures: docs/results.md, ``reproduce --task lm``).
- ``lm-quick`` has teacher and students on the same data: ptb-small (60k words), a 1×128 teacher
  for 2 epochs and a 1×32 student for 2, all at Adam 1e-2, T = 1. Measured
  (3 seeds, docs/tasks/lm.md): teacher 412 test perplexity, distilled
  465 ± 8, scratch 476 ± 7, a tie. Within a minute's budget on 60k words a
  2×128 teacher did no better than a 1×32 student from scratch; a 1×128
  learns faster per step. Its best validation epoch is the 2nd; later ones
  over-fit.
- ``lm-ptb`` is the headline run: a 2×256 teacher on full PTB, batch
  32 × 35, Adam 5e-3 decaying ×0.6 each epoch, dropout 0.2, 2 epochs (what
  took 16 min 21 s on 2 quiet cores, test perplexity 121.5), then a
  1×64 student for 1 epoch at T = 1: with the cache's rest in the student's
  proportions, T = 1 makes the soft and hard terms share one softmax, so a
  cache step costs what a scratch step does.
"""

PRESETS: dict[str, dict] = {
    "lm-demo": {
        "demo": True,
        "description": "The teacher, a 1×128 LSTM, reads the whole Penn Treebank once (929,000 words); the 1×32 "
                       "students read only a 60,000-word slice of it. The distilled one learns, at each word, the "
                       "teacher's spread over the next words, drawn from 15 times more text than it sees; the "
                       "student from scratch has only the slice's one next word. That is where distillation "
                       "helps: a teacher that knows more than the students' data can tell.",
        "dataset": "ptb-small",
        "teacher_dataset": "ptb",
        "teacher": {"epochs": 1, "units": 128, "layers": 1, "dropout": 0.3, "learning_rate": 0.01},
        "distill": {"student": {"units": 32, "layers": 1}, "temperature": 1.0, "alpha": 0.5, "epochs": 2,
                    "learning_rate": 0.01, "soft_targets": "online"},
    },
    "lm-quick": {
        "headline": True,
        "description": "Teacher and students on the same data: a 1×128 LSTM teacher on a 60,000-word slice of the "
                       "Penn Treebank, a 1×32 student from its top-32 cache, and the student from scratch. About a "
                       "minute on 2 cores. Measured over 3 seeds, a tie: 465 ± 8 distilled, 476 ± 7 from scratch "
                       "(docs/results.md).",
        "dataset": "ptb-small",
        "teacher": {"epochs": 2, "units": 128, "layers": 1, "dropout": 0.3, "learning_rate": 0.01},
        "distill": {"student": {"units": 32, "layers": 1}, "temperature": 1.0, "alpha": 0.5, "epochs": 2,
                    "learning_rate": 0.01},
    },
    "lm-ptb": {
        "description": "The full Penn Treebank (929k words): a 2×256 LSTM teacher, then a 1×64 student distilled "
                       "from its top-32 cache beside the same student from scratch. Tens of minutes on 2 cores.",
        "dataset": "ptb",
        "teacher": {"epochs": 2, "units": 256, "layers": 2, "dropout": 0.2, "batch_size": 32,
                    "learning_rate": 0.005, "lr_decay": 0.6},
        "distill": {"student": {"units": 64, "layers": 1}, "temperature": 1.0, "alpha": 0.5, "epochs": 1,
                    "batch_size": 32, "learning_rate": 0.005},
    },
}
