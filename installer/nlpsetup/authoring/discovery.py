"""Finding a working env for a package no recipe covers (issue 24): the running part.

One search: the index's page for the package is fetched once; the candidates (`discover`) are
probed for resolution alone (`uv pip compile`, several at once); a candidate that resolves is
installed through the ordinary install transaction (so a failure or Ctrl-C rolls back) with the
derived checks as its smoke check; a failure's diagnosis picks the next attempt; the first verified
candidate wins and is written as a recipe under NLPSETUP_HOME/recipes/discovered/. Attempts are
reported through `on_attempt`, one line each; this module never prints.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from nlpsetup.authoring import diagnosis
from nlpsetup.authoring import search as discover
from nlpsetup.base import files, paths, proc, web
from nlpsetup.base.errors import EXIT_REFUSED, EXIT_USAGE, NlpsetupError
from nlpsetup.base.redact import mask_text
from nlpsetup.facts.host import Host
from nlpsetup.index import pages
from nlpsetup.resolve.cutoff import build_floor

_PROBES = 4  # resolution-only probes at once: each is one uv process, mostly waiting on the index


@dataclass(frozen=True)
class Limits:
    max_attempts: int = 12
    time_limit: float = 1800.0


@dataclass
class Attempt:
    candidate: discover.Candidate
    stage: str  # probe | install
    ok: bool
    why: str
    diagnosis: diagnosis.Diagnosis | None = None
    log: str | None = None  # the install's log (its full output and checks), kept after a failure

    def line(self) -> str:
        verdict = "verified" if self.ok else f"failed at {self.stage}: {self.why}"
        return f"  try {self.candidate.label()}: {verdict}" + (f"  (log: {self.log})" if self.log and not self.ok else "")


def index_of(host: Host) -> str:
    return host.index.index_url or pages.PYPI


def project(index: str, name: str) -> tuple[str, list[discover.Release]]:
    """(the name as the index spells it, its releases), from one fetch of its project page; a name
    the index does not have is a usage error (exit 2)."""
    try:
        page = pages.fetch(pages.project_url(index, name), timeout=60)
    except web.FetchError as exc:
        if ": HTTP 404" in str(exc) or "No such file" in str(exc):
            raise NlpsetupError(f"unknown tool {name!r}: no recipe, and no package of that name on the index "
                                f"{mask_text(index)}",
                                hint="check the spelling (see: nlpsetup list)", exit_code=EXIT_USAGE) from None
        raise NlpsetupError(f"cannot read the index page for {name}: {exc}", hint="check the network or the index URL") from None
    if page.is_json:
        doc = page.document()
    else:  # PEP 503 HTML: file names only, no upload times (so no cutoffs)
        doc = {"name": name, "files": [{"filename": f.filename} for f in page.files()]}
    rels = discover.releases(doc)
    if not rels:
        raise NlpsetupError(f"the index {mask_text(index)} has no final release of {name}",
                            hint="name a release: nlpsetup install NAME==VERSION", exit_code=EXIT_USAGE)
    return str(doc.get("name") or name), rels


def host_minors(host: Host) -> list[str]:
    """The CPython minors installed here (3.x only), newest first."""
    minors = {".".join(p.version.split(".")[:2]) for p in host.pythons
              if p.implementation == "CPython" and p.version.startswith("3.")}
    return sorted(minors, key=lambda m: int(m.split(".")[1]), reverse=True)


def probe(name: str, c: discover.Candidate, host: Host, uv: str | None, work: Path) -> tuple[bool, str]:
    """Whether the candidate resolves (no install): `uv pip compile` for its Python and date."""
    if not uv:
        return True, "no uv to probe with: installing to find out"
    req = work / f"{c.version}-{c.python}-{c.as_of}-{c.binary_only}-{len(c.pins)}-{len(c.needs)}-{c.extra}.in"
    req.write_text("\n".join([c.requirement(name), *(r for r, _ in (*c.pins, *c.needs))]) + "\n", encoding="utf-8")
    argv = [uv, "pip", "compile", str(req), "--python-version", c.python, "--quiet", "--no-header"]
    # This host's interpreter of that minor where it has one; and never a download just to resolve
    # (uv fetches a CPython for --python-version when it finds none: 10-30 s of a probe offline)
    here = next((p.path for p in host.pythons if p.implementation == "CPython" and p.path
                 and p.version.startswith(c.python + ".")), None)
    argv += ["--python", here] if here else []
    if c.as_of:
        argv += ["--exclude-newer", f"{c.as_of}T23:59:59Z", *build_floor(f"{c.as_of}T23:59:59Z")]
    if c.binary_only:
        argv += ["--only-binary", ":all:"]
    env = proc.child_env({**backends_env(host), "UV_NO_PROGRESS": "1", "UV_PYTHON_DOWNLOADS": "never"})
    code, out = proc.capture(argv, env=env, timeout=300, merge_stderr=True)
    return code == 0, mask_text(out)


def backends_env(host: Host) -> dict[str, str]:
    from nlpsetup.resolve.backends import uv_index_env

    return uv_index_env(host.index, os.environ)


def candidate_recipe(name: str, c: discover.Candidate, host_name: str):
    """The candidate as a one-variant recipe whose smoke check is the derived checks."""
    from nlpsetup.recipes import load as recipes

    found = discover.Found(name, c, host=host_name)
    return recipes.parse(discover.recipe_text(found, code=discover.derived_checks(name)), "<discovery>",
                         stem=canonicalize_name(name))


def install(name: str, c: discover.Candidate, host: Host, home: Path, env_name: str, backend: str,
            force: bool, reporter) -> tuple[bool, str, str | None, str | None]:
    """Install one candidate through the install transaction: (verified, why, env path, log)."""
    from nlpsetup.execution import execute
    from nlpsetup.facts import pythons
    from nlpsetup.resolve import model as resolve
    from nlpsetup.resolve import resolve as resolver

    recipe = candidate_recipe(name, c, host_label())
    request = resolve.Request(tool=resolve.ToolRequest(recipe.name), python=pythons.parse_request(c.python),
                              env_name=env_name, fetch_python=c.fetch)
    plan = resolver.resolve(recipe, host, request, envs_root=paths.envs_dir(home))
    if isinstance(plan, resolve.Refusal):
        return False, plan.one_line(), None, None
    outcome = execute.install([plan], host, home, execute.Options(backend=backend, force=force), reporter)
    if outcome.ok:
        return True, "verified", outcome.path, outcome.log
    text = "\n".join([outcome.message, outcome.diagnosis or "", *outcome.tail, *(r.detail for r in outcome.smoke)])
    return False, text, None, outcome.log


def derived(env_path: str, name: str) -> dict:
    """What the derived checks covered in the env, for its recipe: the top-level packages (imports),
    the console scripts (commands), the NLTK data it downloaded into the env (nltk_data), and its
    README's first example where it runs (example)."""
    from nlpsetup.envs.env import Env

    env = Env.at(env_path)
    code, out = proc.capture([str(env.python), "-c", discover.derived_checks(name)],
                             env=proc.child_env({"NLPSETUP_DERIVE": "1"}), timeout=120)
    try:
        doc = json.loads(out.strip().splitlines()[-1]) if code == 0 else {}
    except (ValueError, IndexError):
        doc = {}
    return doc


