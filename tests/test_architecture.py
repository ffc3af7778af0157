"""The shape of the house, checked on the import graph of the project's own modules (``parametric/``,
``web/``, ``templates_models/``; not ``tests/`` or ``bench/``), read with ``ast`` so that imports inside
functions count and relative imports are resolved:

- no import cycle;
- the core (``parametric/``) never imports the web app or its libraries (Flask, SQLAlchemy, huey,
  Alembic, waitress): the web is a front on the core;
- commands stay at the edge: only the CLI package (``parametric/cli/``) imports ``parametric.cli``
  within the core, and only it and ``web/commands.py`` import ``argparse``.

A module importing its own package (``from parametric import FieldError`` in ``parametric/units.py``)
is not counted as a cycle: Python has always started importing the package first.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("parametric", "web", "templates_models")
WEB_STACK = ("web", "flask", "werkzeug", "sqlalchemy", "huey", "alembic", "waitress")
CLI = "parametric.cli"
ARGPARSE_ALLOWED = (CLI, "web.commands")


@dataclass(frozen=True)
class Import:
    """One name an import statement brings in: ``names`` are the absolute dotted names it may denote
    (``from a import b`` denotes ``a`` or ``a.b``), ``target`` the project module it loads, if any."""

    module: str
    path: Path
    line: int
    statement: str
    names: tuple[str, ...]
    target: str | None

    def where(self, root: Path) -> str:
        try:
            shown = self.path.relative_to(root)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line} `{self.statement}`"


@dataclass
class ImportGraph:
    root: Path
    modules: dict[str, Path]
    imports: list[Import]

    def edges(self) -> dict[str, dict[str, Import]]:
        """Module → the project modules it imports (the first statement importing each)."""
        graph: dict[str, dict[str, Import]] = {module: {} for module in self.modules}
        for found in self.imports:
            target = found.target
            if target is None or target == found.module or found.module.startswith(target + "."):
                continue  # not ours, itself, or its own package (imported before it anyway)
            graph[found.module].setdefault(target, found)
        return graph

    def cycles(self) -> list[list[str]]:
        """Every set of modules that import one another in a circle (strongly connected components of
        more than one module), each sorted, in a stable order."""
        return sorted(sorted(component) for component in strongly_connected(self.edges()) if len(component) > 1)

    def describe_cycle(self, cycle: Iterable[str]) -> str:
        members = set(cycle)
        edges = self.edges()
        lines = [f"import cycle: {' <-> '.join(sorted(members))}"]
        for module in sorted(members):
            for target, found in sorted(edges[module].items()):
                if target in members:
                    lines.append(f"    {module} -> {target}  ({found.where(self.root)})")
        return "\n".join(lines)


def project_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file under the given package folders of ``root``."""
    modules: dict[str, Path] = {}
    for package in packages:
        folder = root / package
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name a (possibly relative) ``from`` import names."""
    if not level:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _project_module(name: str, modules: dict[str, Path]) -> str | None:
    """The project module importing ``name`` loads: the longest dotted prefix of it that is one of ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def module_imports(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import in the file, at any depth (inside functions, ``if TYPE_CHECKING:``, ``try:``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, path, node.lineno, ast.unparse(node), (alias.name,),
                                    _project_module(alias.name, modules)))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                target = full if full in modules else _project_module(base, modules)
                found.append(Import(module, path, node.lineno, ast.unparse(node), (base, full), target))
    return found


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> ImportGraph:
    modules = project_modules(root, packages)
    imports = [found for module, path in modules.items() for found in module_imports(module, path, modules)]
    return ImportGraph(root, modules, imports)


def strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on a deep graph)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _names(found: Import, prefixes: Iterable[str]) -> str | None:
    """The first of ``prefixes`` (package names) the import denotes, itself or one of its submodules."""
    for prefix in prefixes:
        if any(name == prefix or name.startswith(prefix + ".") for name in found.names):
            return prefix
    return None


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offences(graph: ImportGraph, package: str) -> list[str]:
    """The rule breaks of the modules of ``package``, one line each naming the module and its import."""
    problems = []
    for found in graph.imports:
        if not _in(found.module, package):
            continue
        where = found.where(graph.root)
        if _in(found.module, "parametric"):
            stack = _names(found, WEB_STACK)
            if stack:
                problems.append(f"{found.module} imports {stack} (the core never imports the web app "
                                f"or its libraries): {where}")
            if not _in(found.module, CLI) and _names(found, (CLI,)):
                problems.append(f"{found.module} imports {CLI} (only the CLI package may; domain code returns "
                                f"values and raises errors): {where}")
        if _names(found, ("argparse",)) and not any(_in(found.module, allowed) for allowed in ARGPARSE_ALLOWED):
            problems.append(f"{found.module} imports argparse (commands live in {CLI} and web.commands "
                            f"only): {where}")
    return problems


