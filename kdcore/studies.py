"""Sweeps as Optuna studies: one database, any number of workers on any number of machines.

A sweep's grid (student width × T × alpha × seed) is an Optuna study with a
:class:`optuna.samplers.GridSampler`. The study lives in a database: by default
an SQLite file under ``$KDSTUDIO_HOME`` (nothing to set up), or a PostgreSQL
server that several machines share (``--storage postgresql://...``). Each
trial distils one student for one cell; its value is the gain on the valid
split over the same student trained from scratch (the baseline of its width and seed, trained once
per study and shared through the study's attributes), and its run record lands
in the run store of the machine that ran it.

Why every cell is queued when the study is created
--------------------------------------------------
Optuna's GridSampler hands a new trial the grid cell of the trial's number
while numbers are below the grid's size, and after that a random cell not yet
finished, so two workers asking at the same time near the end of a grid run
one cell twice (Optuna's docs say so). Here :func:`create_grid_study` queues
one ``WAITING`` trial per cell, carrying the cell's ``grid_id`` exactly as the
GridSampler writes it, and a worker only ever *claims* a waiting trial
(WAITING → RUNNING in one storage transaction, which refuses a trial another
worker took first); it never creates one. The GridSampler still maps
``grid_id`` to parameter values, and still says when the grid is exhausted.
On SQLite the claim is made atomic by starting every transaction with
``BEGIN IMMEDIATE``: Python's sqlite3 otherwise reads outside a transaction,
and two workers could both read "waiting" and both take the trial.

A worker that dies
------------------
While a trial runs, a thread records a heartbeat every ``heartbeat`` seconds.
Any worker that finds a running trial whose heartbeat is older than three
intervals marks it failed (Optuna's ``fail_stale_trials``), and Optuna's
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` queues a copy with the
same ``grid_id``, which the next free worker claims. The first heartbeat is
recorded right after the claim; a worker killed between the two leaves a
running trial with no heartbeat at all, which Optuna never calls stale, so such
a trial older than the grace period is failed and retried the same way. A worker with nothing left
to claim waits while other trials run (one may still die), and leaves when
none is running or waiting. A trial's run record is written in one
transaction after Optuna accepted its value, so a killed worker leaves no
half-written record, and a worker whose trial was failed behind its back (it
stalled past the grace period) has its value refused and keeps only a failed
record: the retry is the one that counts.

A search for the best recipe
----------------------------
``sweep --search N`` makes a study of another kind (``mode: "search"`` in its
spec, with ``N``): Optuna's default sampler (TPE; its seed is the spec's seed
plus the number of trials so far, so one worker's search is reproducible)
picks T on a log scale and alpha within the given [low, high] ranges and a
width among the given ones; the study maximises the gain over the baseline
on the valid split (never test: the search's choice must not see the split
its result is reported on).
Nothing is queued: a worker asks Optuna for a new trial (``study.ask()``,
which first takes a waiting retry, so heartbeat and retry work as above)
while fewer than N trials are finished (complete or pruned) or running, and
leaves once N are finished. Two workers asking for the last slot in the same
instant may run one trial beyond N.

While the student trains, every epoch reports the gain so far (the student's
valid accuracy after that epoch minus the baseline's final valid accuracy) at
step ``epoch - 1``; when the study's pruner (a ``MedianPruner``: the
trial's best gain so far is below the median of the complete trials' at that
step) says the trial is hopeless, training stops at the next batch and the trial is told
``PRUNED``. Its run record is ``stopped``, with a reason that says it was pruned.

When the search's local workers are done, ``sweep --search`` confirms the
chosen recipe (:func:`confirm`): it is trained again on fresh seeds and
reported on test beside valid, since the best of N valid gains is an
optimistic estimate of the recipe's own.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from . import storage, tasks
from .config import DistillConfig, from_dict, to_dict
from .progress import Progress, Tagged

STORAGE_ENV = "KDSTUDIO_STORAGE"  # a URL here keeps a password off the command line (and out of `ps`)
CONNECT_TIMEOUT_S = 5  # an unreachable PostgreSQL server is reported within this, not after TCP's minutes
HEARTBEAT_S = 10  # a dead worker's trial is failed and queued again after 3 intervals
SPEC_KEY = "kdstudio"  # the study's user attribute that holds what a worker needs to run a trial
PARAMS = ("units", "temperature", "alpha", "seed")
SEARCH_SEED = 0  # the TPE sampler's seed before the trial count is added (see the module docstring)
PRUNE_STARTUP = 3  # complete trials before the median pruner prunes any
PRUNE_WARMUP = 1  # a trial's epochs (steps 0..PRUNE_WARMUP-1) never pruned: the first epoch is noisy
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class StudyError(ValueError):
    """A study that cannot be created, found or joined, in one sentence (the CLI prints it and exits 2)."""


# --- storage URLs ------------------------------------------------------------------------------------
def default_storage() -> str:
    """``$KDSTUDIO_STORAGE`` when set, else an SQLite file in the data directory."""
    return os.environ.get(STORAGE_ENV) or f"sqlite:///{storage.home() / 'studies.db'}"


def masked(url: str) -> str:
    """The URL as it may be printed or shown: a password becomes ``***``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL at all: show nothing of it
        return "(an unreadable storage URL)"


