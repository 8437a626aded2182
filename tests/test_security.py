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

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "kdcore").rglob("*.py")) + sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
# CIFAR-10's batches are pickles: the images task reads them with an unpickler that builds plain arrays only.
PICKLE_READERS = {ROOT / "kdcore" / "tasks" / "images" / "__init__.py"}
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


def test_no_pickle_eval_or_exec_in_the_code():
    for path in SOURCES:
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            bad = [m for m in modules if m.split(".")[0] in UNSAFE_MODULES and path not in PICKLE_READERS]
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

    from kdcore.tasks.digits import pictures as images

    assert Image.MAX_IMAGE_PIXELS == images.MAX_PIXELS <= 4096 * 4096  # Pillow's own default is ~89 megapixels
    assert images.MAX_BYTES <= 10 * 1024 * 1024
