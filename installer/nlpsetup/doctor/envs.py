"""`nlpsetup doctor`'s env checks and `--fix`: interrupted installs, leftovers, orphaned Jupyter
kernels, and for every env its manifest, interpreter, drift, `pip check` and smoke checks (run in
parallel; an env whose files are unchanged since its last checks keeps their result). `fix` repairs
only what nlpsetup can prove it built and nobody is using. This module never prints."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nlpsetup.base import paths
from nlpsetup.base.parallel import in_parallel
from nlpsetup.base.redact import mask_text
from nlpsetup.doctor.finding import FAILURE, OK, WARNING, Finding, beside
from nlpsetup.envs import kernels, manifest
from nlpsetup.envs.env import Env, interpreter_runs
from nlpsetup.envs.store import EnvBusy, EnvStore
from nlpsetup.execution import smoke, smokecache
from nlpsetup.execution import verify as envinfo


def env_checks(store: EnvStore, *, quick: bool, deep: bool = False) -> list[Finding]:
    """`deep` runs every smoke check and pip check afresh; otherwise an env whose files are
    unchanged since its last checks (install, verify or doctor) keeps their result. An env whose
    lock is held is being changed right now: reported as running, never as broken."""
    out: list[Finding] = []
    for j in store.invalid_journals():
        out.append(Finding("env.journal", WARNING, f"{j} names no valid env: ignored (never acted on)",
                           f"remove the file if nothing of yours needs it: rm {j}", path=str(j)))
    running = set()
    for name in store.pending():
        if store.busy(name):
            running.add(name)
            out.append(Finding("env.running", OK, f"{name}: an install or remove is running", env=name))
        else:
            out.append(Finding("env.interrupted", FAILURE, f"an install or remove of {name} was interrupted",
                               "nlpsetup doctor --fix (puts the previous env back or removes the half-built one)", name))
    try:
        entries = sorted(store.envs.iterdir())
    except OSError:
        entries = []
    for p in entries:
        owner = paths.leftover_owner(p.name)
        if owner is None or (paths.is_failed_name(p.name) and Env.at(p).manifest_path.is_file()):
            continue  # an env (a working one may predate the reserved suffix), or not ours to judge
        if owner in running or store.busy(owner):
            continue  # the backup of an install that is running: the old env, to be restored if it fails
        ours = _leftover_is_ours(p)
        out.append(Finding("env.leftover", WARNING, f"leftover of an interrupted or failed install: {p}",
                           "nlpsetup doctor --fix removes it" if ours else
                           "nlpsetup finds no mark of its own on it, so leaves it to you", path=str(p)))
    for t in store.leftover_temps():
        if t.parent == store.journals:  # trash in envs/ is reported above
            out.append(Finding("env.leftover", WARNING, f"leftover of a killed nlpsetup: {t}",
                               "nlpsetup doctor --fix removes it", path=str(t)))
    for env, folder in kernels.orphans():  # a Jupyter kernel that would fail to start
        mine = kernels.recorded_path(folder) == str(store.path(env))  # else another home's: not ours to remove
        out.append(Finding("env.kernel", WARNING, f"Jupyter kernel {folder.name} points at env {env}, which is gone",
                           f"nlpsetup kernel {env} --remove" if mine else f"remove it: rm -r {folder}", env,
                           str(folder)))
    pending = set(store.pending())
    names = [n for n in store.names() if paths.leftover_owner(n) is None and n not in pending]
    for n in [n for n in names if store.busy(n)]:
        names.remove(n)
        out.append(Finding("env.running", OK, f"{n}: an install or remove is running", env=n))
    # Two per CPU: an env's checks wait on the disk (imports) and on uv (pip check) as much as they
    # compute, and one per CPU left the third of three envs waiting for a slot (bench_verify figure 3).
    for findings in in_parallel(lambda n, cancel: _one_env(store.path(n), quick, deep, cancel), names,
                                      cost=lambda n: smokecache.expected_seconds(store.path(n)), per_cpu=2):
        out += findings
    return out


def _leftover_is_ours(p: Path) -> bool:
    """A trash folder's name is nlpsetup's alone (a leading '.', pid-suffixed); a backup or a kept
    failed env must carry nlpsetup's marker, and a .failed one no manifest (a working env)."""
    if p.is_symlink():
        return p.name.startswith(".")  # our backup of an env that was a link: unlinking it is harmless
    if paths.TRASH_INFIX in p.name:
        return True
    env = Env.at(p)
    if paths.is_failed_name(p.name):
        return env.marker_path.is_file() and not env.manifest_path.exists()
    return env.built_by_nlpsetup()


