"""From what the user typed to plans: the Request for one tool, several tools sharing one env,
a lock read back, and every recipe's availability for `list`.

This is the edge in front of the pure resolver: it probes a `--python PATH` and reads files,
then hands plain values to `resolve`. A refusal is raised as `resolve.Refused` (exit 3).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from nlpsetup.base import paths
from nlpsetup.base.errors import NlpsetupError
from nlpsetup.envs.names import check_env_name
from nlpsetup.facts import pythons
from nlpsetup.facts.host import Host
from nlpsetup.recipes.load import RecipeBook
from nlpsetup.resolve import cutoff
from nlpsetup.resolve import model as resolve
from nlpsetup.resolve import resolve as resolver


@dataclass(frozen=True)
class Choices:
    """The plan options every planning command shares (plan, install, and friends)."""

    variant: str | None = None
    python: str | None = None
    compute: str = "auto"
    via: str = "pip"
    env_name: str | None = None
    fetch_python: bool = False
    as_of: str | None = None  # --as-of DATE|latest; None: the recipe's date


def make_request(tool: str, c: Choices, cache_dir: Path | None = None) -> resolve.Request:
    compute = resolver.compute_request(c.compute)
    if c.as_of and c.as_of != cutoff.LATEST:
        cutoff.parse_date(c.as_of)  # a bad date is a usage error before anything else
    py_req = pythons.parse_request(c.python) if c.python else None
    py_install = pythons.probe_path(py_req.path, cache_dir) if py_req and py_req.path else None
    if c.env_name is not None:
        check_env_name(c.env_name)
    return resolve.Request(
        tool=resolver.parse_tool(tool), variant=c.variant, python=py_req, python_install=py_install,
        compute=compute, via=c.via, env_name=c.env_name, fetch_python=c.fetch_python,
        torch_mirror=os.environ.get("NLPSETUP_TORCH_INDEX_URL") or None, as_of=c.as_of,
    )


def plan_one(book: RecipeBook, tool: str, host: Host, c: Choices, home: Path) -> resolve.Plan:
    recipe = book.get(resolver.parse_tool(tool).name)
    result = resolver.resolve(recipe, host, make_request(tool, c, paths.cache_dir(home)),
                           envs_root=paths.envs_dir(home))
    if isinstance(result, resolve.Refusal):
        raise resolve.Refused(result)
    if any(s.name == "fetch-python" for s in result.steps):
        _check_downloadable(result.python.minor, host)
    return result


def uv_downloads(uv: str | None) -> list[str] | None:
    """The CPython minors uv can download for this platform (from the download list uv ships, no
    network), or None when uv cannot tell."""
    from nlpsetup.base import proc

    if not uv:
        return None
    code, out = proc.capture([uv, "python", "list", "--all-versions", "--only-downloads", "--output-format", "json"],
                             env=proc.child_env(), timeout=30)
    try:
        rows = json.loads(out) if code == 0 else None
    except ValueError:
        rows = None
    if not isinstance(rows, list):
        return None
    minors = {".".join(str(r.get("version", "")).split(".")[:2]) for r in rows
              if isinstance(r, dict) and r.get("implementation") == "cpython"}
    return sorted(minors, key=lambda m: tuple(int(x) for x in m.split(".") if x.isdigit()))


def _check_downloadable(minor: str, host: Host) -> None:
    """--fetch-python: refuse (exit 3) a version uv has no build of, before anything is changed."""
    from nlpsetup.base.errors import EXIT_REFUSED

    offered = uv_downloads(host.tool("uv"))
    if offered is not None and minor not in offered:
        span = f"{offered[0]} to {offered[-1]}" if offered else "none"
        raise NlpsetupError(f"--fetch-python: uv cannot download CPython {minor} for {host.os} {host.arch}: its "
                            f"python-build-standalone builds here are {span}",
                            hint=f"install Python {minor} yourself (pyenv install {minor}, or your OS packages), "
                                 "then run the command again without --fetch-python", exit_code=EXIT_REFUSED)


def common_python(book: RecipeBook, tools: list[str], host: Host, c: Choices, home: Path) -> str | None:
    """The newest Python minor every tool has a variant for on this host (one installed here
    first, else any release), or None. Resolution is pure, so trying each minor is cheap."""
    from dataclasses import replace

    minors = [f"3.{m}" for m in range(16, 5, -1)]
    anywhere = replace(host, pythons=(), simulated=True)  # any CPython release assumed installable
    for candidate_host in (host, anywhere):
        for minor in minors:
            choice = Choices(None, minor, c.compute, c.via, c.env_name or "x", False, c.as_of)
            try:
                for tool in tools:
                    plan_one(book, tool, candidate_host, choice, home)
            except NlpsetupError:
                continue
            return minor
    return None


def plan_tools(book: RecipeBook, tools: list[str], host: Host, c: Choices, home: Path) -> list[resolve.Plan]:
    """One plan per tool, all on the first tool's interpreter so that they can share one env."""
    if not tools:
        raise NlpsetupError("name at least one tool to install", hint="for example: nlpsetup install spacy")
    if c.env_name is not None:  # --name "" is a mistake, not a request for the default name
        check_env_name(c.env_name)
    name = c.env_name or default_name(book, tools, home)
    plans: list[resolve.Plan] = []
    for i, tool in enumerate(tools):
        py = c.python if i == 0 or c.python else plans[0].python.path or plans[0].python.version
        choice = Choices(c.variant if i == 0 else None, py, c.compute, c.via, name, c.fetch_python, c.as_of)
        try:
            plans.append(plan_one(book, tool, host, choice, home))
        except resolve.Refused as exc:
            if i > 0:
                exc.note = (f"{tools[0]} and {tool} cannot share one env: {tools[0]} needs Python "
                            f"{plans[0].python.version}.")
                if not c.python and (fit := common_python(book, tools, host, c, home)):
                    exc.note += (f"\n  all of them fit Python {fit}: nlpsetup install {' '.join(tools)} "
                                 f"--python {fit}")
            raise
    return plans