def _password(url: str) -> str:
    from sqlalchemy.engine import make_url

    with contextlib.suppress(Exception):
        return make_url(url).password or ""
    return ""


def _reason(exc: BaseException, url: str) -> str:
    """The innermost database error's first line, with the URL's password (if any) blotted out."""
    inner = exc
    while True:
        nxt = getattr(inner, "orig", None) or inner.__cause__
        if nxt is None or nxt is inner:
            break
        inner = nxt
    text = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
    secret = _password(url)
    return text.replace(secret, "***") if secret else text


def _serialise_sqlite(engine) -> None:
    """Start every transaction on this SQLite engine with BEGIN IMMEDIATE (see the module docstring).

    Also WAL with ``synchronous = NORMAL``, as the run store: a trial makes about fifteen small commits
    (parameters, attributes, heartbeat, tell), and an fsync each cost about 13 ms here.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.execute("PRAGMA journal_mode = WAL")
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # the connections Optuna opened while creating its tables get the pragmas too


_OPENED: dict[tuple[str, int], object] = {}
_OPENED_LOCK = threading.Lock()


def open_storage(url: str | None = None, heartbeat: int = HEARTBEAT_S):
    """An Optuna RDB storage for ``url`` (default :func:`default_storage`), with heartbeat and retry.

    Refuses, in one line that never shows a password: a URL that is not a
    database URL, a backend other than SQLite or PostgreSQL, and a database
    that cannot be reached (PostgreSQL: within ``CONNECT_TIMEOUT_S``). One
    storage (one connection pool) per URL and process: the Experiments page
    reads a study every two seconds.
    """
    url = url or default_storage()
    with _OPENED_LOCK:
        if (url, heartbeat) not in _OPENED:
            _OPENED[(url, heartbeat)] = _open(url, heartbeat)
        return _OPENED[(url, heartbeat)]


def _open(url: str, heartbeat: int):
    import optuna
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - sqlalchemy's ArgumentError, or a value that is no string
        raise StudyError("storage must be a database URL such as sqlite:////path/studies.db or "
                         "postgresql://user@host:5432/db (got something else)") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine_kwargs = {"connect_args": {"timeout": 60, "isolation_level": None}}
        folder = Path(parsed.database or "").expanduser().parent
        if parsed.database and not folder.is_dir():
            raise StudyError(f"cannot reach the study storage {masked(url)}: no folder {folder}")
    elif backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, pinned in requirements.txt
        engine_kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    else:
        raise StudyError(f"storage must be sqlite:///... or postgresql://... (got {masked(url)})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            rdb = optuna.storages.RDBStorage(
                parsed.render_as_string(hide_password=False), engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3))
    except Exception as exc:  # noqa: BLE001 - sqlalchemy/psycopg errors of every kind: one line
        raise StudyError(f"cannot reach the study storage {masked(url)}: {_reason(exc, url)}") from None
    if backend == "sqlite":
        _serialise_sqlite(rdb.engine)
    return rdb


def _grid_sampler(space: dict):
    """Optuna's GridSampler for ``space``, minus its end-of-grid ``study.stop()``.

    After the last cell GridSampler stops the study, which raises outside
    ``study.optimize`` (Optuna's docs note it for ask-and-tell), and it counts
    a failed cell as visited, so it would stop while that cell's retry still
    waits. Here the queue says when the study is done (:func:`run_worker`).
    """
    import optuna

    class QueuedGridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values) -> None:
            pass

    return QueuedGridSampler(space)


def study_names(rdb) -> list[str]:
    return sorted(s.study_name for s in rdb.get_all_studies())


def list_studies(url: str | None = None) -> list[str]:
    """The names of the studies in a database (default :func:`default_storage`), newest name last."""
    return study_names(open_storage(url))


def check_study(rdb, name: str, url: str | None) -> None:
    """Refuse, naming the studies there, a study name the database does not hold."""
    if name not in study_names(rdb):
        known = ", ".join(study_names(rdb)) or "none"
        raise StudyError(f"no study named {name!r} in {masked(url or default_storage())} (studies there: {known})")


def _load(rdb, name: str, url: str):
    import optuna

    check_study(rdb, name, url)
    study = optuna.load_study(study_name=name, storage=rdb)
    spec = study.user_attrs.get(SPEC_KEY)
    if not spec:
        raise StudyError(f"study {name!r} was not created by KD Studio's sweep, so a worker cannot run it")
    if is_search(spec):
        study.sampler = _search_sampler(study, spec)
        study.pruner = optuna.pruners.MedianPruner(**spec["search"]["pruner"])
    else:
        study.sampler = _grid_sampler(spec["space"])
    return study, spec


def is_search(spec: dict) -> bool:
    """A study made by ``sweep --search`` (a spec without a mode is a grid: studies made before the search)."""
    return spec.get("mode", "grid") == "search"


def _search_sampler(study, spec: dict):
    """Optuna's default sampler (TPE), seeded by the spec's seed plus the trials so far (see the module docstring)."""
    import optuna

    return optuna.samplers.TPESampler(seed=spec["search"]["seed"] + len(study.get_trials(deepcopy=False)))


# --- the teacher, by content -------------------------------------------------------------------------
def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_teacher(teacher: dict, given: str | None = None) -> Path:
    """The study's teacher file on this machine, found by its SHA-256 (its name may differ).

    ``given`` (``worker --teacher FILE``) is checked against the hash; else the
    models folder is searched, the study's own file name first.
    """
    want = teacher["sha256"]
    if given:
        if not Path(given).is_file():
            raise StudyError(f"no teacher file at {given}")
        if file_sha256(given) != want:
            raise StudyError(f"{given} is not this study's teacher (its SHA-256 differs from {want[:12]}…)")
        return Path(given)
    folder = storage.models_dir()
    candidates = [folder / teacher["file"]] + sorted(folder.glob("*" + storage.MODEL_SUFFIX))
    for path in candidates:
        if path.is_file() and not path.name.startswith(".") and file_sha256(path) == want:
            return path
    raise StudyError(f"this machine has no copy of the study's teacher {teacher['file']} (SHA-256 {want[:12]}…) "
                     f"in {folder}: copy it there from the machine that created the study, or pass --teacher FILE")


# --- creating a grid study -----------------------------------------------------------------------------
def search_space(widths, temperatures, alphas, seeds) -> dict:
    """The grid as Optuna's GridSampler stores it: parameter names sorted, values as given."""
    space = {"units": [int(w) for w in widths], "temperature": [float(t) for t in temperatures],
             "alpha": [float(a) for a in alphas], "seed": [int(s) for s in seeds]}
    return dict(sorted(space.items()))


def create_grid_study(name: str, url: str | None, preset, temperatures, alphas, seeds=1, widths=None,
                      epochs: int | None = None, dataset: str | None = None, teacher: str | None = None,
                      progress: Progress | None = None) -> dict:
    """Create the study, queue one trial per grid cell, and say where it lives.

    The teacher is ``teacher`` (a saved .keras file) or the preset's recipe,
    trained once and cached in the models folder (:func:`kdcore.experiments.cached_teacher`).
    Everything is refused before the teacher is trained or the study written:
    an empty grid, a bad cell, an unreachable storage, a name already taken.
    """
    import optuna

    from . import experiments

    new = _NewStudy(name, url, preset, seeds, widths, epochs, dataset)
    cells = experiments.grid(new.task, new.cfg, len(new.ds.y_train), temperatures, alphas, new.widths)
    space = search_space(new.widths, temperatures, alphas, new.seeds)
    study = new.create(teacher, progress, {"mode": "grid", "space": space}, _grid_sampler(space))
    n_cells = len(cells) * len(new.seeds)
    for grid_id in range(n_cells):  # one queued trial per cell: see the module docstring
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING,
                                                  system_attrs={"grid_id": grid_id, "search_space": space}))
    return {"study": name, "storage": masked(new.url), "trials": n_cells, "teacher": str(new.teacher_path)}


