"""Finding a working env for a package no recipe covers (issue 24): the pure part.

From the index's page for the package (PEP 691 JSON, PEP 700 upload times) to its releases; from
releases and the host's Pythons to the candidates in the order an expert tries them (release newest
first, Python newest first among those the release has wheels for, dependencies `latest` before
a cutoff near the release's upload date); from a failed attempt's diagnosis (diagnosis.py) to the
next attempt; from the winning candidate to recipe TOML. Running probes and installs is discovery.py's
job.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nlpsetup.authoring.diagnosis import NUMPY_ABI, REMOVED_FROM_PYTHON, Diagnosis
from nlpsetup.index.pages import release_of
from nlpsetup.resolve.cutoff import cpython_released

CUTOFF_MARGIN = dt.timedelta(days=60)  # dependency fixes released shortly after the package still count


@dataclass(frozen=True)
class Release:
    version: str
    uploaded: dt.date | None  # the earliest upload time of its files
    requires_python: str | None
    wheel_pythons: frozenset[str] | None  # minors ("3.8") its wheels are tagged for; None: a pure or abi3 wheel, or an sdist
    has_wheels: bool = True  # False: sdists only, so a wheels-only candidate cannot work

    def fits(self, minor: str) -> bool:
        if self.requires_python:
            try:
                if not SpecifierSet(self.requires_python).contains(f"{minor}.0", prereleases=True):
                    return False
            except InvalidSpecifier:
                pass
        return self.wheel_pythons is None or minor in self.wheel_pythons


def _wheel_minors(filename: str) -> set[str] | None:
    """The CPython minors a wheel is only for, or None when any Python 3 can take it (py3, abi3)."""
    parts = filename[:-4].split("-")
    minors: set[str] = set()
    for tag in parse_tag("-".join(parts[-3:])):
        if tag.interpreter.startswith(("py3", "py2.py3")) or tag.abi == "abi3":
            return None
        if m := re.fullmatch(r"cp3(\d+)", tag.interpreter):
            minors.add(f"3.{m.group(1)}")
    return minors


def releases(doc: dict) -> list[Release]:
    """The releases on a PEP 691 project page (as a dict), newest first, without yanked or pre-releases."""
    by_version: dict[Version, list[dict]] = {}
    for f in doc.get("files", []) if isinstance(doc, dict) else []:
        if not isinstance(f, dict) or not isinstance(f.get("filename"), str) or f.get("yanked"):
            continue
        found = release_of(f["filename"])
        if found and not found[1].is_prerelease and not found[1].is_devrelease:
            by_version.setdefault(found[1], []).append(f)
    out = []
    for version in sorted(by_version, reverse=True):
        files = by_version[version]
        times = sorted(str(f["upload-time"])[:10] for f in files if isinstance(f.get("upload-time"), str))
        minors: set[str] | None = set()
        for f in files:
            wheel = _wheel_minors(f["filename"]) if f["filename"].endswith(".whl") else None
            minors = None if wheel is None or minors is None else minors | wheel
        rp = next((f.get("requires-python") for f in files if isinstance(f.get("requires-python"), str)), None)
        out.append(Release(str(version), dt.date.fromisoformat(times[0]) if times else None, rp or None,
                           frozenset(minors) if minors is not None else None,
                           any(f["filename"].endswith(".whl") for f in files)))
    return out


@dataclass(frozen=True)
class Candidate:
    version: str
    python: str  # a minor: "3.8"
    as_of: str | None  # "2021-12-31", or None for the newest dependencies
    binary_only: bool = True
    pins: tuple[tuple[str, str], ...] = ()  # (requirement, why) a diagnosis added
    torch: str | None = None  # the torch release the probe resolved: installed as a framework (CPU or CUDA build)
    needs: tuple[tuple[str, str], ...] = ()  # (requirement, why): a dependency its code needs but does not declare
    fetch: bool = False  # a Python this host lacks, downloaded by uv (--fetch-python)
    extra: str | None = None  # one of the package's extras (what a failure lacked may come with it)

    def requirement(self, name: str) -> str:
        return f"{name}[{self.extra}]=={self.version}" if self.extra else f"{name}=={self.version}"

    def label(self) -> str:
        return (f"{self.version}{f'  [{self.extra}]' if self.extra else ''}  Python {self.python}{' (uv download)' if self.fetch else ''}  "
                f"{'deps as of ' + self.as_of if self.as_of else 'latest'}"
                f"  {'wheels only' if self.binary_only else 'builds allowed'}"
                + "".join(f"  +{req}" for req, _ in self.pins) + "".join(f"  needs {req}" for req, _ in self.needs)
                + (f"  torch {self.torch} (CPU/CUDA build)" if self.torch else ""))


def _minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(x) for x in minor.split("."))


def torch_in(resolved: str) -> str | None:
    """The torch version in a probe's resolution (`uv pip compile` output), without a local tag."""
    m = re.search(r"^torch==([\w.]+)", resolved, re.M)
    return m.group(1) if m else None