def load_lock(lock_path: str | None, bundle_dir: str | None = None) -> tuple[dict, str | None]:
    """The checked lock of `--from-lock FILE` (an nlpsetup lock or a pylock.toml) or of a bundle,
    with the bundle's wheel folder (None for a lock)."""
    from nlpsetup.share import bundle, lockfile

    if lock_path and bundle_dir:
        raise NlpsetupError("--from-lock and --from-bundle exclude each other",
                            hint="a bundle carries its own lock: pass --from-bundle DIR alone")
    find_links = None
    if bundle_dir:
        lock_path, find_links = bundle.check_folder(bundle_dir)
    return lockfile.load(lock_path, "--from-bundle" if find_links else "--from-lock"), find_links


def default_name(book: RecipeBook, tools: list[str], home: Path) -> str:
    """The recipes' own names (`Spacy` and `ccds` name spacy and cookiecutter-data-science); but
    an env named as typed (`install ccds` after `install cookiecutter-data-science --name ccds`)
    that holds those very tools is that env, not a second one beside it."""
    from nlpsetup.envs import manifest

    canonical = "-".join(book.get(resolver.parse_tool(t).name).name for t in tools)
    typed = "-".join(resolver.parse_tool(t).name for t in tools)
    if typed.lower() == canonical.lower():  # a case apart is the same name (one folder on macOS, Windows)
        return canonical
    try:
        held = manifest.read(paths.envs_dir(home) / check_env_name(typed)).get("tools", [])
    except (manifest.ManifestError, NlpsetupError):
        return canonical
    same = sorted(str(t.get("name")) for t in held) == sorted(book.get(resolver.parse_tool(t).name).name for t in tools)
    return typed if same else canonical


def plan_from_lock(lock: dict, env_name: str | None, host: Host, home: Path,
                   find_links: str | None = None) -> resolve.Plan:
    """The plan that rebuilds a locked env, or with `find_links` the env a bundle holds, installed
    from its wheels alone."""
    from nlpsetup.share import lockfile

    if env_name is not None:  # '' too: refused by name, not taken for the default
        check_env_name(env_name)
    result = lockfile.plan(lock, host, envs_root=paths.envs_dir(home), env_name=env_name,
                           req_dir=paths.cache_dir(home) / "locks", find_links=find_links)
    if isinstance(result, resolve.Refusal):
        raise resolve.Refused(result)
    return result