def search_ranges(temperatures, alphas) -> tuple[list[float], list[float]]:
    """``[low, high]`` of T and of alpha for a search, each refused in one line; one value is a range of one."""
    ranges = []
    for what, values in (("temperature", temperatures), ("alpha", alphas)):
        values = [float(v) for v in values]
        if len(values) not in (1, 2):
            raise StudyError(f"a search takes the {what} as a range LOW,HIGH such as "
                             f"{'1,8' if what == 'temperature' else '0.1,0.9'} (got {values})")
        low, high = values[0], values[-1]
        if low > high:
            raise StudyError(f"the {what} range's low {low:g} is above its high {high:g}: give it as LOW,HIGH")
        ranges.append([low, high])
    if ranges[0][0] <= 0:
        raise StudyError(f"temperature must be > 0 (got {ranges[0][0]:g}); a search draws it on a log scale")
    return ranges[0], ranges[1]


def create_search_study(name: str, url: str | None, preset, temperatures, alphas, trials: int, seeds=1,
                        widths=None, epochs: int | None = None, dataset: str | None = None,
                        teacher: str | None = None, progress: Progress | None = None,
                        prune_startup: int = PRUNE_STARTUP, prune_warmup: int = PRUNE_WARMUP) -> dict:
    """Create a search for the recipe with the best gain: ``trials`` trials, none queued (see the module docstring).

    ``temperatures`` and ``alphas`` are ``[low, high]`` ranges (T drawn on a
    log scale), ``widths`` and seeds the choices. The pruner is a
    ``MedianPruner(n_startup_trials=prune_startup, n_warmup_steps=prune_warmup)``.
    Refused as :func:`create_grid_study`'s grid, plus fewer than one trial,
    a range whose low is above its high and a T at or below 0.
    """
    from . import experiments

    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise StudyError(f"a search needs at least 1 trial (got {trials!r})")
    for what, value in (("prune_startup", prune_startup), ("prune_warmup", prune_warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise StudyError(f"{what} must be a whole number >= 0 (got {value!r})")
    t_range, a_range = search_ranges(temperatures, alphas)
    new = _NewStudy(name, url, preset, seeds, widths, epochs, dataset)
    experiments.grid(new.task, new.cfg, len(new.ds.y_train), t_range, a_range, new.widths)  # every corner runs
    space = search_space(new.widths, t_range, a_range, new.seeds)
    search = {"trials": trials, "seed": SEARCH_SEED,
              "pruner": {"n_startup_trials": prune_startup, "n_warmup_steps": prune_warmup}}
    new.create(teacher, progress, {"mode": "search", "space": space, "search": search}, None)
    return {"study": name, "storage": masked(new.url), "mode": "search", "trials": trials,
            "teacher": str(new.teacher_path)}


class _NewStudy:
    """What creating a grid or a search shares: the preset's run, checked, then the teacher and the study."""

    def __init__(self, name, url, preset, seeds, widths, epochs, dataset):
        from . import experiments

        if not name or not str(name).strip():
            raise StudyError("study must be a name such as sweep-1 (got an empty one)")
        self.name, self.seeds = name, experiments.seed_list(seeds)
        overrides = {} if epochs is None else {"epochs": epochs}
        self.preset_name, spec = experiments.resolve(preset)
        self.task = tasks.get(spec.get("task"))
        self.source = dataset or spec["dataset"]
        ds = self.task.load(self.source)
        _, spec, self.teacher_cfg, self.cfg, self.ds, self.teacher_ds = experiments.setup(preset, ds, overrides)
        self.widths = list(widths) if widths else [experiments.width(self.task, self.cfg)]
        self.url = url or default_storage()

    def create(self, teacher: str | None, progress, mode: dict, sampler):
        """Check the name is free, get the teacher, then write the study and its spec (``mode`` joins the spec)."""
        import optuna

        from . import experiments, training

        rdb = open_storage(self.url)
        if self.name in study_names(rdb):
            raise StudyError(f"a study named {self.name!r} already exists in {masked(self.url)}: join it with "
                             f"`python -m kdcore worker --study {self.name}`, or pick another name")
        if teacher:
            model = storage.load_model(teacher, self.task)  # refuses a file that is no model of this task
            self.teacher_path, teacher_acc = Path(teacher), self.task.score(model, self.ds)
        else:
            made = experiments.teacher_for(self.teacher_cfg, self.teacher_ds, self.ds, progress, self.task)
            if made["status"] != "finished":
                raise StudyError(f"the teacher did not finish: {made['reason']}")
            self.teacher_path, teacher_acc = Path(made["path"]), made["accuracy"]
        study_spec = {"task": self.task.name, "preset": self.preset_name, "dataset": str(self.source),
                      "data_fingerprint": training.dataset_fingerprint(self.ds), "distill": to_dict(self.cfg),
                      **mode, "teacher": {"file": self.teacher_path.name, "sha256": file_sha256(self.teacher_path),
                                          "accuracy": teacher_acc}}
        direction = "maximize" if self.task.metric.higher_is_better else "minimize"  # a value is student − baseline
        study = optuna.create_study(study_name=self.name, storage=rdb, sampler=sampler, direction=direction)
        study.set_user_attr(SPEC_KEY, study_spec)
        return study


# --- a worker ------------------------------------------------------------------------------------------
class _Heartbeat:
    """Records the trial's heartbeat now and every ``interval`` seconds until the trial ends."""

    def __init__(self, rdb, trial_id: int, interval: int):
        self._rdb, self._id, self._interval = rdb, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="kdcore-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # a missed beat: the grace period covers a few
                self._rdb.record_heartbeat(self._id)

    def start(self) -> None:
        self._rdb.record_heartbeat(self._id)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def _study_time(timing: dict):
    """Adds the time spent inside the block to ``timing["study"]``: the study machinery's share of a trial."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timing["study"] = timing.get("study", 0.0) + time.perf_counter() - t0


def _fail_stale(rdb, study, study_id: int) -> None:
    """Fail (and queue a retry of) every trial whose worker died: a stale heartbeat, or none past the grace period."""
    import optuna
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
        retry = rdb.get_heartbeat_stale_trial_callback()
    for trial_id in _never_beaten(rdb, study_id):
        try:
            failed = rdb.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first
        if failed and retry is not None:
            retry(study, rdb.get_trial(trial_id))


def _never_beaten(rdb, study_id: int) -> list[int]:
    """Running trials claimed longer than the grace period ago that never recorded a heartbeat.

    Optuna's stale check skips a trial without a heartbeat row; a worker
    killed between its claim and its first heartbeat leaves exactly that.
    Read from Optuna's own tables (``trials``, ``trial_heartbeats``).
    """
    import datetime

    from sqlalchemy import text

    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=rdb.grace_period)  # Optuna stores local time
    query = text("SELECT t.trial_id FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
                 "WHERE t.study_id = :study AND t.state = 'RUNNING' AND h.trial_id IS NULL "
                 "AND t.datetime_start < :cutoff")
    with rdb.engine.connect() as conn:
        return [row[0] for row in conn.execute(query, {"study": study_id, "cutoff": cutoff})]


def _claim(rdb, study) -> int | None:
    """Take one waiting trial (WAITING → RUNNING, refused if another worker took it first), or None.

    The waiting trials are listed through the study, whose storage cache must
    know a trial before its parameters can be set; the claim goes to the database.
    """
    import optuna
    from optuna.trial import TrialState

    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if rdb.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                return frozen._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _unfinished(rdb, study_id: int) -> int:
    from optuna.trial import TrialState

    return len(rdb.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)))


@dataclasses.dataclass
class _Context:
    """What every trial of a study needs, loaded once per worker."""

    study: object
    spec: dict
    task: object
    ds: object
    cfg: DistillConfig
    teacher: object
    teacher_path: Path
    teacher_accuracy: float
    logits: object


def _prepare(study, spec: dict, teacher: str | None, progress: Progress) -> _Context:
    from . import training

    task = tasks.get(spec["task"])
    teacher_path = find_teacher(spec["teacher"], teacher)
    ds = task.load(spec["dataset"])
    if training.dataset_fingerprint(ds) != spec["data_fingerprint"]:
        raise StudyError(f"the dataset {spec['dataset']} on this machine differs from the one the study was "
                         "created with; copy that file here")
    cfg = from_dict(task.distill_class(), spec["distill"], task).validate(len(ds.y_train))
    model = storage.load_model(teacher_path, task)
    progress.phase("teacher logits")
    accuracy = task.score(model, ds)
    return _Context(study, spec, task, ds, cfg, model, teacher_path, accuracy,
                    training.teacher_logits(model, ds))


def _baseline(ctx: _Context, cfg, key: str, progress, timing: dict) -> tuple[float, float, list, bool]:
    """(test, valid) from-scratch scores for this width and seed: from the study if a worker trained it, else here.

    The study keeps them as user attributes ``key`` (test) and ``key valid``.
    """
    with _study_time(timing):
        shared = ctx.study.user_attrs.get(key), ctx.study.user_attrs.get(f"{key} valid")
    if None not in shared:
        return *shared, [], False

    base = ctx.task.train_baseline(cfg, ctx.ds, Tagged(progress, key))
    if base.status != "finished":
        raise RuntimeError(f"the baseline {base.status}: {base.reason}")
    with _study_time(timing):
        # another worker may have finished the same one meanwhile: theirs wins
        shared = ctx.study.user_attrs.get(key), ctx.study.user_attrs.get(f"{key} valid")
        if None in shared:
            ctx.study.set_user_attr(key, base.score)
            ctx.study.set_user_attr(f"{key} valid", base.valid_score)
            shared = base.score, base.valid_score
    return *shared, base.history, True


class _Pruning:
    """The student's Progress, seen by the study: each epoch reports the gain so far, and a pruned trial stops.

    The value at step ``epoch - 1`` is the student's valid accuracy after that
    epoch minus the baseline's final valid accuracy (never test: pruning is a choice). When the pruner says
    prune, ``stop_requested`` turns true, so the training loop stops at the
    next batch (as for a user's stop) and the cut-short epoch is not kept;
    after the last epoch there is nothing left to stop, and the trial is
    pruned all the same, as in Optuna's own examples.
    """

    def __init__(self, progress, trial, baseline: float, timing: dict):
        self._progress, self._trial, self._baseline, self._timing = progress, trial, baseline, timing
        self.pruned_at: int | None = None  # the epoch after which the pruner said prune
        self.value: float | None = None

    def __getattr__(self, name):
        return getattr(self._progress, name)

    @property
    def stop_requested(self) -> bool:
        return self.pruned_at is not None or self._progress.stop_requested

    def epoch(self, series: str, record: dict) -> None:
        self._progress.epoch(series, record)
        if series != "student" or record.get("valid_accuracy") is None or self.pruned_at is not None:
            return  # a FitNets hint stage, or a task whose epochs carry no valid accuracy: nothing to judge by
        self.value = record["valid_accuracy"] - self._baseline
        with _study_time(self._timing):
            self._trial.report(self.value, record["epoch"] - 1)
            if self._trial.should_prune():
                self.pruned_at = record["epoch"]


def _suggest(trial, spec: dict) -> dict:
    """The trial's parameters: the grid's cell, or a search's draw (T on a log scale; see the module docstring)."""
    space = spec["space"]
    if not is_search(spec):
        return {name: trial.suggest_categorical(name, space[name]) for name in PARAMS}
    return {"units": trial.suggest_categorical("units", space["units"]),
            "temperature": trial.suggest_float("temperature", *space["temperature"], log=True),
            "alpha": trial.suggest_float("alpha", *space["alpha"]),
            "seed": trial.suggest_categorical("seed", space["seed"])}


def _trial(ctx: _Context, trial, progress: Progress, timing: dict) -> dict:
    """Distil one trial's student, tell Optuna the gain (or that it was pruned), and return the run record's results."""
    from optuna.trial import TrialState

    from .experiments import cell_config

    with _study_time(timing):
        p = _suggest(trial, ctx.spec)
    cfg = cell_config(ctx.task, ctx.cfg, p["units"], p["temperature"], p["alpha"], p["seed"])
    tag = f"w{p['units']} T{p['temperature']:g} a{p['alpha']:g} s{p['seed']}"
    baseline, valid_baseline, base_history, trained = _baseline(ctx, cfg, f"baseline w{p['units']} s{p['seed']}",
                                                                progress, timing)
    watch = _Pruning(Tagged(progress, tag), trial, valid_baseline, timing) if is_search(ctx.spec) else None
    student = ctx.task.distill_student(cfg, ctx.teacher, ctx.ds, watch or Tagged(progress, tag), logits=ctx.logits)
    results = {"study": trial.study.study_name, "trial": trial.number, **p, "worker": WORKER_ID,
               "teacher_model": str(ctx.teacher_path), "teacher_accuracy": ctx.teacher_accuracy,
               "student_accuracy": student.score, "baseline_accuracy": baseline,
               "student_valid_accuracy": student.valid_score, "baseline_valid_accuracy": valid_baseline,
               "history": {"student": student.history, **({"baseline": base_history} if trained else {})},
               "status": str(student.status), "reason": student.reason, "seconds": round(student.seconds, 2)}
    pruned = watch is not None and watch.pruned_at is not None
    if pruned and student.status in ("finished", "stopped"):
        results.update(status="stopped", pruned=True, reason=f"pruned by the study after epoch {watch.pruned_at} of "
                                                             f"{cfg.epochs}: gain so far {watch.value:+.4f}")
        state, value = TrialState.PRUNED, None
    elif student.status != "finished":
        with _study_time(timing):
            trial.set_user_attr("reason", student.reason)
            ctx.study.tell(trial, state=TrialState.FAIL)
        return results
    else:
        state, value = TrialState.COMPLETE, student.valid_score - valid_baseline  # the objective reads valid only
    with _study_time(timing):
        for key, attr in (("student", student.score), ("baseline", baseline), ("student_valid", student.valid_score),
                          ("baseline_valid", valid_baseline), ("teacher", ctx.teacher_accuracy),
                          ("seconds", round(student.seconds, 2))):
            trial.set_user_attr(key, attr)
        try:
            ctx.study.tell(trial, value) if state == TrialState.COMPLETE else ctx.study.tell(trial, state=state)
        except ValueError:  # the trial was failed (stale heartbeat) while it ran: its retry counts instead
            results.update(status="failed", pruned=False,
                           reason=f"trial {trial.number} was marked failed by the heartbeat "
                                  "check while it ran (this worker stalled); its retry counts instead")
        else:
            if value is not None:
                results.update(gain=student.score - baseline, valid_gain=value)
    return results


def _counts(rdb, study_id: int) -> dict:
    """The study's trials by state, lower-cased (``complete``, ``pruned``, ``running``, ``waiting``, ``fail``)."""
    counts: dict = {}
    for t in rdb.get_all_trials(study_id, deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


_DONE = object()  # what _ask returns when a search's budget is finished


def _ask(rdb, study, spec: dict, study_id: int):
    """A search's next trial id: a waiting retry or a new one from the sampler; None to wait, ``_DONE`` when done.

    Done once ``trials`` are finished (complete or pruned); wait while the
    running ones would finish the budget (one may die and come back as a retry).
    """
    import optuna

    counts = _counts(rdb, study_id)
    finished = counts.get("complete", 0) + counts.get("pruned", 0)
    budget = spec["search"]["trials"]
    if finished >= budget:
        return _DONE
    if not counts.get("waiting") and finished + counts.get("running", 0) >= budget:
        return None
    study.sampler = _search_sampler(study, spec)
    with warnings.catch_warnings():  # "heartbeat is supposed to be used with Study.optimize": here we beat ourselves
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()._trial_id


def best_of(study) -> dict | None:
    """The complete trial with the highest valid gain: ``{"trial", "value", "params"}``, or None before any."""
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    return {"trial": best.number, "value": best.value, "params": dict(best.params)}


def best_text(best: dict) -> str:
    """A best trial in words: ``trial 3, valid gain +0.0123 (alpha 0.52, seed 0, temperature 2.4, units 16)``."""
    params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in sorted(best["params"].items()))
    return f"trial {best['trial']}, valid gain {best['value']:+.4f} ({params})"


def run_worker(name: str, url: str | None = None, trials: int | None = None, teacher: str | None = None,
               progress: Progress | None = None, heartbeat: int = HEARTBEAT_S, pruner=None) -> dict:
    """Join study ``name`` and run its trials until none is left (or ``trials`` are done).

    A grid's worker claims queued trials; a search's asks Optuna for new ones
    until the study holds its N finished trials (see the module docstring).
    Returns ``{"study", "storage", "worker", "completed", "failed", "seconds", "overhead_s"}``,
    and for a search also ``pruned`` and the study's ``best`` so far:
    ``completed`` counts the trials whose gain Optuna accepted from this
    worker (``trials`` counts completed and pruned ones); ``overhead_s`` is
    the mean time per trial spent in the study machinery (stale check,
    claim, parameters, attributes, first heartbeat, reports, tell: every
    storage call in the trial's path), not in training. ``pruner``, an
    Optuna pruner, replaces the study's (in-process callers and tests).
    """
    import optuna
    from optuna.trial import TrialState

    from .jobs import recorded

    url = url or default_storage()
    progress = progress or Progress(name)
    rdb = open_storage(url, heartbeat)
    study, spec = _load(rdb, name, url)
    search = is_search(spec)
    if pruner is not None:
        study.pruner = pruner
    study_id = rdb.get_study_id_from_name(name)
    ctx = _prepare(study, spec, teacher, progress)
    t_start, completed, pruned, failed, overheads = time.perf_counter(), 0, 0, 0, []
    while trials is None or completed + pruned < trials:
        timing: dict = {}
        with _study_time(timing):
            _fail_stale(rdb, study, study_id)
            trial_id = _ask(rdb, study, spec, study_id) if search else _claim(rdb, study)
            if trial_id is not None and trial_id is not _DONE:
                heart = _Heartbeat(rdb, trial_id, heartbeat)
                heart.start()  # first, so that from here on a death of this worker shows as a stale heartbeat
                rdb.set_trial_user_attr(trial_id, "worker", WORKER_ID)
                trial = optuna.trial.Trial(study, trial_id)
        if trial_id is _DONE or (trial_id is None and not search and not _unfinished(rdb, study_id)):
            break  # every trial ended (a search: its budget is finished): the study is done
        if trial_id is None:
            time.sleep(min(heartbeat, 2))  # others still run one; it may die and come back as a retry
            continue
        title = f"Sweep trial {trial.number} of study {name}"
        config = {"study": name, "storage": masked(url), "trial": trial.number}
        try:
            result = recorded("trial", title, config, spec["dataset"],
                              lambda p: _trial(ctx, trial, p, timing), progress, at_end=True)
        except BaseException:
            with contextlib.suppress(Exception):
                study.tell(trial, state=TrialState.FAIL)
            raise
        finally:
            heart.stop()
        overheads.append(timing["study"])
        if result.get("gain") is not None:
            completed += 1
        elif result.get("pruned"):
            pruned += 1
        else:
            failed += 1
    answer = {"study": name, "storage": masked(url), "worker": WORKER_ID, "completed": completed, "failed": failed,
              "seconds": round(time.perf_counter() - t_start, 2),
              "overhead_s": round(sum(overheads) / len(overheads), 4) if overheads else None}
    if search:
        answer.update(pruned=pruned, best=best_of(study))
    return answer


def run_local_workers(name: str, url: str | None, count: int, task: str | tasks.Task = tasks.DEFAULT,
                      heartbeat: int = HEARTBEAT_S, teacher: str | None = None) -> dict:
    """Start ``count`` ``worker`` processes on this machine and wait for them.

    The storage URL travels in ``$KDSTUDIO_STORAGE``, not on their command
    line; ``teacher`` is the study's teacher file here, wherever it is.
    """
    import json

    env = dict(os.environ, **{STORAGE_ENV: url or default_storage()})
    argv = ([sys.executable, "-m", "kdcore", "worker", "--study", name, "--heartbeat", str(heartbeat), "--json"]
            + (["--task", tasks.get(task).name] if task else []) + (["--teacher", str(teacher)] if teacher else []))
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    outs = [proc.communicate()[0] for proc in procs]
    seconds = time.perf_counter() - t0
    answers = []
    for proc, out in zip(procs, outs):
        if proc.returncode != 0:
            raise StudyError(f"a local worker exited with code {proc.returncode} (its error is above)")
        answers.append(json.loads(out))
    total = {"completed": sum(a["completed"] for a in answers), "workers": answers, "seconds": round(seconds, 2)}
    if any("pruned" in a for a in answers):  # a search: its pruned trials, and the best recipe the study found
        total.update(pruned=sum(a.get("pruned", 0) for a in answers), best=study_best(name, url))
    return total


def study_best(name: str, url: str | None = None) -> dict | None:
    """The best complete trial of study ``name`` (see :func:`best_of`)."""
    url = url or default_storage()
    study, _ = _load(open_storage(url), name, url)
    return best_of(study)


CONFIRM_SEEDS = 3  # fresh seeds the chosen recipe is trained again on, after a search
CONFIRMATION_KEY = "confirmation"  # the study attribute that keeps the last confirmation


def confirm(name: str, url: str | None = None, teacher: str | None = None, seeds: int = CONFIRM_SEEDS,
            progress: Progress | None = None) -> dict | None:
    """Train the search's chosen recipe again on ``seeds`` fresh seeds and report it on test beside valid.

    The search picked its best trial by the valid gain, and the highest of N
    noisy valid gains is flattered by the luck that made it the highest. So
    the recipe (width, T, alpha) is trained again, student and baseline, on
    seeds the search never used, and scored on valid and, once per model, on
    test: ``{"seeds", "params", "search_valid", "valid", "test"}``, the last
    two ``{"mean", "std", "values"}`` of the gain. None before any complete trial.
    """
    from .experiments import cell_config, spread

    url = url or default_storage()
    progress = progress or Progress(name)
    study, spec = _load(open_storage(url), name, url)
    best = best_of(study)
    if best is None:
        return None
    ctx = _prepare(study, spec, teacher, progress)
    p = best["params"]
    first = max(spec["space"]["seed"]) + 1
    fresh = list(range(first, first + seeds))
    gains: dict = {"valid": [], "test": []}
    for seed in fresh:
        cfg = cell_config(ctx.task, ctx.cfg, p["units"], p["temperature"], p["alpha"], seed)
        tagged = Tagged(progress, f"confirm s{seed}")
        student = ctx.task.distill_student(cfg, ctx.teacher, ctx.ds, tagged, logits=ctx.logits)
        base = ctx.task.train_baseline(cfg, ctx.ds, tagged)
        for run in (student, base):
            if run.status != "finished":
                raise RuntimeError(f"the confirmation run on seed {seed} {run.status}: {run.reason}")
        gains["valid"].append(student.valid_score - base.valid_score)
        gains["test"].append(student.score - base.score)
    result = {"seeds": fresh, "params": dict(p), "search_valid": best["value"],
              "valid": spread(gains["valid"]), "test": spread(gains["test"])}
    study.set_user_attr(CONFIRMATION_KEY, result)  # for the Experiments page, which reads the study
    return result


def confirmation_text(confirmation: dict) -> str:
    """A confirmation in words: ``confirmed on seeds 1-3: valid gain +0.0112 ± 0.0040, test gain +0.0087 ± ...``."""
    seeds = confirmation["seeds"]
    v, t = confirmation["valid"], confirmation["test"]
    return (f"confirmed on fresh seeds {seeds[0]}-{seeds[-1]}: valid gain {v['mean']:+.4f} ± {v['std']:.4f}, "
            f"test gain {t['mean']:+.4f} ± {t['std']:.4f} (the search's best valid gain was "
            f"{confirmation['search_valid']:+.4f})")


# --- what the Experiments page shows -------------------------------------------------------------------
def study_view(name: str, url: str | None = None) -> dict:
    """A study's trials as rows, counts by state, the workers seen, and the finished cells (averaged over seeds).

    For a search, ``cells`` is empty (its T and alpha are drawn, not a grid),
    ``best`` is its best trial and ``done`` means its N trials are finished.

    Read straight from the database on every call, so a page polling it sees
    trials that any machine runs.
    """
    import pandas as pd

    url = url or default_storage()
    rdb = open_storage(url)
    study, spec = _load(rdb, name, url)
    rows = []
    for t in study.get_trials(deepcopy=False):
        params = t.params or {}
        row = {"trial": t.number, "state": t.state.name.lower(), **{k: params.get(k) for k in PARAMS},
               "valid_gain": t.value, "student": t.user_attrs.get("student"), "baseline": t.user_attrs.get("baseline"),
               "valid_student": t.user_attrs.get("student_valid"), "valid_baseline": t.user_attrs.get("baseline_valid"),
               "worker": t.user_attrs.get("worker", ""),
               "retry of": t.system_attrs.get("failed_trial"),
               "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
               if t.datetime_complete and t.datetime_start else None}
        rows.append(row)
    states = {s: sum(r["state"] == s for r in rows) for s in ("waiting", "running", "complete", "pruned", "fail")}
    search = is_search(spec)
    done = [r for r in rows if r["state"] == "complete"] if not search else []
    cells = (pd.DataFrame(done).groupby(["units", "temperature", "alpha"], as_index=False)
             [["student", "baseline", "valid_student", "valid_baseline", "valid_gain"]].mean().to_dict("records")
             if done else [])
    for cell in cells:
        cell["teacher"] = spec["teacher"].get("accuracy")
        cell["gain"] = cell["student"] - cell["baseline"] if None not in (cell["student"], cell["baseline"]) else None
    workers = sorted({r["worker"] for r in rows if r["worker"]})
    active = sorted({r["worker"] for r in rows if r["worker"] and r["state"] == "running"})
    idle = states["waiting"] == 0 and states["running"] == 0
    return {"study": name, "storage": masked(url), "spec": spec, "trials": rows, "states": states,
            "workers_seen": workers, "workers_active": active, "cells": cells,
            "mode": "search" if search else "grid", "best": best_of(study) if search else None,
            "confirmation": study.user_attrs.get(CONFIRMATION_KEY),
            "done": idle and (not search or states["complete"] + states["pruned"] >= spec["search"]["trials"])}
