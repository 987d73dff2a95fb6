"""The layout's rules, checked on the source: no import cycles (function-level and
type-checking imports count), data flowing one way (``embeddings`` and ``storage`` never
import ``bot``; the recommender core reaches no Telegram code) and small packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO_ROOT

PACKAGES = ("bot", "embeddings", "storage", "tests")
MAX_MODULES_PER_PACKAGE = 10


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }


def _imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every module ``module`` imports anywhere in its source: project modules by their full
    name (``from a import b`` names ``a.b`` when that is a module), others by top-level name."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name if alias.name in known else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base not in known:
                yield base.split(".")[0]
                continue
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {
        module: set(_imported(module, path, known)) - {module} for module, path in sources.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_sees_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_embeddings_and_storage_never_import_bot() -> None:
    graph = _graph()
    for module, imports in graph.items():
        if module.startswith(("embeddings", "storage")):
            assert not {name for name in imports if name.split(".")[0] == "bot"}, module


def test_the_core_service_and_quality_reach_no_telegram_code() -> None:
    graph = _graph()
    for module in [name for name in graph if name.startswith("bot.core")] + [
        "bot.service",
        "bot.settings",
        "bot.quality.runner",
        "bot.logs",
        "bot.server.heartbeat",  # wardrobe health: a quick check, run every 30 s
    ]:
        reached = _reachable(graph, module)
        assert "telegram" not in reached, module
        assert not {name for name in reached if name.startswith("bot.chat")}, module


def test_wardrobe_commands_do_not_import_python_telegram_bot() -> None:
    code = (
        "import sys, bot.cli.main, bot.service, bot.quality.runner; "
        "sys.exit('telegram' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0


def test_no_package_holds_more_than_ten_modules() -> None:
    crowded = {}
    for package in PACKAGES:
        for folder in [REPO_ROOT / package, *(REPO_ROOT / package).rglob("*/")]:
            modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            if "__pycache__" not in folder.parts and len(modules) > MAX_MODULES_PER_PACKAGE:
                crowded[str(folder.relative_to(REPO_ROOT))] = len(modules)
    assert crowded == {}


def test_usearch_is_imported_through_the_index_module_only() -> None:
    """Imported before onnxruntime, usearch crashes the process; storage.vector_index imports
    them in the safe order, and isort would put any other module's usearch import first."""
    graph = _graph()
    direct = {module for module, imports in graph.items() if "usearch" in imports}
    assert direct == {"storage.vector_index"}