def host_label() -> str:
    import socket

    return socket.gethostname() or "this host"


def write_recipe(found: discover.Found, target: Path) -> Path:
    files.write_text_atomic(target, discover.recipe_text(found))
    return target


@dataclass
class Result:
    found: discover.Found | None
    attempts: list[Attempt]
    env_path: str | None = None
    recipe_path: Path | None = None
    also: list[discover.Found] = field(default_factory=list)  # `recipe new`: the winners on other Pythons


def search(spec: str, host: Host, home: Path, *, env_name: str | None = None, backend: str = "auto",
           force: bool = False, python: str | None = None, fetch_python: bool = False,
           limits: Limits = Limits(), reporter=None,
           on_start: Callable[[str, int], None] = lambda name, n: None,
           on_attempt: Callable[[Attempt], None] = lambda a: None, write_to: Path | None = None,
           keep: bool = True, prefer: discover.Candidate | None = None) -> Result:
    """Search for a verified env of `spec` (NAME or NAME==VERSION); raises exit 3 when nothing works.
    `keep`: write the winner's recipe (to `write_to`, else the discovered recipes); `prefer`: a
    candidate to try first (another Python's winner, in `search_all`)."""
    from nlpsetup.execution.reporter import NullReporter
    from nlpsetup.resolve import backends

    name, _, asked = spec.partition("==")
    index = index_of(host)
    name, rels = project(index, name.strip())
    if asked and not any(discover.same_version(r.version, asked) for r in rels):
        raise NlpsetupError(f"{name} has no release {asked} on the index {mask_text(index)}",
                            hint=f"the newest is {rels[0].version}: nlpsetup install {name}", exit_code=EXIT_USAGE)
    here = host_minors(host)
    if python:  # one Python asked for: this host's, or (with --fetch-python) uv's download of it
        minors, fetchable = ([python], []) if python in here or not fetch_python else ([], [python])
    else:
        minors, fetchable = here, downloads(host, here, fetch_python)
    queue = discover.candidates(rels, minors, asked or None, fetchable=fetchable)
    if prefer is not None and any(discover.same_version(r.version, prefer.version) and r.fits(prefer.python)
                                  for r in rels):
        queue = [prefer, *(c for c in queue if c != prefer)]
    on_start(name, len(queue))
    reporter = reporter or NullReporter()
    uv = backends.find_uv()
    attempts: list[Attempt] = []
    start = time.monotonic()
    work = paths.cache_dir(home) / "discover" / f"{canonicalize_name(name)}-{os.getpid()}"  # requirement files for probes
    work.mkdir(parents=True, exist_ok=True)
    pool = ThreadPoolExecutor(_PROBES)
    probes: dict[discover.Candidate, Future] = {}

    def probe_of(c: discover.Candidate) -> Future:
        if c not in probes:
            probes[c] = pool.submit(probe, name, c, host, uv, work)
        return probes[c]

    try:
        while queue and len(attempts) < limits.max_attempts and time.monotonic() - start < limits.time_limit:
            # Resolution-only probes of the next candidates, several at once once the first has failed
            # (most searches end at the first; extra probes would only slow its install down).
            for ahead in queue[:_PROBES if attempts else 1]:
                probe_of(ahead)
            c = queue.pop(0)
            ok, out = probe_of(c).result()
            if not ok and c.binary_only and discover.may_build(c, [a.diagnosis for a in attempts
                                                                   if a.candidate.version == c.version], minors):
                built = replace(c, binary_only=False)
                ok, out = probe_of(built).result()
                c = built if ok else c
            if not ok:
                d = diagnosis.diagnose(out, host.os)
                attempt = Attempt(c, "probe", False, d.why, d)
            elif (torch := discover.torch_in(out)) and uv:
                c = replace(c, torch=torch)
            if ok:
                verified, why, env_path, log = install(name, c, host, home, env_name or canonicalize_name(name),
                                                  backend, force, reporter)
                if verified:
                    doc = derived(env_path, name)
                    found = discover.Found(name, c, tuple(doc.get("imports", ())), tuple(doc.get("commands", ())),
                                           host_label(), nltk_data=tuple(doc.get("nltk_data", ())),
                                           example=doc.get("example") or "",
                                           as_of_why=discover.why_cutoff(c, [(a.candidate, a.why) for a in attempts]),
                                           extra_why=discover.why_extra(c, [(a.candidate, a.why) for a in attempts]))
                    attempts.append(Attempt(c, "install", True, "verified"))
                    on_attempt(attempts[-1])
                    target = write_to or paths.discovered_recipes_dir(home) / f"{canonicalize_name(name)}.toml"
                    return Result(found, attempts, env_path, write_recipe(found, target) if keep else None)
                d = diagnosis.diagnose(why, host.os, newest=c.as_of is None)
                attempt = Attempt(c, "install", False, d.why, d, log)
            queue = discover.next_after(c, attempt.diagnosis, queue, [(a.candidate, a.diagnosis) for a in attempts])
            if not asked:
                queue = discover.further_back(rels, c, attempt.diagnosis, queue, minors, fetchable)
            attempts.append(attempt)
            on_attempt(attempt)
    except BaseException:  # Ctrl-C (the install rolled back already) or an error: running probes end now
        proc.stop_all()
        raise
    finally:  # probes still queued are not started
        pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(work, ignore_errors=True)
    raise refusal(name, attempts, rels, minors, time.monotonic() - start >= limits.time_limit,
                  out_of_attempts=bool(queue) and len(attempts) >= limits.max_attempts,
                  fetchable=fetchable or downloads(host, here, True))


