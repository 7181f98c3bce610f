"""The package's rooms and the one direction its imports go.

Data meets nlpsetup's rooms in this order (README, "Layout"): host facts -> recipe -> resolve -> plan ->
execute -> verify -> record. A module may import from its own room or from a room above it in LAYERS
(nearer the ground), never from one below it, and no set of modules may import each other in a
circle. Imports inside functions count: a lazy import is still a dependency. No module imports a
private name (`_x`) from another module, as `from m import _x` or as `m._x`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nlpsetup

PKG = Path(nlpsetup.__file__).parent

# Ground floor first. A room may use the rooms listed before it.
LAYERS = [
    "base",       # errors, paths, files, masking, the one door to subprocesses and HTTP, signals
    "facts",      # the host: OS, CPU, Pythons, GPU
    "recipes",    # recipe values, schema, loading
    "index",      # the package index client
    "envs",       # env layout and names, manifest, store, kernels
    "resolve",    # request + recipe + host (+ date) -> plan or refusal; the backends' commands
    "share",      # locks, pylock, bundles
    "plan",       # what a command will build
    "execution",  # build, change, smoke checks, verify
    "doctor",     # diagnosis of host, envs, recipes
    "image",      # container images of a verified env
    "authoring",  # matrices, CI workflows, recipe tests, outdated pins, discovery
    "ui",         # progress and rendered text
    "cli",        # the commands
]
TOP = {"__init__", "__main__"}  # the package's own entry points sit above every room


def modules() -> dict[str, Path]:
    found = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(module imported, name taken from it or None, line) for every import of nlpsetup, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("nlpsetup"):
                target = node.module.removeprefix("nlpsetup").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}".lstrip(".")
                if sub in known:
                    aliases[alias.asname or alias.name] = sub
                    found.append((sub, None, node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("nlpsetup."):
                    target = alias.name.removeprefix("nlpsetup.")
                    aliases[alias.asname or alias.name] = target
                    found.append((target, None, node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            found.append((aliases[node.value.id], node.attr, node.lineno))
    return found


def room(name: str) -> str:
    return name.split(".")[0]


def rank(name: str) -> int:
    return len(LAYERS) if name in TOP or name == "" else LAYERS.index(room(name))


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m, _, _ in imports_of(name, path, known) if m in known and m != name}
            for name, path in known.items()}


def test_every_module_lives_in_a_room_of_the_table():
    strays = [n for n in modules() if n not in TOP and room(n) not in LAYERS]
    assert not strays, f"modules outside the rooms of LAYERS: {strays}"
    assert len(LAYERS) >= 6


def test_imports_point_down_only():
    known = modules()
    upward = []
    for name, path in known.items():
        for target, _, line in imports_of(name, path, known):
            if target and target in known and rank(target) > rank(name):
                upward.append(f"{name}:{line} imports {target} ({room(target)} is above {room(name)})")
    assert not upward, "\n".join(sorted(set(upward)))


def test_no_circles_among_modules():
    edges = graph()
    circles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not circles, "\n".join(circles)


def test_no_private_name_crosses_a_module():
    known = modules()
    leaks = [f"{name}:{line} uses {target}.{attr}"
             for name, path in known.items()
             for target, attr, line in imports_of(name, path, known)
             if attr and attr.startswith("_") and not attr.startswith("__") and target != name]
    assert not leaks, "\n".join(sorted(set(leaks)))


def test_subpackage_inits_are_a_docstring_only():
    for init in PKG.glob("*/__init__.py"):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), init


def test_the_checker_sees_imports_inside_functions_and_attribute_use(tmp_path):
    source = "def f():\n    from nlpsetup.cli import main\n    from nlpsetup.base import proc\n    proc._spawn()\n"
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    known = {"cli.main": path, "base.proc": path}
    found = imports_of("base.files", path, known)
    assert ("cli.main", None, 2) in found and ("base.proc", "_spawn", 4) in found


def test_the_readme_layout_lists_the_rooms_in_the_order_of_the_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    tree = readme.split("## Layout", 1)[1].split("```\ninstaller/nlpsetup/\n", 1)[1].split("```", 1)[0]
    rooms = [line.split("/")[0].strip() for line in tree.splitlines() if line.startswith("  ") and "/" in line[:14]
             and not line.startswith("   ")]
    assert [r for r in rooms if r != "data"] == LAYERS
