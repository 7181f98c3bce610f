"""`nlpsetup doctor`: checks of the host, of every env and of one recipe's fit, as findings.

Each check is a Finding (id, status ok / warning / failure, message, and for every warning or
failure one line saying what to do). Host checks are pure functions of the Host value (plus an
injectable index probe), so any host can be diagnosed in tests; env checks run in parallel.
This module never prints."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from nlpsetup.base import paths
from nlpsetup.base.parallel import in_parallel
from nlpsetup.base.redact import mask_text
from nlpsetup.envs import kernels, manifest
from nlpsetup.envs.env import Env, interpreter_runs
from nlpsetup.envs.store import EnvBusy, EnvStore
from nlpsetup.execution import smoke, smokecache
from nlpsetup.execution import verify as envinfo
from nlpsetup.facts import gpu
from nlpsetup.facts.host import Host
from nlpsetup.recipes.model import Recipe, fmt_spec
from nlpsetup.resolve import model as resolve

OK, WARNING, FAILURE = "ok", "warning", "failure"
SCHEMA_VERSION = 1
R = TypeVar("R")
NEWEST_CUDA_MIN_SM = "7.5"  # cu128 and newer carry kernels for sm_75+ only (see data/cuda.toml)


@dataclass(frozen=True)
class Finding:
    id: str
    status: str
    message: str
    fix: str = ""
    env: str | None = None
    path: str | None = None  # the file or folder the finding is about, for --fix to act on

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k not in ("env", "path")}


# --- host ---------------------------------------------------------------------------------


def host_checks(host: Host, *, biggest_mb: int, today: dt.date, versions: dict[str, str | None],
                probe_index: Callable[[str], tuple[bool, str]] | None) -> list[Finding]:
    out = [_os(host)]
    out += _pythons(host, today)
    out += _tools(host, versions)
    out += _gpu(host)
    out.append(_disk(host, biggest_mb))
    out.append(_index(host, probe_index))
    if host.proxies:
        out.append(Finding("host.proxy", OK, "proxy: " + ", ".join(f"{k}={mask_text(v)}" for k, v in host.proxies)))
    return out


def _os(host: Host) -> Finding:
    if host.os == "linux" and host.libc == "musl":
        return Finding("host.os", WARNING, f"{host.describe()}: musl has far fewer binary wheels than glibc",
                       "expect source builds; a glibc-based image (Debian, Ubuntu) avoids them")
    if host.os == "windows":
        return Finding("host.os", WARNING, f"{host.describe()}: several NLP tools ship no Windows wheels",
                       "WSL2 gives you the Linux wheels")
    return Finding("host.os", OK, host.describe())


def _pythons(host: Host, today: dt.date) -> list[Finding]:
    if not host.pythons:
        return [Finding("host.python", FAILURE, "no Python interpreter found",
                        "install one: uv python install 3.12, pyenv install 3.12, or your OS packages")]
    out = []
    for p in host.pythons:
        eol = resolve.PYTHON_EOL.get(p.minor)
        if not resolve.can_host_env(p.version):
            out.append(Finding(f"host.python.{p.version}", WARNING, f"Python {p.version} ({p.source}: {p.path}) "
                               "is too old for any env", "nothing to do unless you need it; nlpsetup ignores it"))
        elif eol and dt.date.fromisoformat(eol) <= today:
            out.append(Finding(f"host.python.{p.version}", WARNING, f"Python {p.version} ({p.source}) reached end "
                               f"of life on {eol}", "fine for legacy recipes that need it; prefer a newer one otherwise"))
        else:
            out.append(Finding(f"host.python.{p.version}", OK, f"Python {p.version} ({p.source}: {p.path})"))
    return out


def _tools(host: Host, versions: dict[str, str | None]) -> list[Finding]:
    out = []
    for name in ("pip", "virtualenv", "uv"):
        v = versions.get(name)
        status = OK if v or name == "pip" else (WARNING if name == "uv" else FAILURE)
        fix = {"uv": "pip install 'nlpsetup[uv]' for faster installs", "virtualenv": "pip install virtualenv"}
        out.append(Finding(f"host.{name}", status, f"{name} {v}" if v else f"{name} not found",
                           "" if status == OK else fix.get(name, "")))
    conda = [t for t in ("conda", "mamba", "micromamba") if host.tool(t)]
    out.append(Finding("host.conda", OK, f"conda tools: {', '.join(conda)}" if conda
                       else "no conda, mamba or micromamba (needed only for --via conda)"))
    out.append(Finding("host.git", OK if host.tool("git") else WARNING,
                       f"git: {host.tool('git')}" if host.tool("git") else "git not found",
                       "" if host.tool("git") else "install git (cookiecutter templates and AutoNLP uploads use it)"))
    out.append(Finding("host.git-lfs", OK if host.tool("git-lfs") else WARNING,
                       f"git-lfs: {host.tool('git-lfs')}" if host.tool("git-lfs") else "git-lfs not found",
                       "" if host.tool("git-lfs") else "AutoNLP uploads need it: apt-get install git-lfs"))
    cc = next((host.tool(t) for t in ("cc", "gcc", "clang") if host.tool(t)), None)
    out.append(Finding("host.compiler", OK if cc else WARNING, f"C compiler: {cc}" if cc else "no C compiler",
                       "" if cc else "old-Python variants build packages from source: apt-get install build-essential"))
    return out


def _gpu(host: Host) -> list[Finding]:
    g = host.gpu
    if host.os == "macos":
        return [Finding("host.gpu", OK, "macOS: PyTorch uses CPU (or MPS) builds" +
                        (" on Apple Silicon" if host.apple_silicon else ""))]
    if not g.driver:
        if g.source == "nvidia-smi" and g.error:  # the tool is there but the driver does not answer
            return [Finding("host.gpu", WARNING, f"NVIDIA driver present but unusable: {g.error}",
                            "fix the driver (a reboot after a driver update often does), or use --compute cpu")]
        return [Finding("host.gpu", OK, f"no NVIDIA GPU in use ({g.error or 'no driver'}): CPU builds of PyTorch")]
    try:
        cudas = gpu.cuda_versions_for_driver(g.driver, host.os)
    except ValueError:
        cudas = []
    out = [Finding("host.gpu.driver", OK if cudas else WARNING,
                   f"NVIDIA driver {g.driver}: runs CUDA {' '.join(cudas[:4]) + (' ...' if len(cudas) > 4 else '')}"
                   if cudas else f"NVIDIA driver {g.driver} runs no CUDA version PyTorch builds for",
                   "" if cudas else "update the driver (CUDA 12 builds need >= 525.60.13)")]
    floor = tuple(int(x) for x in NEWEST_CUDA_MIN_SM.split("."))
    for i, card in enumerate(g.gpus):
        cc = card.compute_capability
        if cc is None:
            out.append(Finding(f"host.gpu.{i}", WARNING, f"{card.name}: compute capability unknown "
                               "(this driver's nvidia-smi cannot report it)", "update the driver to check it"))
        elif tuple(int(x) for x in cc.split(".")) < floor:
            out.append(Finding(f"host.gpu.{i}", WARNING, f"{card.name} is sm_{cc.replace('.', '')}: the newest "
                               f"CUDA builds (cu128+) need sm_75 or newer", "nlpsetup picks cu126 or older for it"))
        else:
            out.append(Finding(f"host.gpu.{i}", OK, f"{card.name} (sm_{cc.replace('.', '')})"))
    return out


def _disk(host: Host, biggest_mb: int) -> Finding:
    free = host.disk_free_bytes
    if free is None:
        return Finding("host.disk", WARNING, "free disk unknown where envs live", "check NLPSETUP_HOME")
    free_mb = free // 2**20
    if free_mb < 1024:
        return Finding("host.disk", FAILURE, f"only {free_mb} MB free where envs live",
                       "free space, or point NLPSETUP_HOME at a larger disk")
    if free_mb < biggest_mb:
        return Finding("host.disk", WARNING, f"{free_mb} MB free; the biggest recipes need about {biggest_mb} MB",
                       "free space before installing the big ones (a CUDA PyTorch env is several GB)")
    return Finding("host.disk", OK, f"{free_mb:,} MB free where envs live")


def probe_early(host: Host, probe: Callable[[str], tuple[bool, str]]) -> Callable[[str], tuple[bool, str]]:
    """Start probing the host's index now, in the background (it is network time that the env
    checks can overlap); the returned probe answers with that result."""
    url = _index_url(host)
    result = _beside(lambda: probe(url))
    return lambda u: result() if u == url else probe(u)


def _index_url(host: Host) -> str:
    return host.index.index_url or "https://pypi.org/simple"


def _index(host: Host, probe: Callable[[str], tuple[bool, str]] | None) -> Finding:
    url = _index_url(host)
    shown = mask_text(url) + (f" (+{len(host.index.extra_index_urls)} extra)" if host.index.extra_index_urls else "")
    if probe is None:
        return Finding("host.index", OK, f"package index {shown} (not probed: --quick)")
    ok, why = probe(url)
    if ok:
        return Finding("host.index", OK, f"package index {shown} answers")
    return Finding("host.index", FAILURE, f"package index {shown} does not answer: {why}",
                   "check your network, proxy variables (HTTPS_PROXY) and PIP_INDEX_URL / pip.conf")


# --- envs ---------------------------------------------------------------------------------


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
        _beside(lambda: _pip_check(path, env_python, data.get("backend")))
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


def _beside(fn: Callable[[], R]) -> Callable[[], R]:
    """Start fn() now in a thread of its own; the returned callable waits for its result."""
    pool = ThreadPoolExecutor(max_workers=1)
    started = pool.submit(fn)
    pool.shutdown(wait=False)
    return started.result


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
    code, out = proc.capture(argv, env=proc.child_env({"PIP_DISABLE_PIP_VERSION_CHECK": "1"}, venv=str(path)),
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


# --- one recipe -----------------------------------------------------------------------------


def tool_checks(recipe: Recipe, host: Host) -> list[Finding]:
    """Each constraint of each variant against this host: the 'why not' answer in one place.
    A variant's unmet constraint is a failure only when no variant fits (else a warning)."""
    chosen = resolve.resolve(recipe, host, resolve.Request(tool=resolve.ToolRequest(recipe.name)),
                             envs_root=Path("/nonexistent"))
    if isinstance(chosen, resolve.Plan):
        head = Finding(f"{recipe.name}.choice", OK, f"this host gets variant {chosen.variant.id} on Python "
                       f"{chosen.python.version}: nlpsetup install {recipe.name}")
    else:
        head = Finding(f"{recipe.name}.choice", FAILURE, chosen.headline, "; ".join(chosen.suggestions[:2]))
    out = [head]
    for v in recipe.variants:
        req = resolve.Request(tool=resolve.ToolRequest(recipe.name), variant=v.id)
        result = resolve.resolve(recipe, host, req, envs_root=Path("/nonexistent"))
        reasons = {r.code: r for rej in getattr(result, "rejected", ()) for r in rej.reasons}
        prefix = f"{recipe.name}.{v.id}"
        out.append(_constraint(prefix, v.id, reasons, "platform", f"platform {host.os}-{host.arch} supported",
                               ("arch",)))
        if v.glibc:
            out.append(_constraint(prefix, v.id, reasons, "glibc",
                                   f"glibc >= {v.glibc}: this host has {host.libc_version or 'n/a'}", ()))
        py = result.python.version if isinstance(result, resolve.Plan) else None
        spec = fmt_spec(v.python)
        out.append(_constraint(prefix, v.id, reasons, "python",
                               f"Python {py} fits {spec}" if py else f"Python {spec}", ("interpreter",)))
        if isinstance(result, resolve.Plan) and result.compute is not None:
            out.append(Finding(f"{prefix}.compute", OK, f"variant {v.id}: {result.compute.backend} build "
                               f"({result.compute.reason})"))
        for tool, why in v.tools:
            found = host.tool(tool)
            out.append(Finding(f"{prefix}.tool.{tool}", OK if found else WARNING,
                               f"variant {v.id}: {tool} {'found' if found else 'not found'} ({why})",
                               "" if found else f"install {tool}"))
    return _soften(out, isinstance(chosen, resolve.Plan))


