"""The architecture's rules, checked: the layer table by package, no command-line face imported by the library,
no module-level import cycle, size limits, and nothing after ``if __name__ == "__main__":``."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIS = {"train", "val", "detect", "export", "hubconf", "classify"}
PRIMITIVE = "utils (primitives)"

# room -> the rooms it may import (besides itself). Primitives are the modules directly in utils/.
MAY_IMPORT = {
    PRIMITIVE: set(),
    "utils.checkpoints": {PRIMITIVE},
    "models": {PRIMITIVE, "utils.checkpoints"},
    "utils.engine": {PRIMITIVE, "utils.checkpoints"},
    "utils.data": {PRIMITIVE},
    "utils.object_tracking": {PRIMITIVE},  # trackers over plain boxes; utils.detection applies them
    "utils.deploy": {PRIMITIVE, "utils.checkpoints", "models", "utils.data"},
    "utils.detection": {PRIMITIVE, "utils.checkpoints", "models", "utils.data", "utils.engine", "utils.deploy",
                        "utils.object_tracking"},
    "utils.classification": {PRIMITIVE, "utils.checkpoints", "models", "utils.data", "utils.engine"},
    "utils.tracking": {PRIMITIVE, "utils.engine"},  # trackers are hooks; the engine finds them by name only
}


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "models":
        return "models"
    if len(parts) > 1 and f"utils.{parts[1]}" in MAY_IMPORT:
        return f"utils.{parts[1]}"
    return PRIMITIVE


def _imports(path: Path) -> set[str]:
    """Every module an import statement names, at any depth (lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _library_modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): p
            for folder in ("models", "utils") for p in (ROOT / folder).rglob("*.py")}


def _sources() -> list[Path]:
    folders = ("models", "utils", "classify", "benchmarks")
    return [*ROOT.glob("*.py"), *(p for d in folders for p in (ROOT / d).rglob("*.py"))]


def test_every_package_imports_only_the_rooms_below_it():
    modules = _library_modules()
    for name, path in modules.items():
        allowed = MAY_IMPORT[room(name)] | {room(name)}
        used = {m for m in _imports(path) if m in modules}
        wrong = sorted(m for m in used if room(m) not in allowed)
        assert not wrong, f"{name} ({room(name)}) imports {wrong}"


def test_the_layer_table_forbids_what_the_design_says():
    assert "utils.classification" not in MAY_IMPORT["utils.detection"]
    assert "utils.detection" not in MAY_IMPORT["utils.classification"]
    assert not MAY_IMPORT["utils.engine"] & {"models", "utils.data", "utils.detection", "utils.classification",
                                             "utils.tracking"}
    assert room("utils.boxes") == PRIMITIVE and room("utils.engine.trainer") == "utils.engine"


def test_library_never_imports_a_command_line_face():
    for name, path in _library_modules().items():
        faces = {m for m in _imports(path) if m.split(".")[0] in CLIS}
        assert not faces, f"{name} imports {faces}"


def test_no_import_cycles_at_module_level():
    modules = _library_modules()

    def top_level_imports(path: Path) -> set[str]:
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        return found & set(modules)

    graph = {name: top_level_imports(path) for name, path in modules.items()}

    def visit(node, stack):
        assert node not in stack, f"import cycle: {' -> '.join([*stack, node])}"
        for nxt in graph[node]:
            visit(nxt, [*stack, node])

    for name in graph:
        visit(name, [])


def test_no_compatibility_re_export_modules():
    """Package __init__ files hold a docstring only: no import that would hide an edge from the layer test."""
    for init in (p for d in ("models", "utils") for p in (ROOT / d).rglob("__init__.py")):
        body = ast.parse(init.read_text()).body
        assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body), init


def test_size_limits():
    for path in _sources():
        text = path.read_text()
        assert text.count("\n") <= 500, f"{path.relative_to(ROOT)} has {text.count(chr(10))} lines (limit 500)"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{path.name}:{node.lineno} {node.name} has {length} lines"
            if isinstance(node, ast.ClassDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 400, f"{path.name}:{node.lineno} class {node.name} has {length} lines"


def test_nothing_after_the_main_guard():
    for path in _sources():
        body = ast.parse(path.read_text()).body
        guards = [i for i, n in enumerate(body) if isinstance(n, ast.If) and "__name__" in ast.unparse(n.test)]
        assert not guards or guards[-1] == len(body) - 1, f"{path.relative_to(ROOT)}: code after its main guard"


def test_ruff_passes_with_the_complexity_limits():
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    if ruff is None:
        import pytest

        pytest.skip("ruff is not installed")
    out = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


def test_every_task_implements_every_protocol_member():
    from utils.classification.task import ClassificationTask
    from utils.detection.task import DetectionTask
    from utils.engine.trainer import missing_task_members

    for task in (DetectionTask(), ClassificationTask()):
        assert missing_task_members(task) == [], type(task).__name__
        assert not hasattr(task, "setup"), "the one-call setup(trainer) was split into build_model / build_data"


def _library_trees() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(_library_modules().values())]


def test_no_library_function_takes_more_than_eight_parameters():
    """A job takes its options object whole (ValidationOptions, PredictionOptions, ExportOptions ...)."""
    for path, tree in _library_trees():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
                count = len(names) - (names[:1] in (["self"], ["cls"]))
                assert count <= 8, f"{path.relative_to(ROOT)}:{node.lineno} {node.name} takes {count} parameters"


def test_the_library_raises_and_only_the_face_wrapper_exits():
    for path, tree in _library_trees():
        if path == ROOT / "utils" / "faces.py":
            continue
        for node in ast.walk(tree):
            text = ast.unparse(node) if isinstance(node, (ast.Raise, ast.Call)) else ""
            exits = ("SystemExit" in text and isinstance(node, ast.Raise)) or (
                isinstance(node, ast.Call) and text.startswith(("sys.exit(", "os._exit(", "exit(", "quit(")))
            assert not exits, f"{path.relative_to(ROOT)}:{node.lineno} exits the process: raise an error instead"


def test_no_process_global_is_written_in_the_library():
    for path, tree in _library_trees():
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Global), (f"{path.relative_to(ROOT)}:{node.lineno} writes a module "
                                                      f"global; pass the setting in the job's options")


def test_public_functions_and_classes_have_docstrings():
    for path, tree in _library_trees():
        for node in tree.body:
            public = not getattr(node, "name", "_").startswith("_")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and public:
                assert ast.get_docstring(node), f"{path.relative_to(ROOT)}:{node.lineno} {node.name} has no docstring"


def test_one_allow_list_unpickler():
    subclasses = [f"{path.relative_to(ROOT)}:{node.name}" for path, tree in _library_trees()
                  for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                  and any("Unpickler" in ast.unparse(base) for base in node.bases)]
    assert subclasses == ["utils/checkpoints/unpickler.py:AllowListUnpickler",
                          "utils/checkpoints/unpickler.py:SafeUnpickler"], subclasses


def test_public_methods_have_docstrings_or_inherit_one():
    """A method that implements a documented interface (nn.Module.forward, a Hook event, a tracker back-end)
    inherits its docstring; every other public method has its own."""
    import importlib
    import inspect

    for name, path in sorted(_library_modules().items()):
        module = importlib.import_module(name)
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            owner = getattr(module, node.name)
            for method in node.body:
                if isinstance(method, ast.FunctionDef) and not method.name.startswith("_") \
                        and not ast.get_docstring(method):
                    assert inspect.getdoc(getattr(owner, method.name, None)), \
                        f"{path.relative_to(ROOT)}:{method.lineno} {node.name}.{method.name} has no docstring"
