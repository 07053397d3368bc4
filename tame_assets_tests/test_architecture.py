"""README's architecture claims, checked on the source: layers import downward only, no import cycles
(function-level imports included), no imports of another module's ``_private`` names, environment
variables read only in ``tame_assets/config.py``, and neither ``import tame_assets`` nor the Dagster
definitions import torch."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tame_assets"

#: README's layers, lowest first: a module may import its own layer and the layers below it.
LAYERS = [
    {"config", "months", "labels", "stations", "files", "jit"},  # files: atomic writes; jit: compiled loops
    {"sources"},
    {"ml", "warehouse", "geometry", "compute"},
    {"analysis", "products", "live"},
    {""},  # the package itself (`from tame_assets import Provider`): a lazy facade over the domain layers
    {"defs"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: The one module that reads environment variables.
ENVIRONMENT_MODULE = "tame_assets.config"


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: list[tuple[str, str | None, int]] = field(default_factory=list)  # (target module, name, line)


@functools.cache
def modules() -> dict[str, Module]:
    """Every module of the package, parsed, with the package modules each one imports (at any depth)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = Module(".".join(parts), path, ast.parse(path.read_text(), str(path)))
    for module in found.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "tame_assets":
                        module.imports.append((_owner(alias.name, found), None, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                if base.split(".")[0] != "tame_assets":
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in found:  # `from tame_assets.sources import http`: the module itself
                        module.imports.append((sub, None, node.lineno))
                    else:
                        module.imports.append((_owner(base, found), alias.name, node.lineno))
    return found


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name.split(".")
    if module.path.name != "__init__.py":
        package = package[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


def _owner(name: str, found: dict[str, Module]) -> str:
    """The package module ``name`` refers to (its longest existing prefix)."""
    while name and name not in found:
        name = name.rpartition(".")[0]
    return name


def _layer_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _where(module: Module, line: int) -> str:
    return f"{module.path.relative_to(PACKAGE.parent)}:{line}"


def test_every_module_has_a_layer():
    unplaced = sorted({_layer_of(m) for m in modules()} - set(RANK))
    assert not unplaced, f"tame_assets.{unplaced} in none of README's layers: add them to README and LAYERS"


def test_layers_import_downward_only():
    upward = []
    for module in modules().values():
        rank = RANK.get(_layer_of(module.name))
        for target, _, line in module.imports:
            target_rank = RANK.get(_layer_of(target))
            if rank is not None and target_rank is not None and target_rank > rank:
                upward.append(f"{_where(module, line)}: {module.name} imports {target}")
    order = " → ".join("/".join(sorted(names)) or "tame_assets" for names in LAYERS)
    assert not upward, f"upward imports (layers: {order}):\n" + "\n".join(upward)


def _import_graph() -> dict[str, set[str]]:
    """module → the modules it imports; a module importing its own parent package is not an edge
    (the parent is initialised first, the usual `from . import sibling`)."""
    graph = {name: set() for name in modules()}
    for module in modules().values():
        for target, _, _ in module.imports:
            if target and target != module.name and not module.name.startswith(target + "."):
                graph[module.name].add(target)
    return graph


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module (the import cycles)."""
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert strongly_connected_components(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = strongly_connected_components(_import_graph())
    lines = []
    for cycle in cycles:
        members = set(cycle)
        for name in cycle:
            for target, _, line in modules()[name].imports:
                if target in members and target != name and not name.startswith(target + "."):
                    lines.append(f"  {_where(modules()[name], line)}: {name} imports {target}")
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(
        [" <-> ".join(c) for c in cycles] + lines
    )


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_imports_of_another_modules_private_names():
    found = []
    for module in modules().values():
        bound = {}  # local name → package module, for `module._name` attribute access
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("tame_assets.") and alias.asname:
                        bound[alias.asname] = _owner(alias.name, modules())
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                if base.split(".")[0] != "tame_assets":
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in modules():
                        bound[alias.asname or alias.name] = sub
                        # a private submodule is private to its package
                        if _is_private(alias.name) and not module.name.startswith(base + "."):
                            found.append(f"{_where(module, node.lineno)}: {module.name} imports {sub}")
                    elif _is_private(alias.name) and _owner(base, modules()) != module.name:
                        found.append(f"{_where(module, node.lineno)}: {module.name} imports {base}.{alias.name}")
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and _is_private(node.attr)
                and bound[node.value.id] != module.name
            ):
                found.append(f"{_where(module, node.lineno)}: {module.name} uses {bound[node.value.id]}.{node.attr}")
    assert not found, "imports of another module's _private names:\n" + "\n".join(sorted(set(found)))


def _environment_reads(tree: ast.Module) -> list[tuple[int, str]]:
    """Lines that touch the process environment: ``os.environ`` (read or write), ``os.getenv``,
    ``os.putenv``/``unsetenv`` and ``from os import environ/getenv``."""
    hits = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
        ):
            hits.append((node.lineno, f"os.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            hits += [
                (node.lineno, f"from os import {a.name}")
                for a in node.names
                if a.name in {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
            ]
    return hits


def test_the_environment_reader_finds_reads():
    source = "import os\nfrom os import getenv\na = os.environ.get('X')\nb = os.getenv('Y')\nos.environ['Z'] = '1'\n"
    tree = ast.parse(source)
    assert sorted(line for line, _ in _environment_reads(tree)) == [2, 3, 4, 5]


def test_environment_variables_are_read_only_in_the_configuration_module():
    found = [
        f"{_where(m, line)}: {what}"
        for m in modules().values()
        if m.name != ENVIRONMENT_MODULE
        for line, what in _environment_reads(m.tree)
    ]
    assert not found, f"environment access outside {ENVIRONMENT_MODULE} (pass TameSettings instead):\n" + "\n".join(
        found
    )


_TORCH_PROBE = """
import json, sys, traceback

class Probe:  # where torch is looked up from (a lookup alone, e.g. importlib.util.find_spec, imports nothing)
    chains = []

    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            Probe.chains.append([f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()[:-1]
                                 if "tame_assets" in f.filename or "site-packages" in f.filename][-6:])
        return None

sys.meta_path.insert(0, Probe())
import tame_assets
package = "torch" in sys.modules
import tame_assets.defs.definitions
print(json.dumps({"package": package, "definitions": "torch" in sys.modules, "chains": Probe.chains}))
"""


def test_the_package_and_the_definitions_do_not_import_torch():
    run = subprocess.run(
        [sys.executable, "-c", _TORCH_PROBE], capture_output=True, text=True, timeout=300, cwd=PACKAGE.parent
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    chains = "\n".join(" ← ".join(reversed(chain)) for chain in result["chains"])
    assert not result["package"], "`import tame_assets` imports torch; looked up via:\n" + chains
    assert not result["definitions"], "`import tame_assets.defs.definitions` imports torch; looked up via:\n" + chains
