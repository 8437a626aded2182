"""Layers: imports flow one way (pages → kdcore; inside kdcore: base → engine → tasks → orchestration).

Every ``.py`` under ``kdcore/`` is parsed with ``ast``; every import counts,
inside functions too (moving an import into a function delays it, it does not
remove the dependency), and relative imports are resolved. Nothing is
imported to find out (only the name rule asks the built-in tasks for their
datasets' names), so these run in a second without TensorFlow.

- the **base layer** (settings table, results, progress, the dataset type,
  the metric, the verdict's statistics, the safe picture reader) imports
  nothing of kdcore above it, so any module may use it;
- the **engine** (configs, losses, training, inference, storage) is handed
  what it needs from a task (a student config, layer names, custom objects)
  and never asks the task registry;
- only ``kdcore/tasks/`` names a specific task, in an import or in a string
  (docstrings aside): everything else asks a task object, so a new task is
  one new package;
- no task package imports another: what two tasks share (Fashion-MNIST's
  files, the safe picture reader) lives in a module of its own;
- no import cycle, however it is spelt;
- kdcore never imports Streamlit, and the pages never import TensorFlow.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from kdcore import tasks
from kdcore.tasks import BUILTIN

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "kdcore"

BASE = {"kdcore.params", "kdcore.results", "kdcore.progress", "kdcore.dataset", "kdcore.stats",
        "kdcore.pictures", "kdcore.metric"}
ENGINE = {"kdcore.config", "kdcore.losses", "kdcore.training", "kdcore.inference", "kdcore.storage"}
TASK_PACKAGES = {f"{PACKAGE}.tasks.{name}" for name in BUILTIN}

# String literals outside kdcore/tasks/ that spell a task's or a dataset's name without meaning it, each with why.
ALLOWED_LITERALS = {
    ("kdcore.params", "text"): "a free-text setting's allowed values, in words (``tasks --json``'s allowed field)",
    ("pages.prompt", "text"): "the Next word page's URL parameter holding the prompt",
    ("kdcore.export", "images"): "how many calibration images an int8 export used, a field of its sidecar",
}



# --- reading imports ----------------------------------------------------------------------------------
def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as absolute dotted names.

    ``from a import b`` counts as both ``a`` and ``a.b`` (``b`` may be a module
    or a name in ``a``); a caller keeps the names it knows to be modules.
    """
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """{module: the package's own modules it imports} for every module of ``package`` under ``root``."""
    paths = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    return {m: {t for t in imports(p, root) if t in paths and t not in (m, package)} for m, p in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), each as a path that returns to its start."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_path_within(group, edges) for group in groups]


