"""Python installations on this host, and requests for one (`--python 3.8`, `--python /path`).

A request ("3.8", a path) is kept apart from a found installation, as python-discovery does.
Candidates come from PATH, pyenv, uv-managed Pythons, conda and the Windows `py` launcher.
Each one is probed once by python-discovery (it runs a stdlib-only script inside the target);
our own index, keyed by path, mtime and size, keeps warm runs from importing it at all.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.base.files import Map, read_cache

_CACHE_VERSION = 1


@dataclass(frozen=True)
class PythonInstall:
    version: str  # "3.8.18"
    implementation: str = "CPython"
    path: str | None = None  # None on a simulated host: a version, not a path
    source: str = "path"  # path | pyenv | uv | conda | py-launcher | simulated | requested

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def describe(self) -> str:
        where = self.path or "simulated"
        return f"{self.implementation} {self.version} ({self.source}: {where})"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | str) -> PythonInstall:
        if isinstance(data, str):  # host files may list bare versions
            return cls(version=data, path=None, source="simulated")
        return cls(
            version=str(data["version"]),
            implementation=str(data.get("implementation", "CPython")),
            path=data.get("path"),
            source=str(data.get("source", "simulated" if not data.get("path") else "path")),
        )


@dataclass(frozen=True)
class PythonRequest:
    """What the user asked for with --python, as python-discovery reads it: a version prefix
    (3.8, cp39, python3.12), a specifier (>=3.10), an implementation, or an interpreter path."""

    raw: str
    version: str | None = None
    path: str | None = None
    specifier: str | None = None  # ">=3.10"
    implementation: str | None = None  # "CPython", "PyPy"; None for any

    @property
    def shown(self) -> str:
        return self.version or self.raw

    def matches(self, install: PythonInstall) -> bool:
        if self.path:
            return install.path is not None and os.path.realpath(install.path) == os.path.realpath(self.path)
        if self.implementation and install.implementation.lower() != self.implementation.lower():
            return False
        return self.admits(install.version)

    def admits(self, version: str) -> bool:
        """Whether a version (3.11 or 3.11.4) is one this request accepts."""
        if self.version and not (version == self.version or version.startswith(self.version + ".")
                                 or self.version.startswith(version + ".")):
            return False
        if self.specifier:
            from packaging.specifiers import SpecifierSet

            full = version if version.count(".") >= 2 else f"{version}.0"
            return SpecifierSet(self.specifier).contains(full, prereleases=True)
        return True


_IMPLEMENTATIONS = {"cp": "CPython", "cpython": "CPython", "python": None, "py": None, "pypy": "PyPy"}


def parse_request(text: str) -> PythonRequest:
    """Read --python the way python-discovery (virtualenv's discovery) reads a spec."""
    from python_discovery import PythonSpec

    text = text.strip()
    if os.sep in text or (os.altsep and os.altsep in text) or (text and Path(text).exists()):
        return PythonRequest(raw=text, path=str(Path(text).expanduser().absolute()))
    spec = PythonSpec.from_string_spec(text) if text else None
    impl = (spec.implementation or "python").lower() if spec else ""
    if spec is None or spec.path or impl not in _IMPLEMENTATIONS:
        raise NlpsetupError(
            f"--python {text!r} is neither a Python request (3.8, cp39, python3.12, >=3.10) nor a path to an interpreter",
            hint="pass a version such as --python 3.11, or a path such as --python /usr/bin/python3.11",
        )
    if spec.free_threaded:
        raise NlpsetupError(f"--python {text!r} asks for a free-threaded build, which nlpsetup cannot tell apart yet",
                            hint="pass the interpreter's path instead, e.g. --python /usr/bin/python3.13t")
    version = ".".join(str(x) for x in (spec.major, spec.minor, spec.micro) if x is not None) or None
    specifier = str(spec.version_specifier) if spec.version_specifier is not None else None
    return PythonRequest(raw=text, version=version, specifier=specifier, implementation=_IMPLEMENTATIONS[impl])


# --- finding candidates -------------------------------------------------------------------


def _pyenv_root(env) -> Path:
    return Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _uv_python_dir(env) -> Path:
    if d := env.get("UV_PYTHON_INSTALL_DIR"):
        return Path(d)
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "uv" / "python"


def candidates(env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(path, source) pairs, PATH first; cheap: directory listings only, nothing is run."""
    env = os.environ if env is None else env
    found: list[tuple[str, str]] = []
    name_re = re.compile(r"^python(3(\.\d+)?)?(\.exe)?$")
    pyenv = _pyenv_root(env)
    for d in env.get("PATH", "").split(os.pathsep):
        # pyenv shims are scripts that re-dispatch to a version; the versions are listed below.
        if not d or Path(d).name == "shims":
            continue
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            if name_re.fullmatch(name):
                found.append((os.path.join(d, name), "path"))
    for root, source in ((pyenv / "versions", "pyenv"), (_uv_python_dir(env), "uv")):
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            continue
        for entry in entries:
            for rel in ("bin/python3", "bin/python", "python.exe"):
                p = root / entry / rel
                if p.exists():
                    found.append((str(p), source))
                    break
    for prefix in _conda_prefixes(env):
        p = prefix / ("python.exe" if sys.platform == "win32" else "bin/python")
        if p.exists():
            found.append((str(p), "conda"))
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        found.extend((p, "py-launcher") for p in _py_launcher_paths())
    return found


def _conda_prefixes(env) -> list[Path]:
    out = []
    if conda_exe := env.get("CONDA_EXE"):  # .../bin/conda -> base prefix
        out.append(Path(conda_exe).parent.parent)
    if prefix := env.get("CONDA_PREFIX"):
        out.append(Path(prefix))
    home = Path.home()
    out.extend(home / d for d in ("miniconda3", "anaconda3", "miniforge3", "mambaforge"))
    return out


def _py_launcher_paths() -> list[str]:  # pragma: no cover - Windows only
    from nlpsetup.base import proc

    out = proc.capture(["py", "-0p"], env=proc.child_env(), timeout=5)[1]
    return [line.split()[-1] for line in out.splitlines() if line.strip().endswith(".exe")]


# --- probing, with a cache ------------------------------------------------------------------


def _key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{path}|{os.path.realpath(path)}|{st.st_mtime_ns}|{st.st_size}"


def _probe(path: str, cache_dir: Path | None) -> tuple[str, str, str] | None:
    """(version, implementation, base executable) for one interpreter, or None if it is no Python."""
    import logging

    from python_discovery import DiskCache, PythonInfo

    # It logs a warning for each Python it cannot query (2.7); we handle those below, quietly.
    logging.getLogger("python_discovery").addHandler(logging.NullHandler())
    logging.getLogger("python_discovery").propagate = False

    cache = DiskCache(cache_dir / "py-info") if cache_dir else None
    try:
        info = PythonInfo.from_exe(path, cache, raise_on_error=False)
    except Exception:  # a broken interpreter is not a Python we can use
        info = None
    if info is not None:
        version = ".".join(str(p) for p in info.version_info[:3])
        base = info.system_executable or info.executable or path
        return version, info.implementation, base
    # python-discovery cannot query Pythons older than 3.6; ask them directly so that
    # the refusal can name them ("Python 2.7 ... has no venv").
    from nlpsetup.base import proc

    code, out = proc.capture([path, "-c", "import sys, platform; print(platform.python_implementation()); "
                              "print('.'.join(map(str, sys.version_info[:3])))"], env=proc.child_env(), timeout=10)
    lines = out.split()
    if code != 0 or len(lines) != 2:
        return None
    return lines[1], lines[0], path


def discover(cache_dir: Path | None, env: dict[str, str] | None = None) -> tuple[PythonInstall, ...]:
    """Every distinct interpreter on this host, newest first."""
    index_file = cache_dir / "pythons.json" if cache_dir else None
    index: dict = {}
    data = read_cache(index_file, {"version": int, "entries": Map([str])}) if index_file else None
    if data and data.get("version") == _CACHE_VERSION:
        index = {k: v for k, v in data.get("entries", {}).items() if len(v) in (0, 3)}  # [] or [version, impl, path]
    seen: set[str] = set()
    out: list[PythonInstall] = []
    fresh: dict = {}
    for path, source in candidates(env):
        key = _key(path)
        if key is None:
            continue
        if key in index:
            entry = index[key]
        else:  # not a Python (a broken one, a stray script) is remembered too, as []
            probed = _probe(path, cache_dir)
            entry = list(probed) if probed else []
        fresh[key] = entry
        if not entry:
            continue
        version, impl, base = entry
        real = os.path.realpath(base)
        if real in seen:
            continue
        seen.add(real)
        # A venv on PATH points at its base interpreter: report that one, by where it lives.
        out.append(PythonInstall(version=version, implementation=impl, path=base,
                                 source=source if os.path.realpath(path) == real else _source_of(base, env)))
    if index_file and fresh != index:
        from nlpsetup.base.files import write_json_atomic

        try:
            write_json_atomic(index_file, {"version": _CACHE_VERSION, "entries": fresh}, durable=False)
        except OSError:
            pass  # a cache we cannot write only costs time
    return tuple(sorted(out, key=lambda p: _vkey(p.version), reverse=True))


def _source_of(path: str, env) -> str:
    env = os.environ if env is None else env
    real = os.path.realpath(path)
    if real.startswith(os.path.realpath(_pyenv_root(env))):
        return "pyenv"
    if real.startswith(os.path.realpath(_uv_python_dir(env))):
        return "uv"
    return "path"


def probe_path(path: str, cache_dir: Path | None) -> PythonInstall:
    """The installation at an explicit --python PATH, or a clear error."""
    if not os.path.exists(path):
        raise NlpsetupError(f"--python {path}: no such file", hint="pass an existing interpreter, or a version such as 3.11")
    probed = _probe(path, cache_dir)
    if not probed:
        raise NlpsetupError(
            f"--python {path} is not a Python interpreter (it did not answer a version query)",
            hint="pass a Python executable, or a version such as --python 3.11",
        )
    version, impl, base = probed
    return PythonInstall(version=version, implementation=impl, path=path, source="requested")


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:3])
