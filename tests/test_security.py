"""Security defaults: what a stranger on the network, or a file from a stranger, can reach.

These read the shipped configuration and the source itself (with ``ast``, so a
word in a docstring does not count), and fail when a default is loosened.
"""
from __future__ import annotations

import ast
import functools
import gc
import tomllib
from pathlib import Path

from kdcore import tasks

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for folder in ("kdcore", "pages") for p in (ROOT / folder).rglob("*.py")) + [ROOT / "app.py"]
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "marshal", "shelve"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__", "yaml.load", "yaml.unsafe_load",
                "keras.config.enable_unsafe_deserialization"}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    found = [k.value for k in call.keywords if k.arg == name]
    return found[0].value if found and isinstance(found[0], ast.Constant) else None


@functools.cache
def _parse(path: Path) -> ast.Module:
    """Parse once no training thread runs: on Python 3.11, ``ast.parse`` beside TensorFlow's autograph
    (which parses too, in the job thread) can raise "AST constructor recursion depth mismatch".

    The garbage collector is paused meanwhile: after other tests have built Keras models, every
    collection the many new AST nodes trigger walks that whole heap (seconds per file).
    """
    from kdcore.jobs import runner

    for job in runner().active():
        job.wait(180)
    gc.disable()
    try:
        return ast.parse(path.read_text(), str(path))
    finally:
        gc.enable()


def _only_a_restricted_unpickler(tree: ast.Module) -> bool:
    """Whether a module's ``pickle`` is only an ``Unpickler`` subclass that answers ``find_class`` itself.

    ``pickle.load`` calls any function a file names; an unpickler whose
    ``find_class`` answers from an allow-list calls only those (CIFAR-10's
    batches are read so). Such a module may name ``pickle.Unpickler`` as a
    base class and ``pickle.UnpicklingError``, and nothing else of pickle.
    """
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and _dotted(n.value) == "pickle"}
    subclasses = [c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                  and any(_dotted(base) == "pickle.Unpickler" for base in c.bases)]
    built_bare = any(isinstance(n, ast.Call) and _dotted(n.func) == "pickle.Unpickler" for n in ast.walk(tree))
    return (used <= {"Unpickler", "UnpicklingError"} and bool(subclasses) and not built_bare
            and all(any(isinstance(f, ast.FunctionDef) and f.name == "find_class" for f in c.body) for c in subclasses))


def _calls() -> list[tuple[str, ast.Call]]:
    out = []
    for path in SOURCES:
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Call):
                out.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return out


def test_streamlit_listens_locally_with_small_uploads_and_xsrf_protection():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["address"] == "127.0.0.1"  # not reachable from the network unless the user says so
    assert 1 <= server["maxUploadSize"] <= 10  # megabytes: a digit picture needs far less
    assert server["enableXsrfProtection"] is True and server.get("enableCORS", True) is True
    assert config["client"]["showErrorDetails"] == "none"  # no tracebacks in the browser
    assert config["browser"]["gatherUsageStats"] is False


def test_the_scan_reads_every_task_package_and_screen():
    scanned = {path.relative_to(ROOT).as_posix() for path in SOURCES}
    assert {"kdcore/tasks/__init__.py", "kdcore/tasks/base.py", "pages/home.py", "app.py"} <= scanned
    for name in tasks.BUILTIN:
        assert any(s.startswith(f"kdcore/tasks/{name}/") for s in scanned), f"kdcore/tasks/{name}/ is not scanned"


def test_a_pickle_is_allowed_only_behind_an_unpickler_with_its_own_find_class():
    allowlisted = ("import pickle\nclass Safe(pickle.Unpickler):\n"
                   "    def find_class(self, module, name):\n        raise pickle.UnpicklingError(name)\n")
    assert _only_a_restricted_unpickler(ast.parse(allowlisted))
    assert not _only_a_restricted_unpickler(ast.parse(allowlisted + "pickle.loads(b'')\n"))
    assert not _only_a_restricted_unpickler(ast.parse(allowlisted + "pickle.Unpickler(f).load()\n"))
    assert not _only_a_restricted_unpickler(ast.parse("import pickle\nclass Open(pickle.Unpickler):\n    pass\n"))


def test_no_pickle_eval_or_exec_in_the_code():
    for path in SOURCES:
        tree = _parse(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
                if modules == ["pickle"] and _only_a_restricted_unpickler(tree):
                    continue  # an allow-listed unpickler (CIFAR-10's batches): see _only_a_restricted_unpickler
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            bad = [m for m in modules if m.split(".")[0] in UNSAFE_MODULES]
            assert not bad, f"{path.relative_to(ROOT)}:{node.lineno} imports {bad}"
    bad_calls = [where for where, call in _calls() if _dotted(call.func) in UNSAFE_CALLS]
    assert not bad_calls


def test_arrays_load_without_pickles_and_models_in_keras_safe_mode():
    calls = _calls()
    np_loads = [(w, c) for w, c in calls if _dotted(c.func) in ("np.load", "numpy.load")]
    keras_loads = [(w, c) for w, c in calls if _dotted(c.func).startswith(("keras.", "tf.keras."))
                   and _dotted(c.func).endswith("load_model")]
    assert np_loads and keras_loads  # the loaders exist, so the checks below check something
    assert [w for w, c in np_loads if _keyword(c, "allow_pickle") is not False] == []
    assert [w for w, c in keras_loads if _keyword(c, "safe_mode") is not True] == []


def test_pillow_refuses_decompression_bombs_with_an_explicit_limit():
    from PIL import Image

    from kdcore import pictures as images

    assert Image.MAX_IMAGE_PIXELS == images.MAX_PIXELS <= 4096 * 4096  # Pillow's own default is ~89 megapixels
    assert images.MAX_BYTES <= 10 * 1024 * 1024
