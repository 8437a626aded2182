"""Storage: atomic .keras saving with sidecars, safe loading, and the SQLite run store under stress."""
from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kdcore import storage
from kdcore.tasks import digits as models
from kdcore.tasks.digits import DIGITS, StudentConfig
from kdcore.storage import RunStore, StorageError


@pytest.fixture(scope="module")
def small_model():
    return models.build_student(StudentConfig(units=8))


class CrashingModel:
    """Stands in for a model whose ``save`` dies halfway (disk full): it writes part of a file, then fails."""

    def save(self, path):
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(28, "No space left on device")


def test_save_is_atomic_a_crash_keeps_the_previous_file(small_model):
    target = storage.model_path("my student")
    saved = storage.save_model(small_model, target, {"kind": "student", "test_accuracy": 0.5})
    before = saved.read_bytes()

    with pytest.raises(StorageError, match="could not save the model to .*No space left on device; "
                                           "it is still in memory"):
        storage.save_model(CrashingModel(), target, {"kind": "student", "test_accuracy": 0.9})

    assert saved.read_bytes() == before
    assert storage.read_sidecar(saved)["test_accuracy"] == 0.5
    assert sorted(p.name for p in storage.models_dir().iterdir()) == ["my-student.keras",
                                                                      "my-student.keras.kdstudio.json"]
    assert storage.load_model(saved).count_params() == small_model.count_params()


def test_a_temp_file_left_by_a_killed_process_is_never_listed(small_model):
    storage.save_model(small_model, storage.model_path("kept"), {"kind": "teacher"})
    (storage.models_dir() / ".kept.a1b2c3.tmp.keras").write_bytes(b"PK\x03\x04 cut short by a kill")
    assert [m["name"] for m in storage.list_models()] == ["kept"]


KILLED_SAVE = r"""
import os, signal, sys
from kdcore import storage

class Model:  # writes part of a model, then the process is SIGKILLed mid-save
    def save(self, path):
        open(path, "wb").write(b"PK\x03\x04 half a model")
        os.kill(os.getpid(), signal.SIGKILL)

storage.save_model(Model(), storage.model_path(sys.argv[1]), {"kind": "teacher"})
"""