def cutoff_for(release: Release) -> str | None:
    return (release.uploaded + CUTOFF_MARGIN).isoformat() if release.uploaded else None


def candidates(rels: list[Release], minors: list[str], asked: str | None = None,
               max_releases: int = 3, fetchable: list[str] = ()) -> list[Candidate]:
    """Every candidate in the order they are tried: release, then Python (this host's first, then
    those uv can download, when `fetchable` names them), then cutoff."""
    if asked is not None:
        rels = [r for r in rels if same_version(r.version, asked)]
    else:
        rels = rels[:max_releases]
    out = []
    downloads = sorted(set(fetchable) - set(minors), key=_minor_key, reverse=True)
    for r in rels:
        for minor, fetch in [(m, False) for m in sorted(set(minors), key=_minor_key, reverse=True)] + \
                [(m, True) for m in downloads]:
            if not r.fits(minor):
                continue
            out.append(Candidate(r.version, minor, None, r.has_wheels, fetch=fetch))
            if (date := cutoff_for(r)) and r.uploaded and r.uploaded < dt.date.today() - CUTOFF_MARGIN:
                out.append(Candidate(r.version, minor, date, r.has_wheels, fetch=fetch))
    return out


def same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


# --- what the search does with a diagnosis (diagnosis.py makes them) -----------------------


def blocks_builds(d: Diagnosis) -> bool:
    """A failure that every other build of this release would meet too (the host lacks a tool)."""
    return d.kind in ("compiler", "header", "rust", "jvm")


def may_build(c: Candidate, earlier: list[Diagnosis | None], minors: list[str] = ()) -> bool:
    """Whether a candidate without wheels for everything is worth a build: not when an earlier build
    of the same release met a host that lacks a build tool, nor with a cutoff older than its Python
    while this host (`minors`) has a Python of then: that build would compile every dependency of
    then from source (numpy's for minutes), where the older Python may take their wheels."""
    if c.as_of and not _predates(c.python, c.as_of) and any(_predates(m, c.as_of) for m in minors):
        return False
    return not any(d is not None and blocks_builds(d) for d in earlier)


def _predates(minor: str, as_of: str | None) -> bool:
    """Whether a Python came out before a cutoff (so wheels for it may exist as of then); any Python
    for the newest dependencies."""
    released = cpython_released().get(minor)
    return as_of is None or released is None or released <= dt.date.fromisoformat(as_of)