def _path_within(group: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the group's first module, staying inside the group (breadth first)."""
    start = min(group)
    came_from = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v] & group):
                if w == start:
                    path = [v]
                    while came_from[path[-1]] is not None:
                        path.append(came_from[path[-1]])
                    return path[::-1] + [start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle within {sorted(group)}")


def sources(*folders: str) -> dict[str, Path]:
    """{module name: path} of every .py in the folders (recursively), and app.py when asked for."""
    found = {}
    for folder in folders:
        paths = [ROOT / folder] if folder.endswith(".py") else sorted((ROOT / folder).rglob("*.py"))
        found |= {module_name(p): p for p in paths}
    return found


def _task_of(module: str) -> str | None:
    """The task package ``module`` belongs to, or None."""
    return next((t for t in TASK_PACKAGES if module == t or module.startswith(t + ".")), None)


def _is_task(module: str) -> bool:
    return _task_of(module) is not None


def _outside_tasks() -> dict[str, set[str]]:
    """{module outside kdcore/tasks/: the specific task modules it imports} (only those that import one)."""
    modules = sources(PACKAGE)
    out = {}
    for name, path in sources(PACKAGE, "pages", "app.py").items():
        if name == f"{PACKAGE}.tasks" or name.startswith(f"{PACKAGE}.tasks."):
            continue
        named = {m for m in imports(path) if _is_task(m) and m in modules}
        if named:
            out[name] = named
    return out


# --- the reader, on a tiny package of its own --------------------------------------------------------
def test_the_reader_resolves_relative_imports_and_sees_those_inside_functions(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def later():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import os\n\nclass K:\n    def m(self):\n        from ..a import x\n")
    (pkg / "d.py").write_text("from .sub.c import K\n")
    edges = graph(tmp_path, "toy")
    assert edges["toy.a"] == {"toy.b"} and edges["toy.b"] == {"toy.sub", "toy.sub.c"}
    assert edges["toy.sub.c"] == {"toy.a"} and edges["toy.d"] == {"toy.sub.c"}
    assert cycles(edges) == [["toy.a", "toy.b", "toy.sub.c", "toy.a"]]


# --- the rules -----------------------------------------------------------------------------------------
def test_no_import_cycle_ties_kdcore_modules_together_not_even_through_imports_inside_functions():
    found = cycles(graph())
    assert not found, "import cycles in kdcore:\n" + "\n".join(" -> ".join(c) for c in found)


def test_only_the_tasks_package_imports_a_specific_task():
    named = {m: sorted(t) for m, t in _outside_tasks().items()}
    assert not named, f"these name a specific task; ask the task object (tasks.get(name)) instead: {named}"


def test_no_task_package_imports_another():
    crossing = {m: sorted(t for t in targets if _task_of(t) not in (None, _task_of(m)))
                for m, targets in graph().items() if _task_of(m)}
    assert not any(crossing.values()), ("task packages import each other; move what they share out of both: "
                                        f"{ {m: t for m, t in crossing.items() if t} }")


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def _dataset_names() -> set[str]:
    """Every built-in task's dataset names: those it lists, its default, its presets' and its quick slices."""
    found = set()
    for name in BUILTIN:
        task = tasks.get(name)
        found |= {row["name"] for row in task.datasets()} | {task.default_dataset()[0]} | set(task.quick_datasets)
        found |= {spec["dataset"] for spec in task.presets.values() if spec.get("dataset")}
    return found


def _named_in_literals(files: dict[str, Path] | None = None) -> dict[str, list[str]]:
    """{module outside kdcore/tasks/: task names that are whole string literals and dataset names within one}.

    ``files`` is ``{module: path}`` (default: kdcore, the pages and app.py). Docstrings are prose and may
    name anything; comments never reach the tree.
    """
    dataset_names = _dataset_names()
    within = re.compile("|".join(rf"(?<![\w-]){re.escape(n)}(?![\w-])"
                                 for n in sorted(dataset_names, key=len, reverse=True)))
    out = {}
    for module, path in (files or sources(PACKAGE, "pages", "app.py")).items():
        if module == f"{PACKAGE}.tasks" or module.startswith(f"{PACKAGE}.tasks."):
            continue
        tree = ast.parse(path.read_text(), str(path))
        docs = _docstrings(tree)
        named = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                hits = ({node.value} & (set(BUILTIN) | dataset_names)) | set(within.findall(node.value))
                named |= {h for h in hits if (module, h) not in ALLOWED_LITERALS}
        if named:
            out[module] = sorted(named)
    return out


def test_no_module_outside_the_tasks_spells_a_task_or_dataset_name():
    """``task.name == "digits"`` or ``dataset == "mnist-5k"`` outside kdcore/tasks/ is a question the task should answer."""
    found = _named_in_literals()
    assert not found, f"ask the task object (an attribute or method of kdcore.tasks.base.Task) instead: {found}"
    module_names = set(sources(PACKAGE, "pages", "app.py"))
    stale = sorted(k for k in ALLOWED_LITERALS if k[0] not in module_names)
    assert not stale, f"ALLOWED_LITERALS names modules that are gone: {stale}"


def test_the_literal_check_sees_names_in_code_and_not_in_docstrings(tmp_path):
    page = tmp_path / "toy.py"
    page.write_text('"""Shows mnist-5k and digits, in prose."""\n'
                    'def f(task):\n    """On digits."""\n    return task.name == "digits" or "else mnist-5k here"\n')
    quiet = tmp_path / "quiet.py"
    quiet.write_text('"""On fashion-mnist."""\nx = "fashion-mnistish text about digits"  # and mnist-5k\n')
    assert _named_in_literals({"pages.toy": page, "pages.quiet": quiet}) == {"pages.toy": ["digits", "mnist-5k"]}


def test_the_base_layer_imports_nothing_of_kdcore_above_it():
    edges = graph()
    assert BASE <= set(edges), f"base modules missing: {sorted(BASE - set(edges))}"
    above = {m: sorted(edges[m] - BASE) for m in sorted(BASE) if edges[m] - BASE}
    assert not above, f"the base layer imports modules above it: {above}"


def test_the_engine_is_handed_what_it_needs_from_a_task_and_never_asks_the_registry():
    edges = graph()
    asks = {m: sorted(t for t in edges[m] if t == f"{PACKAGE}.tasks" or t.startswith(f"{PACKAGE}.tasks."))
            for m in sorted(ENGINE)}
    assert not any(asks.values()), f"the engine imports the tasks: { {m: t for m, t in asks.items() if t} }"


def test_kdcore_never_imports_streamlit():
    found = {m: sorted(i for i in imports(p) if i.split(".")[0] == "streamlit")
             for m, p in sources(PACKAGE).items()}
    assert not any(found.values()), f"kdcore imports streamlit: { {m: i for m, i in found.items() if i} }"


def test_pages_never_import_tensorflow_or_keras():
    heavy = ("tensorflow", "keras", "tf_keras")
    found = {m: sorted(i for i in imports(p) if i.split(".")[0] in heavy)
             for m, p in sources("pages", "app.py").items()}
    assert not any(found.values()), f"pages import TensorFlow: { {m: i for m, i in found.items() if i} }"