def test_temp_files_of_killed_saves_are_removed_once_stale(small_model, kd_home):
    env = dict(os.environ, KDSTUDIO_HOME=str(kd_home), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for name in ("old", "fresh"):
        done = subprocess.run([sys.executable, "-c", KILLED_SAVE, name], env=env, timeout=60)
        assert done.returncode == -9
    folder = storage.models_dir()
    old, fresh = (next(folder.glob(f".{n}.*.tmp.keras")) for n in ("old", "fresh"))
    lookalikes = [folder / n for n in (".notes.tmp.keras", ".old.abc.tmp.keras", ".old.abcdefgh.tmp.txt",
                                       ".old.abcdefgh.tmp.keras.bak")]  # not _atomic_write's names: never ours to delete
    for path in lookalikes:
        path.write_text("a user's file")
    an_hour_ago = time.time() - 3600
    for path in (old, *lookalikes):
        os.utime(path, (an_hour_ago, an_hour_ago))

    assert storage.list_models() == []
    assert not old.exists() and fresh.exists()  # a save still running in another process keeps its file
    assert all(path.exists() for path in lookalikes)

    storage.save_model(small_model, storage.model_path("fresh"), {"kind": "teacher"})  # saving also sweeps
    assert fresh.exists()
    os.utime(fresh, (an_hour_ago, an_hour_ago))
    storage.save_model(small_model, storage.model_path("fresh"), {"kind": "teacher"})
    assert not fresh.exists() and [m["name"] for m in storage.list_models()] == ["fresh"]


def test_sidecar_describes_the_model(small_model):
    path = storage.save_model(small_model, storage.model_path("s1"), {"kind": "student", "test_accuracy": 0.8,
                                                                      "dataset": "mnist-5k"})
    storage.save_model(small_model, storage.model_path("t1"), {"kind": "teacher", "created": 1.0})
    meta = storage.read_sidecar(path)
    assert storage.sidecar_path(path) == path.with_name("s1.keras.kdstudio.json")
    assert meta["kind"] == "student" and meta["dataset"] == "mnist-5k" and meta["test_accuracy"] == 0.8
    assert meta["file_bytes"] == path.stat().st_size and meta["path"] == str(path)
    assert meta["created"] > 1.0
    assert [m["name"] for m in storage.list_models()] == ["s1", "t1"]  # newest first
    assert [m["name"] for m in storage.list_models("teacher")] == ["t1"]
    assert storage.save_model(small_model, path.with_suffix(""), {"kind": "student"}) == path  # .keras added
    assert storage.read_sidecar(path.with_name("none.keras")) == {}


def test_a_users_json_beside_the_model_is_never_replaced(small_model, tmp_path):
    mine = tmp_path / "t.json"
    mine.write_text('{"model": "t.keras", "test_accuracy": 0.97, "kind": "mine", "path": "/data/t.png"}\n')
    before = mine.read_bytes()
    path = storage.save_model(small_model, tmp_path / "t.keras", {"kind": "teacher"})
    storage.save_model(small_model, path, {"kind": "teacher", "test_accuracy": 0.9})
    assert mine.read_bytes() == before
    assert storage.read_sidecar(path)["test_accuracy"] == 0.9
    mine.rename(tmp_path / "u.json")
    (tmp_path / "u.keras").write_bytes(path.read_bytes())  # a model without a sidecar: the user's JSON is not one
    assert storage.read_sidecar(tmp_path / "u.keras") == {}


def test_a_foreign_file_at_the_sidecar_name_stops_the_save(small_model, tmp_path):
    foreign = storage.sidecar_path(tmp_path / "t.keras")
    foreign.write_text("my notes")
    with pytest.raises(StorageError) as err:
        storage.save_model(small_model, tmp_path / "t.keras", {"kind": "teacher"})
    assert str(err.value) == (f"{foreign} exists and was not written by KD Studio; it is left as it is, "
                              "so move it away or save the model under another name")
    assert foreign.read_text() == "my notes" and sorted(p.name for p in tmp_path.iterdir()) == [foreign.name]


def test_old_style_sidecars_still_list(small_model):
    """Sidecars were ``t.json`` before they were ``t.keras.kdstudio.json``: such model folders still list."""
    path = storage.save_model(small_model, storage.model_path("older"), {"kind": "student", "test_accuracy": 0.7})
    storage.sidecar_path(path).rename(path.with_name("older.json"))
    assert [(m["name"], m["kind"], m["test_accuracy"]) for m in storage.list_models("student")] == \
        [("older", "student", 0.7)]
    storage.save_model(small_model, path, {"kind": "student", "test_accuracy": 0.8})  # the new name wins from now on
    assert storage.read_sidecar(path)["test_accuracy"] == 0.8


def test_load_refuses_missing_foreign_and_damaged_files(tmp_path):
    with pytest.raises(StorageError, match="no model file at .*absent.keras"):
        storage.load_model(tmp_path / "absent.keras")
    (tmp_path / "old.h5").write_bytes(b"\x89HDF")
    with pytest.raises(StorageError, match="old.h5 is not a .keras model file; KD Studio saves and loads .keras"):
        storage.load_model(tmp_path / "old.h5")
    (tmp_path / "noise.keras").write_bytes(os.urandom(2048))
    with pytest.raises(StorageError, match=r"noise.keras is damaged or not a Keras model \(a .keras file is a zip"):
        storage.load_model(tmp_path / "noise.keras")


def test_load_refuses_models_of_the_wrong_shape(tmp_path):
    import keras

    colour = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    colour.save(tmp_path / "colour.keras")
    with pytest.raises(StorageError, match=r"colour.keras takes input \(32, 32, 3\) and gives \(10,\); "
                                           "digit models take 28x28x1 images and give 10 logits"):
        storage.load_model(tmp_path / "colour.keras", DIGITS)


def test_load_refuses_a_lambda_layer_in_safe_mode(tmp_path):
    import keras

    net = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2),
                            keras.layers.Flatten(), keras.layers.Dense(10)])
    net.save(tmp_path / "lambda.keras")
    with pytest.raises(StorageError, match="lambda.keras needs custom Python code to load, which safe mode refuses"):
        storage.load_model(tmp_path / "lambda.keras")


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "etc-passwd"),
    ("a/b\\c", "a-b-c"),
    ("bell\x07\nnew\tline\x00", "bell-new-line"),
    ("..", "model"),
    ("", "model"),
    ("x" * 100, "x" * 64),
    ("Student T=4 (90%)", "Student-T-4-90"),
])
def test_safe_name(name, expected):
    assert storage.safe_name(name) == expected
    assert storage.model_path(name).parent == storage.models_dir()


# --- run store -----------------------------------------------------------------------------------
def test_concurrent_writers_lose_nothing(kd_home):
    shared = storage.run_store()
    shared_run = shared.create("distill", "shared", {})
    per_thread = 30

    def writer(i):
        store = shared if i % 2 else RunStore(kd_home / "runs.db")  # same object and separate openers
        own = store.create("baseline", f"writer {i}", {"i": i})
        for epoch in range(1, per_thread + 1):
            store.add_epoch(own, "baseline", {"epoch": epoch, "loss": 1.0 / epoch})
            store.add_epoch(shared_run, f"series{i}", {"epoch": epoch})
            store.update(own, status="running", reason=f"epoch {epoch}")
        store.update(own, status="finished", results={"writer": i})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    runs = [r for r in shared.runs("baseline")]
    assert len(runs) == 6 and all(r["status"] == "finished" and r["reason"] == f"epoch {per_thread}" for r in runs)
    assert sorted(r["results"]["writer"] for r in runs) == list(range(6))
    assert all(len(shared.epochs(r["id"])["baseline"]) == per_thread for r in runs)
    assert {s: len(e) for s, e in shared.epochs(shared_run).items()} == {f"series{i}": per_thread for i in range(6)}