def search_all(spec: str, host: Host, home: Path, *, write_to: Path, limits: Limits = Limits(),
               on_attempt: Callable[[Attempt], None] = lambda a: None, **options) -> Result:
    """`recipe new`: the search, then the same for each other Python of this host, the winner's
    setup tried first there (one install where it holds), so the recipe gets one variant per range
    of Pythons that verified here. A Python where nothing verifies is left out; the limits bound
    the whole."""
    start = time.monotonic()
    first = search(spec, host, home, limits=limits, on_attempt=on_attempt, keep=False, force=True, **options)
    won = first.found.candidate
    also, attempts = [], list(first.attempts)
    for minor in host_minors(host):
        left = limits.time_limit - (time.monotonic() - start)
        if minor == won.python or left < 10 or len(attempts) >= limits.max_attempts:
            continue
        try:
            r = search(spec, host, home, python=minor, env_name=f"{canonicalize_name(first.found.name)}-py{minor}",
                       limits=Limits(min(3, limits.max_attempts - len(attempts)), left), on_attempt=on_attempt,
                       keep=False, force=True, prefer=replace(won, python=minor, fetch=False),
                       **{k: v for k, v in options.items() if k not in ("python", "fetch_python", "env_name")})
        except NlpsetupError as exc:
            if exc.exit_code != EXIT_REFUSED:
                raise
            continue  # nothing verified on this Python: the recipe leaves it out
        also.append(replace(r.found, as_of_why=r.found.as_of_why or first.found.as_of_why))
        attempts += r.attempts
    files.write_text_atomic(write_to, discover.recipe_text(first.found, also=also))
    return Result(first.found, attempts, first.env_path, write_to, also)


