"""Changes to a built env, each proven by its smoke checks: `add` (packages under the recipe's
pins), `upgrade` (the newest releases the env's recipe variant allows) and `envs --outdated`.

A change happens in place, inside an EnvStore transaction begun with a snapshot (a hard-linked
copy of the env, cheap even for GB-sized envs; the skeleton is transaction.py's, as install's):
the install, then every smoke check; if either fails, or on Ctrl-C, or after a kill (the
journal), the snapshot is renamed back, exactly as `install --force` puts the old env back. The
manifest records additions, so lock, verify, upgrade and export keep them. Never prints:
progress goes to a Reporter, results are values.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nlpsetup.base import diagnose, faults, paths, proc
from nlpsetup.base.errors import NlpsetupError
from nlpsetup.base.files import write_atomic
from nlpsetup.base.redact import mask_text
from nlpsetup.envs import manifest
from nlpsetup.envs.env import Env
from nlpsetup.envs.store import EnvStore
from nlpsetup.execution import smoke, transaction
from nlpsetup.execution.reporter import Reporter
from nlpsetup.execution.transaction import DEFAULT_STEP_TIMEOUT, Interrupted, StepFailed
from nlpsetup.execution.verify import smoke_of
from nlpsetup.resolve import backends
from nlpsetup.resolve.cutoff import BUILD_IN

# Words of a resolver's "cannot satisfy" answer (pip's ResolutionImpossible, uv's "No solution").
_CONFLICT = re.compile(r"conflict|unsatisfiable|ResolutionImpossible|No solution found|incompatible", re.I)


class Skipped(NlpsetupError):
    """An env a change cannot apply to, which a batch (`upgrade --all`) passes over with a note: not
    nlpsetup's, built from a lock, or removed meanwhile. Named alone, it is bad input (exit 2)."""


@dataclass
class Change:
    ok: bool
    env: str
    action: str  # add | upgrade
    message: str
    changed: list[dict] = field(default_factory=list)  # {"name", "old", "new"} (None: added/removed)
    log: str | None = None
    backend: str | None = None
    failed_step: str | None = None
    diagnosis: str | None = None
    tail: tuple[str, ...] = ()
    conflicts: list[dict] = field(default_factory=list)  # the pins an addition ran into, with why
    smoke: list[smoke.CheckResult] = field(default_factory=list)
    skipped: bool = False  # passed over by a batch (message: why); ok, as nothing was tried

    def to_dict(self) -> dict:
        return {"schema_version": 1, "ok": self.ok, "env": self.env, "action": self.action, "skipped": self.skipped,
                "message": self.message, "changed": self.changed, "log": self.log, "backend": self.backend,
                "failed_step": self.failed_step, "diagnosis": self.diagnosis, "tail": list(self.tail),
                "conflicts": self.conflicts, "smoke": [r.to_dict() for r in self.smoke]}


@dataclass(frozen=True)
class EnvPin:
    """A requirement a change of the env may not move, and why: one of its recipe's pins (a
    recipes.model.Pin), a requirement of one of its tools, or a constraint recorded at build."""

    req: str
    why: str = ""
    url: str = ""


def env_pins(data: dict, book) -> list[EnvPin]:
    """The pins of the env's recipe variants (with their why), plus each tool's own requirements
    (extras dropped: constraints cannot have them), so an addition can move neither. Falls back
    to the manifest's constraints where the recipe or variant is gone."""
    out: list[EnvPin] = []
    for tool in data.get("tools", []):
        try:
            variant = book.get(tool["name"]).variant(tool["variant"]) if book is not None else None
        except (NlpsetupError, KeyError):
            variant = None
        if variant is None:
            continue
        out += [EnvPin(p.req, p.why, p.url) for p in variant.pins]
        for raw in variant.packages:
            r = Requirement(raw)
            if r.specifier:
                out.append(EnvPin(f"{r.name}{r.specifier}" + (f"; {r.marker}" if r.marker else ""),
                                  f"{tool['name']} {tool['variant']} requires it"))
    known = {_name(p.req) for p in out}
    return out + [EnvPin(c, "recorded when the env was built (the framework build, or a pin of a recipe now gone)")
                     for c in data.get("constraints", []) if _name(c) not in known]


def main_package(data: dict, book) -> str | None:
    """The main distribution of the env's first tool (spacy for spacy, uptool for a recipe named
    otherwise), from its recipe variant; None where the recipe or variant is gone."""
    tools = data.get("tools") or [{}]
    try:
        variant = book.get(tools[0]["name"]).variant(tools[0]["variant"])
    except (NlpsetupError, KeyError):
        return None
    return variant.main_requirement.name if variant is not None else None