def _constraint(prefix: str, vid: str, reasons: dict, code: str, ok_text: str, fallback: tuple[str, ...]) -> Finding:
    for c in (code, *fallback):
        if c in reasons:
            return Finding(f"{prefix}.{code}", FAILURE, f"variant {vid}: {reasons[c].message}", reasons[c].fix)
    return Finding(f"{prefix}.{code}", OK, f"variant {vid}: {ok_text}")


def _soften(findings: list[Finding], fits: bool) -> list[Finding]:
    from dataclasses import replace

    return [replace(f, status=WARNING) if fits and f.status == FAILURE and not f.id.endswith(".choice") else f
            for f in findings]


def summary(findings: list[Finding]) -> dict[str, int]:
    return {s: sum(f.status == s for f in findings) for s in (OK, WARNING, FAILURE)}


@dataclass
class Report:
    """What `nlpsetup doctor` found: groups of findings, and what --fix did."""

    groups: list[tuple[str, list[Finding]]]
    fixed: list[str]

    @property
    def findings(self) -> list[Finding]:
        return [f for _, fs in self.groups for f in fs]

    @property
    def failed(self) -> bool:
        return any(f.status == FAILURE for f in self.findings)

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "summary": summary(self.findings),
                "checks": [f.to_dict() for f in self.findings], "fixed": self.fixed}


