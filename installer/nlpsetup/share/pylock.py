"""PEP 751 lock files (`pylock.toml`) and hashed requirements files: what `export` writes, so that
pip, uv and other tools can rebuild an env nlpsetup made, and the reading of a pylock.toml back
into an nlpsetup lock for `install --from-lock`.

Spec: https://packaging.python.org/en/latest/specifications/pylock-toml/ (lock-version 1.0). What
nlpsetup alone needs (the tools and their smoke checks, the interpreter, the platform, the PyTorch
build) rides in `[tool.nlpsetup]`, which the spec reserves for the tool that wrote the file.
"""

from __future__ import annotations

import json

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from nlpsetup import __version__
from nlpsetup.base.errors import NlpsetupError
from nlpsetup.base.redact import mask_text

LOCK_VERSION = "1.0"
_HINT = "write it again with: nlpsetup export ENV --format pylock -o pylock.toml"
# Keys of [tool.nlpsetup]: the parts of an nlpsetup lock that a pylock.toml has no field for.
_OURS = ("env", "tools", "python", "platform", "compute", "install_env", "nlpsetup_version", "as_of")


# --- writing -----------------------------------------------------------------------------------


def _value(v) -> str:
    """A TOML value on one line (JSON's string escapes are TOML's)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, _Raw):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def _file_entry(f) -> dict:
    entry = {"name": f.filename, "url": mask_text(f.url), "hashes": {"sha256": f.sha256}}
    if (when := _datetime(getattr(f, "upload_time", None))) is not None:
        entry["upload-time"] = when  # PEP 751: a TOML datetime, where the index gave one (PEP 700)
    return entry


class _Raw(str):
    """A value written as it is (a TOML datetime), not as a string."""


def _datetime(text: str | None) -> _Raw | None:
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    return None if when is None else _Raw(when.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z"))


def dumps(lock: dict, files: dict) -> str:
    """pylock.toml text for a lock and the index files of each of its releases (indexfiles.File)."""
    minor = ".".join(lock["python"]["version"].split(".")[:2])
    out = [f"# Written by nlpsetup {__version__} for env {lock['env']}: install it with",
           "#   uv pip install -r pylock.toml   or   nlpsetup install --from-lock pylock.toml",
           f"lock-version = {_value(LOCK_VERSION)}",
           f"created-by = {_value('nlpsetup')}",
           f"requires-python = {_value(f'=={minor}.*')}", ""]
    for name, version in lock["distributions"].items():
        fs = files.get(name)
        if not fs:  # installer tooling the env's creator seeds (pip): no pinned release to fetch
            continue
        wheels = [_file_entry(f) for f in fs if f.is_wheel]
        sdists = [_file_entry(f) for f in fs if not f.is_wheel]
        out += ["[[packages]]", f"name = {_value(name)}", f"version = {_value(version)}",
                f"index = {_value(mask_text(fs[0].index))}"]
        if sdists:
            out.append(f"sdist = {_value(sdists[0])}")
        if wheels:
            out.append("wheels = [")
            out += [f"  {_value(w)}," for w in wheels]
            out.append("]")
        out.append("")
    out.append("[tool.nlpsetup]")
    out += [f"{k} = {_value(lock[k])}" for k in _OURS if lock.get(k) is not None]
    return "\n".join(out) + "\n"


def requirements(dists: dict[str, str], hashes: dict[str, list[str]]) -> str:
    """A pip requirements file of exact pins, each with its hashes (pip's --require-hashes form)."""
    lines = []
    for name, version in sorted(dists.items(), key=lambda kv: kv[0].lower()):
        lines.append(f"{name}=={version}" + "".join(f" \\\n    --hash={h}" for h in hashes.get(name, ())))
    return "\n".join(lines) + "\n"


def requirements_text(lock: dict) -> str:
    """A hashed requirements file for a whole lock, with a header naming the env and its indexes."""
    head = [f"# Written by nlpsetup {__version__} for env {lock['env']} (Python {lock['python']['version']}, "
            f"{lock['platform'].get('os')} {lock['platform'].get('arch')}).",
            "# Install with hash checking:  pip install --no-deps --require-hashes -r THIS_FILE",
            *(f"# index: {u}" for u in lock.get("indexes", []))]
    dists = {k: v for k, v in lock["distributions"].items() if k in lock.get("hashes", {})}
    return "\n".join(head) + "\n" + requirements(dists, lock.get("hashes", {}))


# --- reading ------------------------------------------------------------------------------------


def parse(text: str, source: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        raise NlpsetupError(f"{source} is not TOML: {str(exc)[:200]}", hint=_HINT) from None


def _bad(source: str, field: str, problem: str) -> NlpsetupError:
    return NlpsetupError(f"{source}: field {field!r} {problem}", hint=_HINT)


def _python_of(requires: object, ours: dict, source: str) -> dict:
    if isinstance(ours.get("python"), dict):
        return ours["python"]
    if not isinstance(requires, str):
        raise _bad(source, "requires-python", "is missing: nlpsetup needs it to choose the interpreter")
    try:
        spec = SpecifierSet(requires)
    except InvalidSpecifier:
        raise _bad(source, "requires-python", f"{requires[:40]!r} is not a version specifier") from None
    for s in spec:
        if s.operator in ("==", "~=", ">="):
            return {"version": s.version.rstrip(".*"), "implementation": "CPython"}
    raise _bad(source, "requires-python", f"{requires!r} names no Python version (write ==3.12.*)")


def to_lock(doc: dict, source: str) -> dict:
    """The fields of an nlpsetup lock from a parsed pylock.toml: the reader of locks (lockfile.load)
    adds its kind and schema version and checks it: this codec knows pylock.toml, not our lock format."""
    if not isinstance(doc.get("lock-version"), str) or doc["lock-version"].split(".")[0] != "1":
        raise _bad(source, "lock-version", f"must be {LOCK_VERSION!r}, not {doc.get('lock-version')!r}")
    tool = doc.get("tool", {})
    ours = tool.get("nlpsetup", {}) if isinstance(tool, dict) else {}
    if not isinstance(ours, dict):
        raise _bad(source, "tool.nlpsetup", "must be a table")
    python = _python_of(doc.get("requires-python"), ours, source)
    packages = doc.get("packages")
    if not isinstance(packages, list):
        raise _bad(source, "packages", "must be an array of tables")
    dists: dict[str, str] = {}
    hashes: dict[str, list[str]] = {}
    indexes: dict[str, str] = {}
    for i, p in enumerate(packages):
        where = f"packages[{i}]"
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise _bad(source, where, "must be a table with a name")
        for key in ("vcs", "directory", "archive"):
            if key in p:
                raise _bad(source, f"{where}.{key}", "is not an index release: nlpsetup installs name==version "
                                                     "releases with their hashes only")
        if not _applies(p.get("marker"), python, source, where):
            continue
        if not isinstance(p.get("version"), str):
            raise _bad(source, f"{where}.version", "must be the release's version")
        if not isinstance(p.get("wheels", []), list):
            raise _bad(source, f"{where}.wheels", "must be an array of tables")
        files = [*([p["sdist"]] if "sdist" in p else []), *(p.get("wheels") or [])]
        found = []
        for j, f in enumerate(files):
            h = f.get("hashes") if isinstance(f, dict) else None
            if not isinstance(h, dict) or not isinstance(h.get("sha256"), str):
                raise _bad(source, f"{where}.wheels[{j}].hashes", "must carry a sha256")
            found.append(f"sha256:{h['sha256'].lower()}")
        if not found:
            raise _bad(source, f"{where}.wheels", "is empty: each package needs its files and their hashes")
        dists[p["name"]] = p["version"]
        hashes[p["name"]] = sorted(set(found))
        if isinstance(p.get("index"), str):
            indexes[canonicalize_name(p["name"])] = p["index"]
    compute = ours.get("compute")
    if compute is None:
        torch_index = next((indexes[n] for n in ("torch", "torchvision", "torchaudio") if n in indexes), None)
        compute = {"backend": "cpu", "index": torch_index} if torch_index else {}
    return {"nlpsetup_version": ours.get("nlpsetup_version"),
            "env": ours.get("env"), "tools": ours.get("tools", []), "python": python,
            "platform": ours.get("platform", {}), "compute": compute, "install_env": ours.get("install_env", {}),
            "distributions": dists, "hashes": hashes, "indexes": sorted(set(indexes.values()))}


def _applies(marker: object, python: dict, source: str, where: str) -> bool:
    """Whether a package's marker holds for the locked Python on this platform."""
    if marker is None:
        return True
    if not isinstance(marker, str):
        raise _bad(source, f"{where}.marker", "must be a string")
    version = str(python.get("version", ""))
    try:
        return Marker(marker).evaluate({"python_version": ".".join(version.split(".")[:2]),
                                        "python_full_version": version})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as exc:
        raise _bad(source, f"{where}.marker", f"is not a marker: {exc}") from None