def test_corrupt_database_is_moved_aside_and_a_fresh_store_starts(tmp_path):
    db = tmp_path / "runs.db"
    db.write_bytes(b"this is not SQLite, just junk " * 200)
    Path(f"{db}-wal").write_bytes(b"its journal " * 100)
    store = RunStore(db)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("runs.db.corrupt-")
             and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not SQLite")
    assert Path(f"{aside[0]}-wal").read_bytes() == b"its journal " * 100  # moved with it, never replayed
    assert store.notice == (f"the run store runs.db was damaged; it was moved to {aside[0].name} "
                            "and a new one started")
    run = store.create("teacher", "after the damage", {"epochs": 1})
    assert store.get(run)["name"] == "after the damage"
    assert RunStore(db).notice == ""


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_runs_left_running_by_a_dead_process_become_interrupted(tmp_path):
    db = tmp_path / "runs.db"
    mine = RunStore(db).create("teacher", "this process", {}, status="running")
    rows = {"dead": _dead_pid(), "alive": os.getppid(), "reused pid": os.getpid()}
    with sqlite3.connect(db) as conn:
        for run_id, pid in rows.items():
            conn.execute("INSERT INTO runs (id, kind, name, status, created, owner, pid) "
                         "VALUES (?, 'distill', ?, 'running', 0, 'another-process-token', ?)", (run_id, run_id, pid))
    conn.close()

    store = RunStore(db)
    assert store.get("dead")["status"] == "interrupted"
    assert store.get("dead")["reason"] == "the app stopped while this run was in progress"
    assert store.get("reused pid")["status"] == "interrupted"  # our pid, but an earlier process's token
    assert store.get("alive")["status"] == "running"  # another live process still owns it
    assert store.get(mine)["status"] == "running"


def test_delete_cascades_to_epochs(tmp_path):
    db = tmp_path / "runs.db"
    store = RunStore(db)
    gone, kept = store.create("distill", "gone", {}), store.create("distill", "kept", {})
    for run in (gone, kept):
        for epoch in (1, 2):
            store.add_epoch(run, "student", {"epoch": epoch})
    store.delete(gone)
    assert store.get(gone) is None and store.epochs(gone) == {}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM epochs WHERE run_id = ?", (gone,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM epochs").fetchone()[0] == 2
    conn.close()


def test_update_refuses_unknown_fields(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run = store.create("teacher", "t", {})
    with pytest.raises(ValueError, match="cannot update run field"):
        store.update(run, colour="red")


def test_damaged_pages_beside_an_intact_wal_are_caught_at_open(tmp_path):
    """Only the epochs' pages are damaged: the store used to open and list its runs, then fail on a run's curves."""
    src = tmp_path / "src" / "runs.db"
    src.parent.mkdir()
    store = RunStore(src)
    runs = [store.create("distill", f"run {i}", {"i": i}) for i in range(40)]
    for run in runs:  # after every run row: the epochs table fills the second half of the file
        for epoch in range(1, 21):
            store.add_epoch(run, "student", {"epoch": epoch, "loss": 1 / epoch, "notes": "x" * 200})
    with contextlib.closing(sqlite3.connect(src)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = tmp_path / "runs.db"
    with contextlib.closing(sqlite3.connect(src)) as live:  # an open connection keeps the last commit in the -wal
        live.execute("INSERT INTO runs (id, kind, status) VALUES ('last', 'teacher', 'finished')")
        live.commit()
        shutil.copy(src, db)
        shutil.copy(f"{src}-wal", f"{db}-wal")
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * (size - size // 2))
    demo = tmp_path / "demo" / "runs.db"  # how it used to look, on a copy: fine until a run's epochs are read
    demo.parent.mkdir()
    for part in ("", "-wal"):
        shutil.copy(f"{db}{part}", f"{demo}{part}")
    with contextlib.closing(sqlite3.connect(demo)) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 41
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            conn.execute("SELECT count(*) FROM epochs WHERE metrics LIKE '%x%'").fetchone()

    fresh = RunStore(db)
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("runs.db.corrupt-")
               and not p.name.endswith(("-wal", "-shm"))]
    assert fresh.notice == f"the run store runs.db was damaged; it was moved to {aside.name} and a new one started"
    assert fresh.runs() == [] and fresh.epochs(runs[0]) == {}
    with contextlib.closing(sqlite3.connect(f"file:{aside}?mode=ro", uri=True)) as kept:  # kept for a rescue
        assert kept.execute("SELECT status FROM runs WHERE id = 'last'").fetchone() == ("finished",)
    fresh.create("teacher", "after", {})
    again = RunStore(db)
    assert again.notice == "" and [r["name"] for r in again.runs()] == ["after"]
