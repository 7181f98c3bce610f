"""From what the user typed to plans: the Request for one tool, several tools sharing one env,
a lock read back, and every recipe's availability for `list`.

This is the edge in front of the pure resolver: it probes a `--python PATH` and reads files,
then hands plain values to `resolve`. A refusal is raised as `resolve.Refused` (exit 3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nlpsetup import paths, pythons, resolve
from nlpsetup.errors import NlpsetupError
from nlpsetup.host import Host
from nlpsetup.recipes import RecipeBook


@dataclass(frozen=True)
class Choices:
    """The plan options every planning command shares (plan, install, and friends)."""

    variant: str | None = None
    python: str | None = None
    compute: str = "auto"
    via: str = "pip"
    env_name: str | None = None
    fetch_python: bool = False


def make_request(tool: str, c: Choices, cache_dir: Path | None = None) -> resolve.Request:
    compute = c.compute
    if compute not in ("auto", "cpu") and not (compute.startswith("cu") and compute[2:].isdigit()):
        raise NlpsetupError(f"--compute {compute!r} is not auto, cpu or a CUDA build such as cu126",
                            hint="for example: --compute cpu")
    py_req = pythons.parse_request(c.python) if c.python else None
    py_install = pythons.probe_path(py_req.path, cache_dir) if py_req and py_req.path else None
    if c.env_name is not None:
        resolve.check_env_name(c.env_name)
    return resolve.Request(
        tool=resolve.parse_tool(tool), variant=c.variant, python=py_req, python_install=py_install,
        compute=compute, via=c.via, env_name=c.env_name, fetch_python=c.fetch_python,
        torch_mirror=os.environ.get("NLPSETUP_TORCH_INDEX_URL") or None,
    )


def plan_one(book: RecipeBook, tool: str, host: Host, c: Choices, home: Path) -> resolve.Plan:
    recipe = book.get(resolve.parse_tool(tool).name)
    result = resolve.resolve(recipe, host, make_request(tool, c, paths.cache_dir(home)),
                           envs_root=paths.envs_dir(home))
    if isinstance(result, resolve.Refusal):
        raise resolve.Refused(result)
    return result


def plan_tools(book: RecipeBook, tools: list[str], host: Host, c: Choices, home: Path) -> list[resolve.Plan]:
    """One plan per tool, all on the first tool's interpreter so that they can share one env."""
    if not tools:
        raise NlpsetupError("name at least one tool to install", hint="for example: nlpsetup install spacy")
    if c.env_name is not None:  # --name "" is a mistake, not a request for the default name
        resolve.check_env_name(c.env_name)
    name = c.env_name or "-".join(resolve.parse_tool(t).name for t in tools)
    plans: list[resolve.Plan] = []
    for i, tool in enumerate(tools):
        py = c.python if i == 0 or c.python else plans[0].python.path or plans[0].python.version
        choice = Choices(c.variant if i == 0 else None, py, c.compute, c.via, name, c.fetch_python)
        try:
            plans.append(plan_one(book, tool, host, choice, home))
        except resolve.Refused as exc:
            if i > 0:
                exc.note = (f"{tools[0]} and {tool} cannot share one env: {tools[0]} needs Python "
                            f"{plans[0].python.version}.")
            raise
    return plans


def plan_from_lock(lock_path: str, env_name: str | None, host: Host, home: Path) -> resolve.Plan:
    from nlpsetup import lockfile
    from nlpsetup.files import read_json

    data = read_json(lock_path, "--from-lock", "pass a file written by: nlpsetup lock ENV -o FILE")
    lock = lockfile.check(data, f"--from-lock {lock_path}")
    if env_name is not None:
        resolve.check_env_name(env_name)
    result = lockfile.plan(lock, host, envs_root=paths.envs_dir(home), env_name=env_name)
    if isinstance(result, resolve.Refusal):
        raise resolve.Refused(result)
    return result


def availability(book: RecipeBook, host: Host, home: Path) -> list[dict]:
    """One row per recipe: whether this host gets it, on which variant and Python, or why not."""
    rows = []
    for recipe in book.recipes.values():
        result = resolve.resolve(recipe, host, resolve.Request(tool=resolve.ToolRequest(recipe.name)),
                                 envs_root=paths.envs_dir(home))
        ok = isinstance(result, resolve.Plan)
        rows.append({
            "name": recipe.name,
            "available": ok,
            "variant": result.variant.id if ok else None,
            "python": result.python.version if ok else None,
            "reason": None if ok else result.one_line(),
            "status": recipe.status,
            "summary": recipe.summary,
        })
    return rows
