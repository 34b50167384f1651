"""The architecture's rules, checked: the library never imports a command-line script, models/ uses only
utils' primitives, no module-level import cycle, and no function over 80 lines."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIS = {"train", "val", "detect", "export"}
PRIMITIVES_FOR_MODELS = {"utils.paths", "utils.yaml_files"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _library_modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): p
            for folder in ("models", "utils") for p in (ROOT / folder).rglob("*.py")}


def test_library_never_imports_a_command_line_script():
    for name, path in _library_modules().items():
        assert not (_imports(path) & CLIS), f"{name} imports {_imports(path) & CLIS}"


def test_models_use_only_utils_primitives():
    for name, path in _library_modules().items():
        if name.startswith("models."):
            used = {m for m in _imports(path) if m.startswith("utils")}
            assert used <= PRIMITIVES_FOR_MODELS, f"{name} imports {used - PRIMITIVES_FOR_MODELS}"


def test_no_import_cycles_at_module_level():
    modules = _library_modules()
    graph = {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}

    def visit(node, stack):
        assert node not in stack, f"import cycle: {' -> '.join([*stack, node])}"
        for nxt in graph[node]:
            visit(nxt, [*stack, node])

    for name in graph:
        visit(name, [])


def test_no_function_over_80_lines():
    for path in [*ROOT.glob("*.py"), *(p for d in ("models", "utils", "benchmarks") for p in (ROOT / d).rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{path.name}:{node.lineno} {node.name} has {length} lines"


def test_ruff_passes_with_the_complexity_limits():
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    if ruff is None:
        import pytest

        pytest.skip("ruff is not installed")
    out = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
