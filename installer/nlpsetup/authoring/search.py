"""Finding a working env for a package no recipe covers (issue 24): the pure part.

From the index's page for the package (PEP 691 JSON, PEP 700 upload times) to its releases; from
releases and the host's Pythons to the candidates in the order an expert tries them (release newest
first, Python newest first among those the release has wheels for, dependencies `latest` before
a cutoff near the release's upload date); from a failed attempt's output to a diagnosis that picks
the next attempt; from the winning candidate to recipe TOML. Running probes and installs is
`discovery_run`'s job.
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

    def label(self) -> str:
        return (f"{self.version}  Python {self.python}{' (uv download)' if self.fetch else ''}  "
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


# --- diagnosis -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # numpy-build | numpy-abi | pkg-resources | api | import | compiler | header | jvm | rust | no-wheels | resolve | other
    why: str  # one line, also the `why` of the pin it leads to
    fix: str = ""  # the next command a user can type, where the host lacks something
    pin: tuple[str, str] | None = None  # a pin to retry the same candidate with
    needs: tuple[tuple[str, str], ...] = ()  # packages to retry the same candidate with (its code imports them)
    below: str | None = None  # the first Python without what it needs (a stdlib name or module it removed)


_RULES: tuple[tuple[str, str, str], ...] = (
    # (kind, pattern, why): the first that matches the output wins
    ("numpy-build", r"numpy\.ndarray has the wrong size, try recompiling",
     "compiled against another numpy than the one it runs with (numpy ABI mismatch)"),
    ("numpy-abi", r"numpy\.core\.multiarray failed to import|compiled using NumPy 1\.x cannot be run in"
                  r"|numpy\.dtype size changed|_ARRAY_API not found",
     "built against numpy 1.x: the newest numpy breaks its import (numpy ABI mismatch)"),
    ("pkg-resources", r"No module named '?pkg_resources'?",
     "imports pkg_resources, which setuptools 81 removed"),
    ("header", r"fatal error: ([\w./+-]+\.h): No such file", "a C header is missing: {0}"),
    ("compiler", r"command '(\w*(?:gcc|cc|g\+\+|clang)\w*)' failed|error: (?:Microsoft Visual C\+\+|unable to find vcvarsall)"
                 r"|No such file or directory: '(?:gcc|cc|g\+\+)'", "a build needs a C compiler ({0})"),
    ("rust", r"can't find Rust compiler|rustc.*not found|cargo.*not found", "a build needs the Rust compiler"),
    ("jvm", r"JAVA_HOME|No Java runtime|JVM DLL not found|libjvm", "it needs a Java runtime (JVM)"),
    # uv: "hint: Wheels are required for `cytoolz` because building from source is disabled ...",
    # "hint: You require CPython 3.13 (`cp313`), but we only found wheels for `torch` (v1.3.1) with ..."
    ("no-wheels", r"wheels are required for `?([\w.-]+)`?|([\w.-]+)==[\w.]+ has no (?:usable|compatible) wheels"
                  r"|we only found wheels for `([\w.-]+)`",
     "no wheel of {0} fits this Python (and builds are off)"),
    ("no-wheels", r"has no wheels with a matching Python|no matching distribution|only has (?:an )?sdist"
                  r"|Requires-Python|requires-python", "no release files fit this Python"),
    ("undeclared", r"undeclared dependency: ([\w.]+) is imported", "its code imports {0} but does not require it"),
    ("api", r"reads ([\w.]+), which this env lacks", "its code reads {0}, which is gone from this env's {1}"),
    ("import", r"ImportError|ModuleNotFoundError|AttributeError|cannot import name",
     "its import fails with the newest dependencies"),
)

# Names numpy removed, and the numpy that still has them (an `api` diagnosis pins it).
_GONE_FROM_NUMPY = (
    ({f"numpy.{n}" for n in ("float", "int", "bool", "object", "str", "complex", "long", "unicode")}, "numpy<1.24"),
    ({"numpy.asscalar"}, "numpy<1.23"),
    ({f"numpy.{n}" for n in ("NaN", "NAN", "Inf", "PINF", "NINF", "infty", "Infinity", "float_", "complex_", "string_",
                             "unicode_", "cast", "product", "cumproduct", "sometrue", "alltrue", "round_", "asfarray",
                             "find_common_type", "source", "deprecate", "safe_eval", "msort", "trapz", "in1d",
                             "row_stack", "issubclass_", "mat")}, "numpy<2"),
)

# Stdlib names and modules that later Pythons removed, by the first Python without them: a failure on
# one moves the search to an older Python with the same dependencies, not to an older date.
_GONE_FROM_PYTHON = {
    "3.7": ("os.errno",),
    "3.8": ("time.clock", "cgi.escape", "platform.linux_distribution", "platform.dist", "platform.popen"),
    "3.9": ("base64.encodestring", "base64.decodestring", "fractions.gcd", "xml.etree.cElementTree",
            "sys.setcheckinterval", "sys.getcheckinterval"),
    "3.10": tuple(f"collections.{n}" for n in (
        "Mapping", "MutableMapping", "Sequence", "MutableSequence", "Iterable", "Iterator", "Callable", "Set",
        "MutableSet", "Hashable", "Sized", "Container", "Generator", "KeysView", "ItemsView", "ValuesView",
        "MappingView", "Awaitable", "Coroutine", "AsyncIterable", "AsyncIterator", "ByteString")) + ("asyncio.async",),
    "3.11": ("inspect.getargspec", "inspect.formatargspec", "inspect.getmoduleinfo", "asyncio.coroutine", "binhex",
             "gettext.lgettext", "gettext.ldgettext", "gettext.lngettext", "gettext.ldngettext",
             "gettext.bind_textdomain_codeset", "formatter", "parser", "symbol"),
    "3.12": ("distutils", "imp", "asynchat", "asyncore", "smtpd", "configparser.SafeConfigParser", "locale.format",
             "ssl.wrap_socket", "ssl.match_hostname"),
    "3.13": ("cgi", "cgitb", "crypt", "pipes", "telnetlib", "nntplib", "audioop", "aifc", "chunk", "imghdr", "sndhdr",
             "sunau", "uu", "xdrlib", "msilib", "nis", "ossaudiodev", "spwd", "mailcap", "lib2to3",
             "unittest.makeSuite", "unittest.findTestCases", "typing.io", "typing.re"),
}


def _python_without(failure: str) -> tuple[str, str] | None:
    """(the first Python without it, the name) for a stdlib name a failure reads ("inspect.getargspec")
    or a module it cannot import ("No module named 'imp'"), else None."""
    m = re.match(r"\S*(?:Error|Exception)?:?\s*(?:No module named '([\w.]+)'|cannot import name '\w+' from '(\w+)')",
                 failure)
    name = (m.group(1) or m.group(2)) if m else failure.strip()
    return next(((minor, name) for minor, names in _GONE_FROM_PYTHON.items() if name in names), None)


# The distribution that provides a module, where the names differ (an undeclared dependency's install).
_DISTRIBUTION_OF = {"sklearn": "scikit-learn", "cv2": "opencv-python-headless", "PIL": "pillow", "yaml": "pyyaml",
                    "bs4": "beautifulsoup4", "skimage": "scikit-image", "Bio": "biopython", "dateutil": "python-dateutil",
                    "Crypto": "pycryptodome", "icu": "pyicu", "tensorflow_hub": "tensorflow-hub", "google.protobuf": "protobuf"}

# What the host's OS can install, by OS (host.os): the fix a diagnosis names when the host lacks a tool.
_FIXES = {
    "linux": {
        "compiler": "install a C compiler: sudo apt-get install build-essential (Debian/Ubuntu)",
        "rust": "install Rust: curl https://sh.rustup.rs -sSf | sh (or your OS's rustc and cargo)",
        "jvm": "install Java: sudo apt-get install default-jre (Debian/Ubuntu), then set JAVA_HOME",
        "header": "install the development package that has {0}: find it with `apt-file search {0}` (Debian/Ubuntu)",
    },
    "macos": {
        "compiler": "install the command line tools: xcode-select --install",
        "rust": "install Rust: curl https://sh.rustup.rs -sSf | sh (or brew install rust)",
        "jvm": "install Java: brew install openjdk, then set JAVA_HOME",
        "header": "install the library that has {0} (e.g. with Homebrew), then run the command again",
    },
    "windows": {
        "compiler": "install the Microsoft C++ Build Tools (https://visualstudio.microsoft.com/visual-cpp-build-tools/)",
        "rust": "install Rust: https://rustup.rs",
        "jvm": "install a Java runtime (e.g. winget install Microsoft.OpenJDK.21), then set JAVA_HOME",
        "header": "install the library that has {0}, then run the command again",
    },
}

# Headers of another OS: no package of this one provides them, so no build of that code works here.
_FOREIGN_HEADERS = {
    "linux": ("sys/endian.h", "machine/", "libkern/", "mach/", "mach-o/", "malloc/malloc.h", "CoreFoundation/",
              "windows.h", "io.h", "direct.h"),
    "macos": ("linux/", "endian.h", "malloc.h", "features.h", "byteswap.h", "windows.h", "io.h"),
    "windows": ("unistd.h", "sys/endian.h", "linux/", "machine/", "libkern/", "mach/", "pthread.h", "dlfcn.h"),
}
_OS_LABEL = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}


def foreign_header(header: str, os_name: str) -> bool:
    """Whether a missing header is one of another OS's (sys/endian.h on Linux): no package installs it."""
    return any(header == h or (h.endswith("/") and header.startswith(h)) for h in _FOREIGN_HEADERS.get(os_name, ()))