def admitted(book: RecipeBook, tools: list[str], plans: list[resolve.Plan], host: Host, c: Choices,
             home: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """For each planned tool, the variants its request admits on this host: with --variant that
    one; else every variant the same request resolves to when asked for it. An env built on one
    of them (an older Python's variant, an explicit --variant) holds what was asked: like pipx,
    install does not rebuild it because today's default would differ."""
    out = []
    for i, (tool, plan) in enumerate(zip(tools, plans, strict=True)):
        if c.variant and i == 0:
            out.append((plan.tool, (plan.variant.id,)))
            continue
        recipe = book.get(plan.tool)
        req = make_request(tool, Choices(None, c.python, c.compute, c.via, plan.env_name), paths.cache_dir(home))
        ids = tuple(v.id for v in resolver.considered(recipe, req)
                    if isinstance(resolver.resolve(recipe, host, replace(req, variant=v.id),
                                                   envs_root=paths.envs_dir(home)), resolve.Plan))
        out.append((plan.tool, ids))
    return tuple(out)


def kept_lock(env_path: Path) -> dict | None:
    """The checked lock an env was built from (install --from-lock keeps it in the env), or None."""
    from nlpsetup.base.files import read_cache
    from nlpsetup.envs.env import Env
    from nlpsetup.share import lockfile

    path = Env.at(env_path).lock_path
    lock = read_cache(path, dict)
    return None if lock is None else lockfile.check(lock, str(path))


def rebuild(data: dict, name: str, book: RecipeBook, host: Host, home: Path,
            as_of: str | None = None) -> list[resolve.Plan]:
    """The plans that build env `name` again as its manifest records it: each tool on its
    variant and the env's Python (its interpreter if still there, else its version), as of the env's
    recorded date unless `as_of` (--as-of) says otherwise; an env built from a lock, from the lock it keeps."""
    interp = data.get("interpreter", {})
    tools = data.get("tools", [])
    if any(str(t.get("variant", "")).startswith("lock:") for t in tools):
        lock = kept_lock(paths.envs_dir(home) / name)
        if lock is None:
            raise NlpsetupError(f"{name} was built from a lock that it did not keep (an older nlpsetup built it)",
                                hint=f"rebuild it from the lock file: nlpsetup install --from-lock FILE --name {name} "
                                     "--force")
        return [plan_from_lock(lock, name, host, home)]
    # Its interpreter if still there, else any of its minor (the one it had may be gone).
    python = interp.get("path") if interp.get("path") and os.path.exists(interp["path"]) else \
        ".".join(str(interp.get("version")).split(".")[:2])
    recorded = cutoff.from_dict(data.get("as_of"))
    if as_of is None and "as_of" in data:  # the env's own date (or none: it was built as of latest)
        as_of = str(recorded.date) if recorded else cutoff.LATEST
    plans = [plan_one(book, t.get("request") or t["name"], host,
                      Choices(variant=t["variant"], python=python, env_name=name, as_of=as_of), home) for t in tools]
    # Still the env's date: keep where it was chosen (recipe, --as-of), not "env".
    return [replace(p, as_of=recorded) if recorded and p.as_of and p.as_of.date == recorded.date else p
            for p in plans]


def availability(book: RecipeBook, host: Host, home: Path) -> list[dict]:
    """One row per recipe: whether this host gets it, on which variant and Python, or why not."""
    rows = []
    for recipe in book.recipes.values():
        result = resolver.resolve(recipe, host, resolve.Request(tool=resolve.ToolRequest(recipe.name)),
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
            "discovered": Path(recipe.path).parent == paths.discovered_recipes_dir(home),
        })
    return rows


def with_backend(plans: list[resolve.Plan], requested: str = "auto", *, pip: bool = True) -> list[resolve.Plan]:
    """The plans as the chosen backend will run them (what `plan` and `install --dry-run` show)."""
    from nlpsetup.resolve import backends

    uv = backends.find_uv()
    backend, _ = backends.choose(requested, plans[0].python.version, uv)
    if not pip:
        backends.check_no_pip(backend)
    return [p if p.steps and p.steps[0].method == "conda" else  # conda installs everything itself
            backends.for_backend(p, backend, "uv" if p.simulated else uv, pip=pip) for p in plans]