def _one_env(path: Path, quick: bool, deep: bool = False, cancel=None) -> list[Finding]:
    name = path.name
    try:
        data = manifest.read(path)
    except manifest.ManifestError as exc:
        env = Env.at(path)
        if not env.manifest_path.exists() and not env.built_by_nlpsetup():
            return [Finding("env.foreign", WARNING, f"{name} was not built by nlpsetup (no manifest, no marker): "
                            "left alone", f"move it out of {path.parent} if it is yours", name)]
        if not env.manifest_path.exists():
            return [Finding("env.half-built", FAILURE, f"{name} is half-built (no manifest): {exc}",
                            "nlpsetup doctor --fix removes it", name)]
        return [Finding("env.manifest", FAILURE, f"{name}: {exc}",
                        f"rebuild it: nlpsetup install TOOL --name {name} --force", name)]
    interp = data.get("interpreter", {})
    env_python = interp.get("env_python", "")
    rebuild = envinfo.repair_command(name, data)  # as it was built: tools, variants, Python, additions, lock
    broken = [Finding("env.interpreter", FAILURE, f"{name}: its interpreter no longer runs "
                      f"({interp.get('path') or env_python}; was that Python removed?)", f"rebuild it: {rebuild}", name)]
    if not os.path.exists(env_python):
        return broken
    smokes = envinfo.smoke_of(data)
    fp = "" if quick else smokecache.fingerprint(path, env_python, smokes)  # --quick stats no RECORD
    before = {} if quick or deep else (smokecache.saved(path, fp) or {})
    fresh = not quick and "smoke" not in before
    # Smoke checks run afresh start the interpreter anyway: a start of its own only explains their failure.
    if not (quick or fresh or interpreter_runs(env_python)):
        return broken
    out = [Finding("env.interpreter", OK, f"{name}: Python {interp.get('version')} runs", env=name)]
    current = Env.at(path).distributions()
    if current is not None:
        d = envinfo.drift(data.get("distributions", {}), current)
        if any(d.values()):
            what = "; ".join(f"{k}: {', '.join(v[:3])}{' ...' if len(v) > 3 else ''}" for k, v in d.items() if v)
            out.append(Finding("env.drift", WARNING, f"{name}: changed since install ({what})",
                               f"nlpsetup verify {name}; or rebuild: {rebuild}", name))
        else:
            out.append(Finding("env.drift", OK, f"{name}: distributions match the manifest", env=name))
    if quick:
        return out
    # The pip check runs beside the smoke checks: one waits on uv, the other on imports.
    pip_check = (lambda: Finding(**before["pip_check"])) if "pip_check" in before else \
        beside(lambda: _pip_check(path, env_python, data.get("backend")))
    if fresh:
        results, when = [r for s in smokes for r in smoke.run_all(s, env_python, path, cancel=cancel)], ""
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
    else:
        results, when = smokecache.results_of(before), " (files unchanged since last run; --deep runs them again)"
    failed = [r for r in results if not r.passed]
    if fresh and failed and not interpreter_runs(env_python):
        return broken
    out.append(pip_check())
    if "pip_check" not in before:
        smokecache.save(path, fp, pip_check=out[-1].to_dict())
    if fresh:
        smokecache.save(path, fp, smoke=[r.to_dict() for r in results])
    out.append(Finding("env.smoke", FAILURE if failed else OK,
                       f"{name}: {smoke.failure_message(failed[0])}{when}" if failed
                       else f"{name}: {len(results)} smoke check(s) pass{when}",
                       f"rebuild it: {rebuild}" if failed else "", name))
    return out


def _pip_check(path: Path, env_python: str, backend: str | None) -> Finding:
    from nlpsetup.base import proc
    from nlpsetup.resolve import backends

    uv = backends.find_uv()
    if uv:  # the same check as pip's in ~20 ms instead of ~0.5 CPU-seconds of pip's own import
        argv = [uv, "pip", "check", "-q", "--python", env_python]
    elif Env.at(path).script("pip").exists():
        argv = [env_python, "-m", "pip", "check"]
    else:
        return Finding("env.pip-check", OK, f"{path.name}: no pip or uv to check dependencies with", env=path.name)
    code, out = proc.capture(argv, env=proc.child_env({"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                                                       venv=Env.at(path).activation()),
                             merge_stderr=True)  # uv reports on stderr
    if code == 0:
        return Finding("env.pip-check", OK, f"{path.name}: dependencies consistent ({'uv ' if uv else ''}pip check)",
                       env=path.name)
    first = next((ln for ln in out.splitlines() if ln.strip() and not ln.startswith("Found ")), "inconsistent")
    return Finding("env.pip-check", WARNING, f"{path.name}: {mask_text(first)}",
                   "a pin may be missing from the recipe; see nlpsetup verify", path.name)


def fix(store: EnvStore, findings: list[Finding]) -> list[str]:
    """Repair what is safe: finish interrupted installs, remove half-built envs and leftovers.
    Only what nlpsetup can prove it built (its marker) and nobody is using (the env's lock is
    free) is deleted, and nothing through an envs/ that is a link to somewhere else. A working env
    is never deleted; broken ones get the command that rebuilds them."""
    done = []
    for r in [*store.clean_leftovers(), *store.recover_all()]:
        done.append(f"{r.env}: {r.action}")
    if store.envs.is_symlink():
        return done + [f"not changed: {store.envs} is a link to {os.path.realpath(store.envs)}; "
                       "--fix deletes nothing there (remove leftovers yourself)"]
    for f in findings:
        if f.id == "env.half-built" and f.env:
            path = store.path(f.env)
            try:
                with store.lock(f.env, wait=False):
                    env = Env.at(path)
                    if env.built_by_nlpsetup() and not env.manifest_path.exists():
                        shutil.rmtree(path, ignore_errors=True)
                        done.append(f"{f.env}: removed the half-built env")
            except EnvBusy:
                done.append(f"{f.env}: not changed; an install of it is running")
        elif f.id == "env.leftover" and f.path:
            p = Path(f.path)
            owner = paths.leftover_owner(p.name)
            if p.parent != store.envs or owner is None or not _leftover_is_ours(p):
                continue
            try:
                with store.lock(owner, wait=False):
                    if p.is_symlink():
                        p.unlink()
                    elif p.exists():
                        shutil.rmtree(p, ignore_errors=True)
                    done.append(f"removed {p}")
            except EnvBusy:
                done.append(f"not changed: {p} (an install of {owner} is running)")
        elif f.status == FAILURE and f.id in ("env.interpreter", "env.manifest", "env.smoke"):
            done.append(f"{f.env}: not changed; {f.fix}")
    return done