def blockers(name: str, attempts: list[Attempt], rels: list[discover.Release], minors: list[str],
             fetchable: list[str] = ()) -> list[str]:
    """One line per distinct blocker: what was tried (release, Pythons, dependencies), the diagnosis,
    and the next command a user can type."""
    groups: dict[tuple, list[Attempt]] = {}
    for a in attempts:
        if not a.ok:
            groups.setdefault((a.candidate.version, a.candidate.as_of, a.why), []).append(a)
    lines = []
    for (version, as_of, why), group in groups.items():
        pythons = list(dict.fromkeys(a.candidate.python for a in group))
        tried = {a.candidate.python for a in attempts if a.candidate.version == version}
        d = group[-1].diagnosis or diagnosis.Diagnosis("other", why)
        nxt = discover.next_command(name, group[-1].candidate, d, rels, minors, tried, fetchable)
        deps = f"deps as of {as_of}" if as_of else "latest deps"
        lines.append(f"{name} {version} on Python {', '.join(pythons)} ({deps}): {why} -> next: {nxt}")
    return lines


def refusal(name: str, attempts: list[Attempt], rels: list[discover.Release], minors: list[str],
            timed_out: bool, out_of_attempts: bool = False, fetchable: list[str] = ()) -> NlpsetupError:
    """Exit 3: one line per blocker (what was tried, the diagnosis, the next command). `fetchable`:
    the Pythons uv can download, offered with --fetch-python where the search did not try them."""
    lines = blockers(name, attempts, rels, minors, fetchable) or ["no release has files for the Pythons on this host"]
    fixes = list(dict.fromkeys(a.diagnosis.fix for a in attempts if a.diagnosis and a.diagnosis.fix))
    tried = {a.candidate.python for a in attempts}
    wanted = sorted({m for r in rels[:3] if r.wheel_pythons for m in r.wheel_pythons} - set(minors) - tried,
                    key=lambda m: int(m.split(".")[1]))
    if wanted:
        m = wanted[-1]
        fixes.append(f"nlpsetup install {name} --python {m} --fetch-python (uv downloads CPython {m})" if m in fetchable
                     else f"pyenv install {m} (the newest Python {name}'s wheels are for), then: "
                          f"nlpsetup install {name} --python {m}")
    if timed_out or out_of_attempts or not fixes:
        fixes.append("raise --max-attempts or --time-limit")
    bound = " (time limit reached)" if timed_out else " (attempt limit reached)" if out_of_attempts else ""
    n = len(attempts)
    return NlpsetupError(f"no working env found for {name} after {n} attempt{'s' if n != 1 else ''}{bound}; blockers:\n"
                         + "\n".join(f"  {line}" for line in lines),
                         hint="next: " + "; or ".join(dict.fromkeys(fixes)), exit_code=EXIT_REFUSED)


def first_attempts(spec: str, host: Host, n: int = 5, fetch_python: bool = False) -> tuple[str, list[discover.Candidate]]:
    """What `plan` shows for a package without a recipe: the first candidates a search would try."""
    name, _, asked = spec.partition("==")
    name, rels = project(index_of(host), name.strip())
    minors = host_minors(host)
    return name, discover.candidates(rels, minors, asked or None, fetchable=downloads(host, minors, fetch_python))[:n]


def downloads(host: Host, minors: list[str], fetch_python: bool) -> list[str]:
    """With --fetch-python, the CPython minors uv can download that this host lacks; else none."""
    from nlpsetup.plan.planning import uv_downloads

    return [m for m in uv_downloads(host.tool("uv")) or () if m not in minors] if fetch_python else []