def next_after(failed: Candidate, d: Diagnosis, queue: list[Candidate],
               tried: list[tuple[Candidate, Diagnosis | None]] = ()) -> list[Candidate]:
    """The queue after `failed` with its diagnosis (`tried`: the earlier failures): a pin retries the
    same candidate first; a host that lacks a build tool drops the other builds of the release; the
    same diagnosis on two Pythons for the same release and cutoff does not depend on the Python, so
    the other Pythons of that release and cutoff are dropped and the search moves on to what can
    change the outcome (the cutoff, an older release). With a dated cutoff, Pythons newer than the
    cutoff (no wheels of their own as of then) and older ones count apart: the older ones may have
    the wheels the newer lack."""
    if d.pin and d.pin not in failed.pins:
        return [replace(failed, pins=(*failed.pins, d.pin)), *queue]
    if d.extras and failed.extra is None and not any(c.extra for c, _ in tried if c.version == failed.version):
        # a failure no other date or Python explains: what it lacks may come with an extra (a dictionary,
        # a backend), tried one at a time before the rest; once per release
        return [replace(failed, extra=e) for e in d.extras] + queue
    if d.kind in ("network", "library"):  # the host lacks it: no other Python or date of the release helps;
        # an older release may not need it, but not once two releases met the same (except NLTK data:
        # see further_back)
        again = not nltk_data(d) and any(e is not None and (e.kind, e.why) == (d.kind, d.why)
                                         and c.version != failed.version for c, e in tried)
        return [] if again else [c for c in queue if c.version != failed.version]
    if d.below:  # this release needs an older Python: the newer ones are done for it, whatever the date
        queue = [c for c in queue if not (c.version == failed.version and _minor_key(c.python) >= _minor_key(d.below))]
    if new := [n for n in d.needs if n[0] not in {req for req, _ in failed.needs}]:
        failed = replace(failed, needs=(*failed.needs, *new))
        queue = [failed, *queue]
    # what the package's code needs, every other candidate of it needs too (a pin is for its date only)
    queue = [replace(c, needs=(*c.needs, *(n for n in failed.needs if n not in c.needs))) for c in queue]
    if d.needs:
        return queue
    if blocks_builds(d):
        queue = [c for c in queue if not (c.version == failed.version and not c.binary_only)]
    key = (failed.version, failed.as_of, failed.pins, failed.extra)
    side = _predates(failed.python, failed.as_of)
    same = {c.python for c, e in [*tried, (failed, d)]
            if e is not None and (c.version, c.as_of, c.pins, c.extra) == key and (e.kind, e.why) == (d.kind, d.why)
            and _predates(c.python, c.as_of) == side}
    if len(same) >= 2:
        queue = [c for c in queue
                 if not ((c.version, c.as_of, c.pins, c.extra) == key and _predates(c.python, c.as_of) == side)]
    return queue


def nltk_data(d: Diagnosis) -> bool:
    return d.kind == "network" and d.why.startswith("it needs NLTK data")


def further_back(rels: list[Release], failed: Candidate, d: Diagnosis, queue: list[Candidate], minors: list[str],
                 fetchable: list[str] = ()) -> list[Candidate]:
    """The queue, and after NLTK data the host cannot have, the next older release when the queue
    holds none: an older release may predate the need (textstat before it took cmudict from nltk),
    so the search walks back past the newest three, one attempt each. (A model from a hub is what
    every release of such a package downloads: transformers' README pipeline.)"""
    if not nltk_data(d) or any(Version(c.version) < Version(failed.version) for c in queue):
        return queue
    older = [r for r in rels if Version(r.version) < Version(failed.version)]
    return queue + candidates(older[:1], minors, fetchable=fetchable)


def next_command(name: str, c: Candidate, d: Diagnosis, rels: list[Release], minors: list[str],
                 tried: set[str], fetchable: list[str] = ()) -> str:
    """The next command a user can type after a blocker: the host's fix where it lacks a tool, else a
    Python or an older release that may have wheels (`minors`: this host's Pythons, `tried`: the
    Pythons the search tried for this release, `fetchable`: those uv can download)."""
    if d.fix:
        return d.fix
    rel = next((r for r in rels if same_version(r.version, c.version)), None)
    # an older Python has older wheels (of the package and of its dependencies)
    older = [m for m in sorted(minors, key=_minor_key, reverse=True)
             if m not in tried and _minor_key(m) < _minor_key(c.python) and (rel is None or rel.fits(m))]
    if older:
        return f"nlpsetup install {name}=={c.version} --python {older[0]}"
    wanted = [m for m in sorted((rel.wheel_pythons or ()) if rel else (), key=_minor_key) if m not in minors]
    if wanted:
        m = wanted[-1]
        if m in fetchable and m not in tried:
            return f"nlpsetup install {name}=={c.version} --python {m} --fetch-python (uv downloads CPython {m})"
        return (f"pyenv install {m} (the newest Python its wheels are for), then: "
                f"nlpsetup install {name}=={c.version} --python {m}")
    earlier = [r for r in rels if Version(r.version) < Version(c.version)]
    if earlier:
        return f"nlpsetup install {name}=={earlier[0].version}"
    return "raise --max-attempts or --time-limit"


