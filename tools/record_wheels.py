"""Record which binary wheels PyPI has for the recipes' heavy packages: tests/data/wheels.json.

tests/test_wheel_availability.py compares every plan of every recipe, on six simulated targets and
Python 3.8-3.14, with this record, so that a plan never says yes where pip finds no binary install.

What is recorded (filenames only, nothing is downloaded but metadata):
* `wheels` (and `requires_python`, which pip also honours): for each heavy package, the wheel filenames of the versions the recipes can plan (those
  matching some requirement recorded below; for an unbounded requirement, releases since SINCE);
* `requires`: for each distribution a variant installs at an exact version (`flair==0.15.1`), the
  heavy packages it pulls, followed through its exact (==) dependencies (autogluon -> autogluon.core);
* `mains`: for a variant's open-ended main requirement (`azure-ai-ml>=1,<2`), the newest version
  PyPI offers per Python minor (its Requires-Python), whose requirements are then recorded as above.

Sources: PyPI's simple API in JSON (PEP 691, https://pypi.org/simple/NAME/) and the core metadata
files next to each wheel (PEP 658/714). Run it from the repository root (network to PyPI):

    .venv/bin/python tools/record_wheels.py            # writes tests/data/wheels.json
"""

from __future__ import annotations

import datetime as dt
import email.parser
import io
import json
import re
import sys
import urllib.request
import zipfile
from functools import cache
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "installer"))
from nlpsetup.recipes import load as recipes  # noqa: E402

OUT = ROOT / "tests" / "data" / "wheels.json"
INDEX = "https://pypi.org/simple"
PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
# The compiled packages whose wheels decide where a recipe installs (the rest are pure Python or
# have wheels everywhere the heavy ones do).
HEAVY = (
    "torch", "torchvision", "numpy", "pandas", "scipy", "scikit-learn", "pyarrow", "bitsandbytes",
    "tensorflow", "tensorflow-text", "tensorflow-addons", "mxnet", "gensim", "aiohttp", "grpcio",
    "sentencepiece", "lightgbm", "catboost", "xgboost", "psutil", "spacy", "thinc", "blis", "lxml",
    "tokenizers", "safetensors", "pycocotools", "pyyaml",
)
# For a heavy requirement with no version bound, releases uploaded since then are recorded.
SINCE = "2022-01-01"
# Wheels for other Pythons or platforms than the simulated targets are left out of the record.
_PY = re.compile(r"^(cp3(8|9|1[0-4])|py3\d*|py2\.py3)$")
_PLATFORM = re.compile(r"^(any|win_(amd64|arm64)|manylinux.*_(x86_64|aarch64)|macosx_.*_(x86_64|arm64|universal2|intel))$")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
FALSE = 'python_version < "0"'
_VARIABLE = re.compile(r"\b(python_\w+|sys_platform|platform_\w+|os_name|implementation_\w+)\b")


@cache
def project(name: str) -> dict:
    req = urllib.request.Request(f"{INDEX}/{canonicalize_name(name)}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - a fixed https URL
        return json.load(r)


def releases(name: str) -> dict[Version, list[dict]]:
    """Files per final release, yanked files left out."""
    out: dict[Version, list[dict]] = {}
    for f in project(name)["files"]:
        if f.get("yanked"):
            continue
        try:
            if f["filename"].endswith(".whl"):
                version = parse_wheel_filename(f["filename"])[1]
            else:
                version = Version(f["filename"].rsplit("-", 1)[1].removesuffix(".tar.gz").removesuffix(".zip"))
        except (InvalidVersion, ValueError, IndexError):
            continue
        if not version.is_prerelease and not version.is_devrelease:
            out.setdefault(version, []).append(f)
    return out


def newest(name: str, spec: SpecifierSet, python: str) -> Version | None:
    """The version pip would pick for `name spec` on this Python (Requires-Python respected)."""
    for version in sorted(releases(name), reverse=True):
        if not spec.contains(version, prereleases=True):
            continue
        rp = next((f.get("requires-python") for f in releases(name)[version] if f.get("requires-python")), None)
        if rp is None or SpecifierSet(rp).contains(f"{python}.99"):
            return version
    return None


class _RemoteFile(io.RawIOBase):
    """A wheel on the index read with HTTP range requests: zipfile reads only its METADATA."""

    def __init__(self, url: str, size: int):
        self.url, self.size, self.pos = url, size, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf) -> int:
        if self.pos >= self.size or not len(buf):
            return 0
        end = min(self.pos + len(buf), self.size) - 1
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{end}"})
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - the index's own file URL
            data = r.read()
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)


@cache
def requires_dist(name: str, version: Version) -> tuple[str, ...]:
    """Requires-Dist of one release, from the METADATA inside its wheel (the index serves no
    PEP 658 metadata files here, so the wheel's zip directory is read with range requests)."""
    files = [f for f in releases(name).get(version, []) if f["filename"].endswith(".whl")]
    if not files:
        return ()
    f = min(files, key=lambda f: f.get("size", 0))
    with zipfile.ZipFile(io.BufferedReader(_RemoteFile(f["url"], f["size"]), 1 << 16)) as z:
        path = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(path).decode())
    return tuple(meta.get_all("Requires-Dist") or ())