# -- the project ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return import_graph()


def test_only_the_three_packages_are_walked(graph):
    tops = {module.split(".")[0] for module in graph.modules}
    assert tops == set(PACKAGES)
    assert not any(module.startswith(("tests", "bench", "scripts")) for module in graph.modules)
    assert {"parametric", "web", "web.models", "templates_models"} <= set(graph.modules)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(graph, package):
    cycles = [cycle for cycle in graph.cycles() if any(_in(module, package) for module in cycle)]
    assert not cycles, "\n" + "\n".join(graph.describe_cycle(cycle) for cycle in cycles)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_toward_the_core_and_commands_stay_at_the_edge(graph, package):
    problems = offences(graph, package)
    assert not problems, "\n" + "\n".join(problems)


# -- the walker itself, on a package made for it ---------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_walker_finds_a_cycle_through_a_function_level_relative_import(tmp_path):
    _write(tmp_path, {
        "shop/__init__.py": "from .orders import Order\n",
        "shop/orders.py": "from shop import helpers\n\nclass Order: ...\n",  # its own package: not a cycle
        "shop/helpers.py": "import json\n",
        "shop/jobs/__init__.py": "",
        "shop/jobs/queue.py": "import shop.jobs.sender as sender\n",
        "shop/jobs/sender.py": "def send():\n    from ..jobs import queue\n    return queue\n",
        "shop/lonely.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import orders\n",
        "tests/test_shop.py": "import shop.jobs.queue\nimport tests.test_shop\n",
    })
    walked = import_graph(tmp_path, ["shop"])
    assert "tests.test_shop" not in walked.modules
    edges = walked.edges()
    assert set(edges["shop.jobs.sender"]) == {"shop.jobs.queue"}  # inside a function, two dots up
    assert set(edges["shop.jobs.queue"]) == {"shop.jobs.sender"}
    assert set(edges["shop"]) == {"shop.orders"}
    assert set(edges["shop.orders"]) == {"shop.helpers"}  # `from shop import helpers`: the module, not shop
    assert set(edges["shop.lonely"]) == {"shop.orders"}
    assert walked.cycles() == [["shop.jobs.queue", "shop.jobs.sender"]]
    message = walked.describe_cycle(walked.cycles()[0])
    assert "shop.jobs.sender -> shop.jobs.queue  (shop/jobs/sender.py:2 `from ..jobs import queue`)" in message


def test_the_walker_finds_a_longer_cycle_and_none_without_it(tmp_path):
    _write(tmp_path, {"ring/__init__.py": "", "ring/a.py": "from . import b\n", "ring/b.py": "from .c import x\n",
                      "ring/c.py": "def x():\n    import ring.a\n"})
    assert import_graph(tmp_path, ["ring"]).cycles() == [["ring.a", "ring.b", "ring.c"]]
    (tmp_path / "ring/c.py").write_text("def x(): ...\n")
    assert import_graph(tmp_path, ["ring"]).cycles() == []


def test_the_rules_name_each_offending_module_and_import(tmp_path):
    _write(tmp_path, {
        "parametric/__init__.py": "",
        "parametric/cam.py": "def run():\n    from .cli import common\n    import argparse\n",
        "parametric/store.py": "from sqlalchemy.orm import Session\nfrom web import models\n",
        "parametric/cli/__init__.py": "import argparse\nfrom . import common\n",
        "parametric/cli/common.py": "from parametric import cam\n",
        "parametric/clinic.py": "import webcolors\n",  # names that only start alike are fine
        "web/__init__.py": "", "web/commands.py": "import argparse\n",
        "web/views.py": "from argparse import Namespace\n",
    })
    walked = import_graph(tmp_path, ["parametric", "web"])
    core, front = offences(walked, "parametric"), offences(walked, "web")
    assert sorted(core) == sorted([
        "parametric.cam imports parametric.cli (only the CLI package may; domain code returns values and raises "
        "errors): parametric/cam.py:2 `from .cli import common`",
        "parametric.cam imports argparse (commands live in parametric.cli and web.commands only): "
        "parametric/cam.py:3 `import argparse`",
        "parametric.store imports sqlalchemy (the core never imports the web app or its libraries): "
        "parametric/store.py:1 `from sqlalchemy.orm import Session`",
        "parametric.store imports web (the core never imports the web app or its libraries): "
        "parametric/store.py:2 `from web import models`",
    ])
    assert front == ["web.views imports argparse (commands live in parametric.cli and web.commands only): "
                     "web/views.py:1 `from argparse import Namespace`"]