def _name(req: str) -> str:
    try:
        return canonicalize_name(Requirement(req).name)
    except InvalidRequirement:
        return req


def conflicts(pins: list[EnvPin], tail: list[str]) -> list[dict]:
    """The pins a resolver's failure names (pip: "The user requested (constraint) six<1.10"; uv:
    "Because you require six==1.16 and six<1.10"): matched by the pin's project name."""
    text = "\n".join(tail)
    if not _CONFLICT.search(text):
        return []
    words = {canonicalize_name(w) for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)}
    return [{"req": p.req, "why": p.why, "url": p.url} for p in pins if _name(p.req) in words]


def check_packages(packages: list[str]) -> list[str]:
    if not packages:
        raise NlpsetupError("name at least one package to add", hint="for example: nlpsetup add sp six")
    for raw in packages:
        try:
            Requirement(raw)
        except InvalidRequirement as exc:
            raise NlpsetupError(f"{raw!r} is not a package requirement: {exc}",
                                hint="write it as pip would take it: name, name==1.2 or name>=1.2") from None
    return list(packages)


# What a change runs and records, planned from the manifest read under the env's lock: the install
# commands for the env's python, the manifest update, and the pins a resolver failure is matched to.
Prepared = tuple[Callable[[str], list[tuple[str, list[str]]]], Callable[[dict], None], list[EnvPin]]


def add(store: EnvStore, name: str, packages: list[str], book, reporter: Reporter, *, wait: bool = True) -> Change:
    """Install `packages` into env `name` under its recipe's pins, then verify; roll back on failure."""
    packages = check_packages(packages)
    _usable(store, name)
    cfile = paths.cache_dir(store.home) / f"{name}-add-constraints.txt"

    def prepare(data: dict, path: Path) -> Prepared:
        pins = env_pins(data, book)

        def commands(env_python: str) -> list[tuple[str, list[str]]]:
            cfile.parent.mkdir(parents=True, exist_ok=True)
            cfile.write_text("".join(f"{p.req}\n" for p in pins), encoding="utf-8")
            argv = [env_python, "-m", "pip", "install", *packages, *(["-c", str(cfile)] if pins else [])]
            return [(f"install {', '.join(packages)} under the env's pins", argv)]

        def record(new: dict) -> None:
            kept = [a for a in new.get("additions", []) if _name(a) not in {_name(p) for p in packages}]
            new["additions"] = kept + packages

        return commands, record, pins

    return _change(store, name, "add", prepare, reporter, wait=wait)


def upgrade(store: EnvStore, name: str, book, host, reporter: Reporter, *, wait: bool = True,
            as_of: str | None = None) -> Change:
    """Re-resolve env `name` within its recipe variants (their current pins; additions kept) to the
    newest releases they allow, as of the env's recorded date unless `as_of` (a date, latest) says
    otherwise, then verify; roll back on failure."""
    _usable(store, name)

    def prepare(data: dict, path: Path) -> Prepared:
        plans = upgrade_plans(name, data, book, host, store.home, as_of)
        additions = list(data.get("additions", []))
        constraints = list(dict.fromkeys(c for p in plans for c in p.constraints))

        def commands(env_python: str) -> list[tuple[str, list[str]]]:
            env = Env.at(path)
            if constraints:  # the recipe's pins as they are now; atomic: the old file is in the snapshot
                write_atomic(env.constraints_path, "\n".join(constraints) + "\n")
            out = []
            # (not the build tools' resolve: its bounds ride in a step's env, which these commands do not carry)
            steps = [s for p in plans for s in p.steps if s.name in ("framework", "exempt", "resolve", "install")
                     and not s.argv[-1].endswith(BUILD_IN)]
            for i, s in enumerate(steps):
                extra = additions if i == len(steps) - 1 else []
                if s.name == "resolve":  # uv resolves again as of the date, for a pip that cannot
                    from nlpsetup.resolve.backends import find_uv

                    out.append((s.description, [find_uv() or "uv", *s.argv[1:]]))
                    continue
                out.append((s.description.replace("install", "upgrade", 1),
                            [*s.installer, "--upgrade", *s.args, *extra]))
            return out

        def record(new: dict) -> None:
            new["constraints"] = constraints
            new["as_of"] = plans[0].as_of.to_dict() if plans and plans[0].as_of else None
            by_name = {p.tool: p for p in plans}
            for t in new.get("tools", []):
                if (p := by_name.get(t.get("name"))) is not None:
                    t["recipe_digest"], t["smoke"] = p.recipe_digest, p.variant.smoke.to_dict()

        return commands, record, env_pins(data, book)

    return _change(store, name, "upgrade", prepare, reporter, wait=wait)