# --- the recipe it writes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    name: str  # as the index spells it
    candidate: Candidate
    imports: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    host: str = ""
    date: str = field(default_factory=lambda: dt.date.today().isoformat())
    summary: str = ""
    as_of_why: str = ""  # what the newest dependencies did, when the winner has a cutoff
    extra_why: str = ""  # what failed without the winner's extra
    nltk_data: tuple[str, ...] = ()  # NLTK data its code needs, downloaded into the env
    example: str = ""  # its README's first example, which ran in the verified env


def why_cutoff(winner: Candidate, failed: list[tuple[Candidate, str]]) -> str:
    """Why the winner needs its cutoff: the failure of the same release and Python with the newest
    dependencies (the diagnosis the next attempt followed), else of the same release on another Python
    (the search skips the Pythons a failure does not depend on)."""
    latest = [(c, why) for c, why in failed if c.as_of is None and c.version == winner.version]
    return next((why for c, why in latest if c.python == winner.python), latest[-1][1] if latest else "")


def why_extra(winner: Candidate, failed: list[tuple[Candidate, str]]) -> str:
    """Why the winner needs its extra: the failure of the same candidate without one."""
    plain = replace(winner, extra=None, torch=None)
    return next((why for c, why in failed if replace(c, torch=None) == plain), "") if winner.extra else ""


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a TOML basic string is a JSON string for the characters used here


def python_range(minor: str, last: str | None = None) -> str:
    """The Pythons from `minor` to `last` (itself by default): ">=3.8,<3.9", ">=3.8,<3.11"."""
    major, m = (last or minor).split(".")
    return f">={minor},<{major}.{int(m) + 1}"


def same_setup(a: Candidate, b: Candidate) -> bool:
    """Whether two winners differ only in their Python (one variant can hold both)."""
    return replace(a, python="", fetch=False) == replace(b, python="", fetch=False)


def variants_of(found: list[Found]) -> list[tuple[Found, list[str]]]:
    """The verified winners, one per Python, as variants: neighbouring Pythons with the same setup
    (release, date, wheels only, pins, torch) share one variant, newest Pythons first."""
    out: list[tuple[Found, list[str]]] = []
    for f in sorted(found, key=lambda f: _minor_key(f.candidate.python), reverse=True):
        if out and same_setup(out[-1][0].candidate, f.candidate) and \
                _minor_key(out[-1][1][-1])[1] - _minor_key(f.candidate.python)[1] == 1:
            out[-1][1].append(f.candidate.python)
        else:
            out.append((f, [f.candidate.python]))
    return out


def recipe_text(found: Found, code: str | None = None, also: list[Found] = ()) -> str:
    """A recipe for what was found (`code` replaces the explicit checks while still searching);
    `also`: the winners on other Pythons (`recipe new`), one variant per range of them."""
    name = canonicalize_name(found.name)
    lines = [
        f"# Discovered by nlpsetup on {found.host or 'this host'} on {found.date}: a verified env, not a hand-written recipe.",
        f"name = {_toml_str(name)}",
        f"summary = {_toml_str(found.summary or f'{found.name} (discovered)')}",
        f"homepage = {_toml_str(f'https://pypi.org/project/{name}/')}",
        'status = "active"',
        f"notes = {_toml_str(f'discovered on {found.host or chr(63)} on {found.date}; nlpsetup recipe new {name} searches again')}",
    ]
    for f, pythons in variants_of([found, *also]):
        lines += ["", *_variant_lines(f, pythons, code)]
    return "\n".join(lines) + "\n"


