"""Persistence: saved models (``.keras`` + a ``.kdstudio.json`` sidecar) and the SQLite run store.

Everything lives under one data directory: ``$KDSTUDIO_HOME`` when set, else
``~/.kdstudio``. Model files are written to a temporary name in the same
folder and renamed into place (``os.replace`` is atomic), so a crash while
saving leaves the previous file intact and no half-written model is ever
listed; the temporary file a killed save leaves is deleted once it is a
minute old. Models load with Keras's safe mode: no pickles, no custom code.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

MODEL_SUFFIX = ".keras"
SIDECAR_SUFFIX = ".kdstudio.json"  # ``t.keras`` -> ``t.keras.kdstudio.json``: a name no other tool picks
# _atomic_write's temporary names: ``.<stem>.`` + mkstemp's 8 random characters + ``.tmp<suffix>``.
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp\.(keras|json)$")
STALE_TEMP_S = 60  # a save of a KD Studio model takes well under a second; one untouched for a minute was killed
_PROCESS_TOKEN = uuid.uuid4().hex  # marks runs owned by this process


class StorageError(ValueError):
    """A model or run-store problem, in one readable sentence."""


def home() -> Path:
    path = Path(os.environ.get("KDSTUDIO_HOME") or Path.home() / ".kdstudio").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(name: str, fallback: str = "model") -> str:
    """A file-name-safe version of a user's name: no slashes, no ``..``, no control characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name or "")).strip(".-_")[:64]
    return cleaned or fallback


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sweep_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files that saves killed mid-write (SIGKILL, power cut) left in ``folder``.

    Only names of ``_atomic_write``'s exact pattern, and only when untouched for
    ``STALE_TEMP_S``: a save still running in another process owns a fresh one.
    """
    cutoff, removed = time.time() - STALE_TEMP_S, []
    for tmp in Path(folder).glob(".*.tmp.*"):
        if _TEMP_NAME.match(tmp.name):
            with contextlib.suppress(OSError):  # gone already, or not ours to delete
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed.append(tmp)
    return removed


def write_json(path: Path, data: dict) -> None:
    _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, default=str)))


def model_path(name: str) -> Path:
    return models_dir() / (safe_name(name) + MODEL_SUFFIX)


def save_model(model, path: str | Path, meta: dict) -> Path:
    """Save ``model`` atomically with a JSON sidecar (:func:`sidecar_path`) describing it.

    A file at the sidecar's name that KD Studio did not write is never replaced:
    the save is refused before anything is written. On failure (disk full,
    read-only folder) raises :class:`StorageError`; the model object is
    untouched and can be saved again elsewhere.
    """
    path = Path(path)
    if path.suffix != MODEL_SUFFIX:
        path = path.with_name(path.name + MODEL_SUFFIX)
    side = sidecar_path(path)
    if (side.exists() or side.is_symlink()) and _sidecar_at(side) is None:
        raise StorageError(f"{side} exists and was not written by KD Studio; it is left as it is, "
                           "so move it away or save the model under another name")
    _sweep_temp_files(path.parent)
    try:
        _atomic_write(path, model.save)
        sidecar = dict(meta, file_bytes=path.stat().st_size, created=meta.get("created", time.time()),
                       path=str(path))
        write_json(side, sidecar)
    except OSError as exc:
        raise StorageError(f"could not save the model to {path.parent}: {exc.strerror or exc}; "
                           "it is still in memory, so choose another place and save again") from exc
    return path


def sidecar_path(path: str | Path) -> Path:
    """Where a model's description lives: ``t.keras`` -> ``t.keras.kdstudio.json``.

    Sidecars used to be ``t.json``, which is also where a user keeps, say, the
    CLI's ``--json`` output for ``--out t.keras``; a save replaced it.
    """
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _sidecar_at(path: Path) -> dict | None:
    """The sidecar at ``path`` if KD Studio wrote it: a JSON object with the keys :func:`save_model` adds itself."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and {"path", "file_bytes"} <= meta.keys() else None


def read_sidecar(path: str | Path) -> dict:
    """A model's sidecar, or ``{}``. Falls back to an old-style ``t.json`` only if it is one we wrote for ``t.keras``."""
    path = Path(path)
    meta = _sidecar_at(sidecar_path(path))
    if meta is None and path.name.endswith(MODEL_SUFFIX):
        meta = _sidecar_at(path.with_name(path.name[: -len(MODEL_SUFFIX)] + ".json"))
        if meta is not None and Path(str(meta["path"])).name != path.name:
            meta = None  # someone else's JSON that merely has keys of the same names
    return meta or {}