def upgrade_plans(name: str, data: dict, book, host, home: Path, as_of: str | None = None) -> list:
    """The plans that rebuild each tool of the env on its recorded variant and interpreter, as of its
    recorded date unless `as_of` says otherwise; Skipped for an env built from a lock."""
    from nlpsetup.plan import planning

    for tool in data.get("tools", []):
        if str(tool.get("variant", "")).startswith("lock:"):
            raise Skipped(f"{name} was built from a lock, which pins every version: nothing to upgrade within",
                          hint=f"rebuild it from its recipe: nlpsetup install {tool['name']} --name {name} --force")
    return planning.rebuild(data, name, book, host, home, as_of=as_of)


def _usable(store: EnvStore, name: str) -> Path:
    """The env's folder, or Skipped: no such env (removed meanwhile), or a folder that is not nlpsetup's."""
    try:
        path = store.existing(name)
    except NlpsetupError as exc:
        raise Skipped(exc.message, hint=exc.hint) from None
    if why := store.odd(name):
        raise Skipped(f"{name}: {why}")
    return path


def read_manifest(path: Path) -> dict:
    try:
        return manifest.read(path)
    except manifest.ManifestError as exc:
        raise NlpsetupError(f"{path.name} has no usable manifest: {exc}",
                            hint=f"rebuild it: nlpsetup install TOOL --name {path.name} --force") from None


def changed(before: dict[str, str], after: dict[str, str]) -> list[dict]:
    """What a change did, name by name: old -> new (None for added or removed)."""
    b = {canonicalize_name(k): (k, v) for k, v in before.items()}
    a = {canonicalize_name(k): (k, v) for k, v in after.items()}
    return [{"name": (a.get(k) or b[k])[0], "old": b[k][1] if k in b else None, "new": a[k][1] if k in a else None}
            for k in sorted(a.keys() | b.keys()) if (b.get(k) or (0, None))[1] != (a.get(k) or (0, None))[1]]


def _change(store: EnvStore, name: str, action: str, prepare: Callable[[dict, Path], Prepared],
            reporter: Reporter, *, wait: bool) -> Change:
    from nlpsetup.facts.host import pip_index_settings

    with transaction.locked(store, name, reporter, wait=wait):
        path = _usable(store, name)
        env = Env.at(path)
        data = read_manifest(path)  # read under the lock: an install --force that ran meanwhile is seen
        commands, record, pins = prepare(data, path)
        interp = data.get("interpreter", {})
        env_python, version = interp.get("env_python") or str(env.python), interp.get("version", "3")
        uv_path = backends.find_uv()
        recorded = data.get("backend") if data.get("backend") in ("pip", "uv") else "auto"
        if recorded == "uv" and uv_path is None:  # built with uv, which is gone since: its pip will do
            recorded = "auto"
        backend, _ = backends.choose(recorded, version, uv_path)  # the backend that built it
        if backend == "pip" and not (env.distributions() or {}).get("pip"):
            raise NlpsetupError(f"{name} has no pip (built with --no-pip) and uv is not found",
                                hint="install uv (pip install 'nlpsetup[uv]'), then run this again")
        # uv installs (uv backend) or resolves as of a date (pip backend, old Python): pip's index either way
        base = transaction.base_env(pip_index_settings(dict(os.environ)))
        log_path = transaction.log_path(store.home, name, action)
        before = env.distributions() or {}
        results: list[smoke.CheckResult] = []

        def stopped(exc: KeyboardInterrupt, undo: str | None, committed: bool) -> Interrupted:
            if undo is None:
                return Interrupted(f"interrupted: {action} of {name} stopped before anything changed")
            return Interrupted(f"interrupted: {action} of {name} rolled back ({undo})", hint=f"the log is {log_path}")

        with open(log_path, "w", encoding="utf-8") as log:
            log.write(f"# nlpsetup {action} {name} (backend {backend})\n")
            with transaction.Guard(store, name, log, stopped, snapshot=True, action=action) as guard:
                faults.point(f"before:{action}")
                for description, argv in commands(env_python):
                    run_argv = backends.translate(tuple(argv), backend, uv_path, env_python)
                    _run(action, description, run_argv, backend, base, path, log, reporter)
                faults.point(f"after:{action}")
                results = transaction.run_smoke(smoke_of(data), env_python, path, log=log, base_env=base,
                                                reporter=reporter)
                transaction.check_smoke(results)
                after = env.distributions() or {}
                new = dict(data)
                new.pop("schema_version", None)
                record(new)
                now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                new.update(distributions=after, smoke=[r.to_dict() for r in results], size_bytes=env.size_bytes(),
                           updated=now, history=[*data.get("history", []), {"action": action, "at": now,
                                                                             "log": str(log_path)}])
                guard.keep(path, env_python, smoke_of(new), new)
        if (exc := guard.failed) is not None:
            found = conflicts(pins, list(exc.tail)) if exc.step == action else []
            message = f"{action} {name} failed: {exc.message}; {guard.undo}"
            if found:
                message = (f"{action} {name} failed: it conflicts with the recipe's pin "
                           + "; ".join(f"{c['req']} ({c['why']})" if c["why"] else c["req"] for c in found)
                           + f"; {guard.undo}")
            return Change(False, name, action, message, [], str(log_path), backend, exc.step, exc.diagnosis,
                          exc.tail, found, results)
        diff = changed(before, after)
        what = ", ".join(f"{c['name']} {c['old'] or '(new)'} -> {c['new'] or '(removed)'}" for c in diff)
        return Change(True, name, action, f"{name}: {what or 'nothing changed'}; smoke checks passed",
                      diff, str(log_path), backend, smoke=results)