def diagnose(text: str, os_name: str = "linux", newest: bool = True) -> Diagnosis:
    """The first rule that matches a failure's output; `os_name` (host.os) picks the fix it names,
    `newest`: whether the attempt had the newest dependencies (no cutoff)."""
    fixes = _FIXES.get(os_name, _FIXES["linux"])
    for kind, pattern, why in _RULES:
        if m := re.search(pattern, text, re.I if kind in ("no-wheels", "rust") else 0):
            found = next((g for g in m.groups() if g), "") if m.groups() else ""
            why = why.format(found or ("gcc" if kind == "compiler" else "a dependency"), found.split(".")[0])
            fix = fixes.get(kind, "").format(found)
            if kind == "header" and foreign_header(found, os_name):
                why = f"{why}, a header {_OS_LABEL.get(os_name, os_name)} does not have: only a release or Python with wheels works here"
                fix = ""  # no package provides it: the next command is an older release or Python (see next_command)
            if kind == "import":  # the error itself (from its name on: not the check's label), without the env's paths
                line = text[m.start():].split("\n", 1)[0].strip()
                why = f"{why if newest else 'its import fails'}: {line.split(' (/')[0][:160]}"
            pin = ("numpy<2", why) if kind == "numpy-abi" else None
            # setuptools < 81 has pkg_resources; a package, not a pin: an env need not have setuptools at all
            needs = (("setuptools<81", one_line(why)),) if kind == "pkg-resources" else ()
            if kind == "undeclared":  # and the other modules nothing provides that its modules import
                also = re.search(r"also imported by its modules: ([\w., ]+)", text)
                needs = tuple((_DISTRIBUTION_OF.get(mod, mod.replace("_", "-")), one_line(why)) for mod in
                              [found, *(also.group(1).replace(" ", "").split(",") if also else ())] if mod)
            if kind == "api" and (gone := next((cap for names, cap in _GONE_FROM_NUMPY if found in names), None)):
                pin = (gone, one_line(why))  # the numpy that still has it: retried before any older date
            below = _python_without(found if kind == "api" else text[m.start():] if kind == "import" else "")
            if below:
                why = f"its code needs {below[1]}, which Python {below[0]} removed"
            return Diagnosis(kind, one_line(why), fix, pin, needs, below[0] if below else None)
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip() and not _UNDONE.fullmatch(line.strip())),
                "no output")
    return Diagnosis("other", one_line(last))