def load_model(path: str | Path, task=None):
    """Load a ``.keras`` model in safe mode and, given ``task`` (a :class:`~kdcore.tasks.Task`), check it is one of its.

    The task hands in its own layer classes (``task.custom_objects()``) and
    checks the shapes (``task.check_model``); without a task only models of
    standard Keras layers load, and no shape is checked.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise StorageError(f"no model file at {path}")
    if path.suffix != MODEL_SUFFIX:
        raise StorageError(f"{path.name} is not a .keras model file; KD Studio saves and loads .keras files only")
    if not zipfile.is_zipfile(path):  # else Keras answers "File not found", which misleads
        raise StorageError(f"{path.name} is damaged or not a Keras model (a .keras file is a zip archive)")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True,
                                        custom_objects=task.custom_objects() if task is not None else {})
    except Exception as exc:  # zip/h5 errors, truncated files, lambdas, a class from someone else's code (TypeError)
        text = str(exc)
        if "safe_mode" in text or "lambda" in text.lower() or "custom" in text.lower():
            raise StorageError(f"{path.name} needs custom Python code to load, which safe mode refuses "
                               "(only models built from standard Keras layers, or from the layers of the "
                               "task it is loaded for, can be opened)") from exc
        detail = text.splitlines()[0][:120] if isinstance(exc, ValueError) and text.strip() else type(exc).__name__
        raise StorageError(f"{path.name} is not a readable Keras model ({detail})") from exc
    if task is not None:
        try:
            task.check_model(model, path.name)
        except ValueError as exc:
            raise StorageError(str(exc)) from None
    return model


def list_models(kind: str | None = None) -> list[dict]:
    """Saved models (newest first), from their sidecars; temporary files are never listed, stale ones removed."""
    rows = []
    _sweep_temp_files(models_dir())
    for path in models_dir().glob("*" + MODEL_SUFFIX):
        if path.name.startswith("."):
            continue
        meta = read_sidecar(path)
        if kind and meta.get("kind") != kind:
            continue
        rows.append(dict(meta, path=str(path), name=path.stem))
    return sorted(rows, key=lambda m: m.get("created", 0), reverse=True)


# --- run store ----------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, status TEXT NOT NULL, reason TEXT,
    config TEXT, results TEXT, dataset TEXT, device TEXT, model_path TEXT,
    created REAL, started REAL, ended REAL, owner TEXT, pid INTEGER);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, series TEXT NOT NULL,
    epoch INTEGER NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (run_id, series, epoch));
"""


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Run history in one SQLite file; safe for several threads (one connection per call).

    Opening it marks runs left ``running`` by a process that no longer exists
    as ``interrupted``. A file that is not a valid database, or fails SQLite's
    ``quick_check``, is moved aside with its ``-wal`` and ``-shm`` files
    (``runs.db.corrupt-<time>``, ``runs.db.corrupt-<time>-wal``: SQLite still
    opens the pair for a rescue), a fresh store is created, and ``notice`` says so.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else home() / "runs.db"
        self.notice = ""
        self._lock = threading.Lock()
        try:
            self._init()
        except sqlite3.DatabaseError:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            for journal in ("-wal", "-shm"):  # left beside the fresh store, the old WAL would be replayed into it
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}{journal}", f"{aside}{journal}")
            self.notice = f"the run store {self.path.name} was damaged; it was moved to {aside.name} and a new one started"
            self._init()

    def _connect(self) -> sqlite3.Connection:
        """A new connection; in WAL mode ``synchronous = NORMAL`` cannot corrupt the file and skips
        an fsync per commit (about 13 ms -> 0.5 ms per saved epoch here)."""
        conn = sqlite3.connect(self.path, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _init(self) -> None:
        # Closed here, not by the garbage collector: closing after the store was moved aside would delete the
        # fresh store's -wal file, which has the old one's name.
        with contextlib.closing(self._connect()) as conn, conn:
            conn.execute("PRAGMA journal_mode = WAL")
            # A damaged page reads as good until a query touches it: the store would open, then the Runs page
            # fail later. quick_check reads every page once: ~2 ms for 50 runs, ~40-80 ms for 500 runs of 120 epochs.
            problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError(f"quick_check: {problems[0]}")
            conn.executescript(_SCHEMA)
            conn.execute("SELECT count(*) FROM runs").fetchone()
            stale = conn.execute("SELECT id, pid, owner FROM runs WHERE status IN ('running', 'queued')").fetchall()
            for row in stale:
                if row["owner"] != _PROCESS_TOKEN and not (row["pid"] != os.getpid() and _pid_alive(row["pid"])):
                    conn.execute("UPDATE runs SET status='interrupted', reason=?, ended=? WHERE id=?",
                                 ("the app stopped while this run was in progress", time.time(), row["id"]))

    def _write(self, sql: str, args: tuple) -> None:
        with self._lock, self._connect() as conn:
            conn.execute(sql, args)

    def create(self, kind: str, name: str, config: dict, dataset: str = "", status: str = "queued") -> str:
        run_id = uuid.uuid4().hex[:12]
        self._write("INSERT INTO runs (id, kind, name, status, reason, config, results, dataset, created, owner, pid)"
                    " VALUES (?, ?, ?, ?, '', ?, '{}', ?, ?, ?, ?)",
                    (run_id, kind, name, status, json.dumps(config, default=str), dataset, time.time(),
                     _PROCESS_TOKEN, os.getpid()))
        return run_id

    def add_run(self, kind: str, name: str, config: dict, dataset: str = "", *, status: str, reason: str = "",
                results: dict | None = None, started: float | None = None, ended: float | None = None,
                model_path: str = "", epochs: list[tuple[str, dict]] = ()) -> str:
        """A whole ended run, its epochs included, in one transaction: all of it is stored or none."""
        run_id = uuid.uuid4().hex[:12]
        with self._lock, self._connect() as conn:
            conn.execute("INSERT INTO runs (id, kind, name, status, reason, config, results, dataset, model_path,"
                         " created, started, ended, owner, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (run_id, kind, name, status, reason, json.dumps(config, default=str),
                          json.dumps(results or {}, default=str), dataset, model_path, started or time.time(),
                          started, ended, _PROCESS_TOKEN, os.getpid()))
            conn.executemany("INSERT OR REPLACE INTO epochs (run_id, series, epoch, metrics) VALUES (?, ?, ?, ?)",
                             [(run_id, series, int(rec["epoch"]), json.dumps(rec)) for series, rec in epochs])
        return run_id

    def update(self, run_id: str, **fields) -> None:
        allowed = {"status", "reason", "results", "device", "model_path", "started", "ended", "name"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update run field(s) {', '.join(sorted(bad))}")
        if "results" in fields:
            fields["results"] = json.dumps(fields["results"], default=str)
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._write(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run_id))

    def add_epoch(self, run_id: str, series: str, record: dict) -> None:
        self._write("INSERT OR REPLACE INTO epochs (run_id, series, epoch, metrics) VALUES (?, ?, ?, ?)",
                    (run_id, series, int(record["epoch"]), json.dumps(record)))

    @staticmethod
    def _row(row: sqlite3.Row) -> dict:
        d = dict(row)
        d["config"] = json.loads(d["config"] or "{}")
        d["results"] = json.loads(d["results"] or "{}")
        return d

    def runs(self, kind: str | None = None) -> list[dict]:
        with self._connect() as conn:
            sql, args = "SELECT * FROM runs", ()
            if kind:
                sql, args = sql + " WHERE kind = ?", (kind,)
            rows = conn.execute(sql + " ORDER BY created DESC", args).fetchall()
        return [self._row(r) for r in rows]

    def get(self, run_id: str) -> dict | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._row(row) if row else None

    def epochs(self, run_id: str) -> dict[str, list[dict]]:
        """Per-epoch metrics of a run, by series ("teacher", "student", "baseline", ...)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT series, metrics FROM epochs WHERE run_id = ? ORDER BY series, epoch",
                                (run_id,)).fetchall()
        out: dict[str, list[dict]] = {}
        for r in rows:
            out.setdefault(r["series"], []).append(json.loads(r["metrics"]))
        return out

    def delete(self, run_id: str) -> None:
        self._write("DELETE FROM runs WHERE id = ?", (run_id,))


_STORES: dict[Path, RunStore] = {}
_STORES_LOCK = threading.Lock()


def run_store() -> RunStore:
    """The process-wide store for the current data directory."""
    path = home() / "runs.db"
    with _STORES_LOCK:
        if path not in _STORES:
            _STORES[path] = RunStore(path)
        return _STORES[path]