def relevant(filename: str) -> bool:
    tags = parse_wheel_filename(filename)[3]
    return any((_PY.match(t.interpreter) or (t.abi == "abi3" and t.interpreter.startswith("cp3"))) and not t.abi.endswith("t") and _PLATFORM.match(t.platform) for t in tags)


def _resolve_extras(marker: str, extras: set[str]) -> str:
    """Decide `extra == "x"` clauses now (the extras asked of the parent are known here):
    "" for a marker that holds, FALSE for one that cannot, else the marker with them decided."""
    if not _VARIABLE.search(marker):  # only extras
        return "" if any(Marker(marker).evaluate({"extra": e}) for e in extras or {""}) else FALSE
    return _EXTRA.sub(lambda m: 'python_version >= "0"' if m.group(1) in extras else FALSE, marker)


def heavy_requires(name: str, version: Version, extras: frozenset[str] = frozenset(),
                   marker: str = "", depth: int = 0) -> list[str]:
    """Heavy requirements of name==version, followed through exact dependencies."""
    out = []
    for raw in requires_dist(name, version):
        r = Requirement(raw)
        m = _resolve_extras(str(r.marker), set(extras)) if r.marker else ""
        if m == FALSE or (FALSE in m and " or " not in m):
            continue  # an extra nobody asked for
        both = " and ".join(f"({x})" for x in (marker, m) if x)
        key = canonicalize_name(r.name)
        if key in HEAVY:
            out.append(f"{key}{r.specifier}" + (f"; {both}" if both else ""))
        pinned = [s for s in r.specifier if s.operator == "==" and not s.version.endswith("*")]
        if pinned and depth < 3 and key not in HEAVY:
            out += heavy_requires(r.name, Version(pinned[0].version), frozenset(r.extras), both, depth + 1)
    return sorted(set(out))


def main() -> None:
    book = recipes.load_book([ROOT / "recipes"])
    requires: dict[str, list[str]] = {}
    mains: dict[str, dict[str, str]] = {}
    specs: dict[str, list[SpecifierSet]] = {h: [] for h in HEAVY}

    def note(req: str) -> None:
        r = Requirement(req.split(";")[0])
        if canonicalize_name(r.name) in specs:
            specs[canonicalize_name(r.name)].append(r.specifier)

    for recipe in book.recipes.values():
        for v in recipe.variants:
            direct = [*v.packages, *(f"{n}{s}" for n, s in v.framework), *(p.req for p in v.pins)]
            for req in direct:
                note(req)
            for raw in v.packages:
                r = Requirement(raw)
                if canonicalize_name(r.name) in HEAVY:
                    continue
                exact = [s.version for s in r.specifier if s.operator == "=="]
                if exact:
                    versions = {Version(exact[0])}
                else:  # open-ended: the newest per Python the variant admits
                    picks = {py: newest(r.name, r.specifier, py) for py in PYTHONS
                             if v.python.contains(f"{py}.99") or v.python.contains(f"{py}.0")}
                    mains.setdefault(f"{canonicalize_name(r.name)}{r.specifier}", {}).update(
                        {py: str(x) for py, x in picks.items() if x})
                    versions = {x for x in picks.values() if x}
                for version in versions:
                    key = f"{canonicalize_name(r.name)}=={version}"
                    if key not in requires:
                        requires[key] = heavy_requires(r.name, version, frozenset(r.extras))
                        for req in requires[key]:
                            note(req)

    wheels: dict[str, dict[str, list[str]]] = {}
    requires_python: dict[str, dict[str, str]] = {}
    for name, its in specs.items():
        if not its:
            continue
        wheels[name] = {}
        for version, files in sorted(releases(name).items()):
            recent = any(f.get("upload-time", "") >= SINCE for f in files)
            if not any((str(s) and s.contains(version, prereleases=True)) or (not str(s) and recent) for s in its):
                continue
            names = sorted(f["filename"] for f in files if f["filename"].endswith(".whl") and relevant(f["filename"]))
            if names:
                wheels[name][str(version)] = names
                if rp := next((f["requires-python"] for f in files if f.get("requires-python")), None):
                    requires_python.setdefault(name, {})[str(version)] = rp
    OUT.write_text(json.dumps({
        "about": "Binary wheels on PyPI of the recipes' heavy packages; written by tools/record_wheels.py",
        "source": f"{INDEX}/<name>/ (PEP 691 JSON) and PEP 658 metadata of each wheel",
        "recorded": dt.date.today().isoformat(),
        "heavy": list(HEAVY),
        "mains": mains,
        "requires": dict(sorted(requires.items())),
        "requires_python": requires_python,
        "wheels": wheels,
    }, indent=1, sort_keys=False) + "\n")
    size = OUT.stat().st_size
    print(f"wrote {OUT.relative_to(ROOT)}: {sum(map(len, wheels.values()))} versions of "
          f"{len(wheels)} packages, {size // 1024} KiB")


if __name__ == "__main__":
    main()