# What the install transaction appends to a failure's message once it rolled back: not a diagnosis.
_UNDONE = re.compile(r"(?:the previous env is back in place|nothing was left behind|nothing else changed)"
                     r"(?:; the failed env is kept at .*)?")


def one_line(why: str) -> str:
    """A diagnosis as one clean line: its first line, without the rollback's note, at most 200 characters."""
    line = next((x.strip() for x in why.splitlines() if x.strip()), "")
    line = re.sub(r";\s*" + _UNDONE.pattern + r"$", "", line).strip()
    return line[:200] or "no output"


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
    key = (failed.version, failed.as_of, failed.pins)
    side = _predates(failed.python, failed.as_of)
    same = {c.python for c, e in [*tried, (failed, d)]
            if e is not None and (c.version, c.as_of, c.pins) == key and (e.kind, e.why) == (d.kind, d.why)
            and _predates(c.python, c.as_of) == side}
    if len(same) >= 2:
        queue = [c for c in queue if not ((c.version, c.as_of, c.pins) == key and _predates(c.python, c.as_of) == side)]
    return queue


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


def why_cutoff(winner: Candidate, failed: list[tuple[Candidate, str]]) -> str:
    """Why the winner needs its cutoff: the failure of the same release and Python with the newest
    dependencies (the diagnosis the next attempt followed), else of the same release on another Python
    (the search skips the Pythons a failure does not depend on)."""
    latest = [(c, why) for c, why in failed if c.as_of is None and c.version == winner.version]
    return next((why for c, why in latest if c.python == winner.python), latest[-1][1] if latest else "")


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
        f"packages = [{', '.join(map(_toml_str, [f'{found.name}=={c.version}', *packages]))}]",
    ]
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
    lines.append("timeout = 300")
    return lines


DERIVED_CHECKS = Path(__file__).with_name("derivedchecks.py")  # a program for the env's interpreter


def derived_checks(name: str) -> str:
    """The derived checks for a distribution, as code for the smoke harness (see derivedchecks.py)."""
    return f"NAME = {re.sub(r'[-_.]+', '_', name).lower()!r}\n" + DERIVED_CHECKS.read_text(encoding="utf-8")