def run(book, host: Host, home: Path | None, *, tool: str | None = None, quick: bool = False,
        deep: bool = False, do_fix: bool = False) -> Report:
    """The host and every env, or with `tool`, each constraint of its recipe."""
    from nlpsetup.execution.execute import reachable
    from nlpsetup.resolve import backends

    if tool:
        return Report([(f"Recipe {tool}", tool_checks(book.get(tool), host))], [])
    store = EnvStore(home)
    biggest = max((v.size_mb or 0 for r in book.recipes.values() for v in r.variants), default=0)
    probe = None if quick else probe_early(host, lambda u: reachable(u, timeout=3))  # runs beside the env checks
    env_findings = env_checks(store, quick=quick, deep=deep)
    host_findings = host_checks(host, biggest_mb=biggest, today=dt.date.today(), versions=backends.tool_versions(),
                                probe_index=probe)
    fixed = []
    if do_fix:
        fixed = fix(store, env_findings)
        env_findings = env_checks(store, quick=quick, deep=deep)
    return Report([("Host", host_findings), ("Envs", env_findings)], fixed)


def report_env(environ) -> dict[str, str]:
    """The variables a paste-ready report shows (masked by the caller's renderer)."""
    from nlpsetup.base.redact import is_secret_name

    return {k: v for k, v in environ.items()
            if k.startswith(("PIP_", "UV_", "NLPSETUP_", "CUDA", "HF_", "CONDA", "VIRTUAL_ENV", "PYTHON"))
            or k.upper().endswith("_PROXY") or is_secret_name(k)}