def _variant_lines(found: Found, pythons: list[str], code: str | None) -> list[str]:
    c = found.candidate
    lo, hi = pythons[-1], pythons[0]
    shown = lo if lo == hi else f"{lo} to {hi}"
    # an undeclared dependency is one more package (torch comes as the framework: the host's build)
    packages = [req for req, _ in c.needs if not (c.torch and canonicalize_name(req) == "torch")]
    python_reason = f"discovered: verified with Python {shown} on this host" + (
        " (a CPython uv downloaded: install it again with --fetch-python)" if c.fetch else "")
    lines = [
        "[[variants]]",
        f"id = {_toml_str(f'{c.version}-py{lo}' + ('' if lo == hi else f'-{hi}'))}",
        f"python = {_toml_str(python_range(lo, hi))}",
        f"python_reason = {_toml_str(python_reason)}",
        f"packages = [{', '.join(map(_toml_str, [c.requirement(found.name), *packages]))}]",
    ]
    if c.extra:
        lines.append(f"# [{c.extra}]: {found.extra_why or 'without it, its checks failed'}")
    lines += [f"# {req}: {why}" for req, why in c.needs]
    if c.torch:  # from PyTorch's index, the CPU or CUDA build this host needs (as the hand-written recipes do)
        lines.append(f"framework = {{ torch = {_toml_str('==' + c.torch)} }}")
    if c.as_of:
        why = found.as_of_why or "the newest dependencies did not resolve or verify"
        lines.append(f"as_of = {_toml_str(c.as_of)}  # {why}".replace("\n", " "))
    if c.binary_only:
        lines.append('only_binary = [":all:"]  # verified from wheels alone: no build on the host')
    for req, why in c.pins:
        lines += ["[[variants.pins]]", f"req = {_toml_str(req)}", f"why = {_toml_str(why)}"]
    lines.append("[variants.smoke]")
    if code is not None:
        lines.append(f"code = {_toml_str(code)}")
    else:
        lines.append(f"imports = [{', '.join(map(_toml_str, found.imports))}]")
        if found.commands:
            lines.append("commands = [" + ", ".join(f"[{_toml_str(s)}, \"--help\"]" for s in found.commands) + "]")
        # what the derived checks downloaded, fetched again by an install of this recipe; then its example
        code = (NLTK_DATA.format(list(found.nltk_data)) if found.nltk_data else "") + (
            f"# its README's first example\n{found.example.strip()}\n" if found.example else "")
        if code:
            lines.append(f"code = {_toml_str(code)}")
    lines.append("timeout = 300")
    return lines


# The NLTK data its code needs, downloaded into the env where nltk finds none (the derived checks did
# the same while searching): nltk raises LookupError until its data is there.
NLTK_DATA = """import glob, os, sys
import nltk
for name in {0!r}:  # NLTK data its code needs (discovered)
    if not any(glob.glob(os.path.join(d, "*", name + ext)) for d in nltk.data.path for ext in ("", ".zip")):
        assert nltk.download(name, download_dir=os.path.join(sys.prefix, "share", "nltk_data"), quiet=True,
                             raise_on_error=True), name
"""

# a program for the env's interpreter: what a package does when used, then the checks that call it
DERIVED_CHECKS = (Path(__file__).with_name("usechecks.py"), Path(__file__).with_name("derivedchecks.py"))


def derived_checks(name: str) -> str:
    """The derived checks for a distribution, as code for the smoke harness (see derivedchecks.py)."""
    removed = sorted(n for names in REMOVED_FROM_PYTHON.values() for n in names)
    return (f"NAME = {re.sub(r'[-_.]+', '_', name).lower()!r}\nREMOVED = {removed!r}\nNUMPY_ABI_PATTERN = {NUMPY_ABI!r}\n"
            + "\n".join(part.read_text(encoding="utf-8") for part in DERIVED_CHECKS))