def _run(action, description, argv, backend, base, path, log, reporter) -> None:
    reporter.step_start(action, description)
    log.write(f"\n## {action}: {description}\n")
    argv, index_env = backends.credentials_to_env(list(argv), backend)  # tokens out of `ps`, as in install
    r = proc.run(argv, env=proc.child_env(index_env, venv=Env.at(path).activation(), base=base),
                 timeout=DEFAULT_STEP_TIMEOUT, log=log)
    reporter.step_end(action, r.ok, r.seconds)
    if not r.ok:
        raise StepFailed(action, r, f"step {action} failed (exit {r.returncode})", diagnose.diagnose(r.tail))


# --- envs --outdated ----------------------------------------------------------------------------


def outdated(store: EnvStore, book, index_url: str | None = None) -> list[dict]:
    """One row per env tool whose main package has a newer release on the index that its recipe
    variant allows (its requirement and pins) than the env holds."""
    from nlpsetup.facts.host import pip_index_settings
    from nlpsetup.index import pages

    settings = pip_index_settings(dict(os.environ))
    indexes = [index_url] if index_url else [settings.index_url or pages.PYPI, *settings.extra_index_urls]
    rows = []
    for name in store.names():
        try:
            data = manifest.read(store.path(name))
        except manifest.ManifestError:
            continue
        # What the env holds now (a pip install inside it changes that), not what was recorded.
        have = {canonicalize_name(k): v for k, v in (Env.at(store.path(name)).distributions() or {}).items()}
        for tool in data.get("tools", []):
            try:
                variant = book.get(tool["name"]).variant(tool["variant"])
            except (NlpsetupError, KeyError):
                variant = None
            if variant is None:
                continue
            req = variant.main_requirement
            pkg = canonicalize_name(req.name)
            specs = [req.specifier] + [Requirement(p.req).specifier for p in variant.pins if _name(p.req) == pkg]
            found, errors = [], []
            for index in indexes:  # every index pip would look in, as pip merges them
                try:
                    found += [f.version for f in pages.published(index, pkg) if not f.version.is_prerelease]
                except Exception as exc:  # noqa: BLE001  (unreachable, no such project, a bad page)
                    errors.append(mask_text(str(exc)))
            if len(errors) == len(indexes):
                rows.append({"env": name, "tool": tool["name"], "package": pkg, "error": errors[0]})
                continue
            allowed = [v for v in found if all(s.contains(v, prereleases=True) for s in specs)]
            installed = _version(have.get(pkg))
            if allowed and installed and max(allowed) > installed:
                rows.append({"env": name, "tool": tool["name"], "package": pkg, "installed": have[pkg],
                             "newest": str(max(allowed)), "upgrade": f"nlpsetup upgrade {name}"})
    return rows



def _version(text: str | None):
    """A recorded version, or None where there is none or it is no PEP 440 version (a legacy one)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None
