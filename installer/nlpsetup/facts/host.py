"""Host facts: one frozen value, detected once at the edge, serialisable to JSON.

`detect()` reads the real machine; `Host.from_dict()` loads a described one (`--host-file`),
and `simulate()` turns this host into another platform (`--platform windows`), so any host
can be resolved against without being there. Nothing below `detect()` looks at the machine.
"""

from __future__ import annotations

import configparser
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from nlpsetup.base.errors import NlpsetupError
from nlpsetup.base.files import Map, shape_problem
from nlpsetup.base.platforms import ARCHES, OSES, normalize_arch  # noqa: F401 (OSES, ARCHES re-exported)
from nlpsetup.base.redact import mask_text
from nlpsetup.facts import gpu as gpu_mod
from nlpsetup.facts.pythons import PythonInstall
from nlpsetup.facts.uv import find_uv

# What a simulated platform is when only its name is given (`plan --platform macos`, `matrix`): the
# machine of its default hosted CI runner. ubuntu-latest is Ubuntu 24.04 (glibc 2.39); macos-latest
# is Apple Silicon; windows-latest is x86_64. --arch and --glibc change it.
SIMULATED_ARCH = {"linux": "x86_64", "macos": "arm64", "windows": "x86_64"}
SIMULATED_GLIBC = "2.39"
SCHEMA_VERSION = 1
# External programs recipes and doctor care about; looked up on PATH only, never run here.
TOOLS = ("uv", "conda", "mamba", "micromamba", "git", "git-lfs", "cc", "gcc", "clang", "nvidia-smi",
         "cmake", "gcloud", "az", "docker", "java")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
# What each fact of a host file holds where present (see files.shape_problem): `host --json`'s output.
_OPT_STR = (str, None)
_HOST_SHAPE = {
    "schema_version": int, "os": _OPT_STR, "arch": str, "libc": _OPT_STR, "libc_version": _OPT_STR, "wsl": bool,
    "macos_version": _OPT_STR, "apple_silicon": bool, "simulated": bool, "disk_free_bytes": (int, None),
    "pythons": [(str, dict)], "tools": Map(str), "proxies": Map(str),
    "gpu": {"driver": _OPT_STR, "cuda_header": _OPT_STR, "source": _OPT_STR, "error": _OPT_STR,
            "gpus": [{"name": str, "compute_capability": _OPT_STR, "memory_mib": (int, None)}]},
    "index": {"index_url": _OPT_STR, "extra_index_urls": [str], "find_links": [str], "sources": [str]},
}
_PYTHON_SHAPE = {"version": str, "implementation": str, "path": _OPT_STR, "source": str}


@dataclass(frozen=True)
class IndexSettings:
    """Where pip looks for packages, as the user configured it (raw: masked only on output)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # which files / variables set them

    def to_dict(self) -> dict:
        return {
            "index_url": mask_text(self.index_url) if self.index_url else None,
            "extra_index_urls": [mask_text(u) for u in self.extra_index_urls],
            "find_links": [mask_text(u) for u in self.find_links],
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(cls, d: dict) -> IndexSettings:
        return cls(
            index_url=d.get("index_url"),
            extra_index_urls=tuple(d.get("extra_index_urls", ())),
            find_links=tuple(d.get("find_links", ())),
            sources=tuple(d.get("sources", ())),
        )


@dataclass(frozen=True)
class Host:
    os: str
    arch: str
    libc: str | None = None  # "glibc" | "musl" | None (macOS, Windows)
    libc_version: str | None = None
    wsl: bool = False
    macos_version: str | None = None
    apple_silicon: bool = False
    pythons: tuple[PythonInstall, ...] = ()
    gpu: gpu_mod.GpuFacts = field(default_factory=lambda: gpu_mod.GpuFacts(driver=None))
    tools: tuple[tuple[str, str], ...] = ()  # (name, path) for the TOOLS found
    disk_free_bytes: int | None = None
    index: IndexSettings = field(default_factory=IndexSettings)
    proxies: tuple[tuple[str, str], ...] = ()
    # A simulated host was described, not detected: its interpreters are versions, not paths,
    # and with no interpreters listed any CPython release is assumed to be installable there.
    simulated: bool = False

    def tool(self, name: str) -> str | None:
        return dict(self.tools).get(name)

    def describe(self) -> str:
        parts = [self.os, self.arch]
        if self.libc:
            parts.append(f"{self.libc} {self.libc_version or '?'}")
        if self.wsl:
            parts.append("WSL")
        if self.macos_version:
            parts.append(f"macOS {self.macos_version}")
        return " ".join(parts) + (" (simulated)" if self.simulated else "")

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "os": self.os,
            "arch": self.arch,
            "libc": self.libc,
            "libc_version": self.libc_version,
            "wsl": self.wsl,
            "macos_version": self.macos_version,
            "apple_silicon": self.apple_silicon,
            "pythons": [p.to_dict() for p in self.pythons],
            "gpu": self.gpu.to_dict(),
            "tools": dict(self.tools),
            "disk_free_bytes": self.disk_free_bytes,
            "index": self.index.to_dict(),
            "proxies": {k: mask_text(v) for k, v in self.proxies},
            "simulated": self.simulated,
        }

    @classmethod
    def from_dict(cls, d: object, *, source: str = "host file") -> Host:
        """Load a described host. Missing keys take neutral defaults; wrong ones are errors."""
        if not isinstance(d, dict):
            raise NlpsetupError(f"{source} is not a host description (expected a JSON object)",
                                hint="write one with: nlpsetup host --json > host.json")
        try:
            found = [shape_problem(p, _PYTHON_SHAPE, f"pythons[{i}]") if "version" in p else f"pythons[{i}].version: "
                     "is required" for i, p in enumerate(d.get("pythons") or ()) if isinstance(p, dict)]
            if problem := shape_problem(d, _HOST_SHAPE) or next(filter(None, found), None):
                raise ValueError(problem)
            os_name = d.get("os")
            arch = normalize_arch(str(d.get("arch", "x86_64")))
            if os_name not in OSES:
                raise ValueError(f"'os' must be one of {', '.join(OSES)}, got {os_name!r}")
            if arch not in ARCHES:
                raise ValueError(f"'arch' must be one of {', '.join(ARCHES)}, got {arch!r}")
            pythons = d.get("pythons") or []
            gpu = d.get("gpu") or {}
            tools = d.get("tools") or {}
            return cls(
                os=os_name,
                arch=arch,
                libc=d.get("libc", "glibc" if os_name == "linux" else None),
                libc_version=d.get("libc_version"),
                wsl=bool(d.get("wsl", False)),
                macos_version=d.get("macos_version"),
                apple_silicon=bool(d.get("apple_silicon", os_name == "macos" and arch == "arm64")),
                pythons=tuple(PythonInstall.from_dict(p) for p in pythons),
                gpu=gpu_mod.GpuFacts.from_dict(gpu) if gpu else gpu_mod.GpuFacts(driver=None),
                tools=tuple(sorted((str(k), str(v)) for k, v in tools.items())),
                disk_free_bytes=d.get("disk_free_bytes"),
                index=IndexSettings.from_dict(d.get("index") or {}),
                proxies=tuple(sorted((d.get("proxies") or {}).items())),
                simulated=bool(d.get("simulated", True)),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            why = f"missing key {exc}" if isinstance(exc, KeyError) else exc
            raise NlpsetupError(f"{source} is not a valid host description: {why}",
                                hint="write one with: nlpsetup host --json > host.json") from None


def simulate(host: Host, *, os_name: str | None = None, arch: str | None = None,
             glibc: str | None = None) -> Host:
    """This host as if it ran another OS, architecture or glibc: interpreters become bare versions.

    Naming a platform (`--platform linux`) means that platform's simulated machine (SIMULATED_ARCH,
    SIMULATED_GLIBC), the one `matrix` uses, also on a host of that OS; `arch` or `glibc` without
    a platform change only that fact of this host. What is not about the machine (tools, index
    settings, proxies, free disk) stays this host's."""
    if os_name is None and arch is None and glibc is None:
        return host
    if os_name is not None:
        machine = simulated_host(os_name, arch=arch, glibc=glibc)
        return replace(machine, tools=host.tools, disk_free_bytes=host.disk_free_bytes, index=host.index,
                       proxies=host.proxies)
    arch = normalize_arch(arch) if arch else host.arch
    return replace(
        host,
        arch=arch,
        libc_version=(glibc or host.libc_version) if host.os == "linux" else None,
        apple_silicon=host.os == "macos" and arch == "arm64",
        pythons=(),
        gpu=host.gpu if arch == host.arch else gpu_mod.GpuFacts(driver=None, source="simulated"),
        simulated=True,
    )


def simulated_host(os_name: str, *, arch: str | None = None, glibc: str | None = None,
                   pythons: tuple[PythonInstall, ...] = (), gpu: gpu_mod.GpuFacts | None = None) -> Host:
    """A described machine of a platform, with the simulated defaults where a fact is not given."""
    arch = normalize_arch(arch) if arch else SIMULATED_ARCH[os_name]
    linux = os_name == "linux"
    return Host(os=os_name, arch=arch, libc="glibc" if linux else None,
                libc_version=(glibc or SIMULATED_GLIBC) if linux else None,
                apple_silicon=os_name == "macos" and arch == "arm64", pythons=pythons,
                gpu=gpu or gpu_mod.GpuFacts(driver=None, source="simulated"), simulated=True)


def assumption(host: Host) -> str:
    """What a simulated host takes for granted, said in the output of plan and matrix."""
    if host.os == "linux":
        facts = f"{host.arch}, glibc {host.libc_version or '?'}"
    else:
        facts = host.arch
    return f"simulated {host.os} host: {facts} (change with --arch" + (", --glibc)" if host.os == "linux" else ")")


def load(home: Path, *, os_name: str | None = None, arch: str | None = None, host_file: str | None = None,
         glibc: str | None = None) -> Host:
    """This machine (detected), or the one a --host-file describes, as --platform/--arch/--glibc see it."""
    if host_file:
        from nlpsetup.base.files import read_json

        data = read_json(host_file, "--host-file", "pass a file written by: nlpsetup host --json")
        host = Host.from_dict(data, source=f"--host-file {host_file}")
    else:
        from nlpsetup.base.paths import cache_dir

        host = detect(home, cache_dir(home))
    return simulate(host, os_name=os_name, arch=arch, glibc=glibc)


# --- detection (the edge: everything that touches the real machine) ----------------------------


def detect(home: Path, cache_dir: Path | None, env: dict[str, str] | None = None) -> Host:
    from nlpsetup.facts import pythons

    env = dict(os.environ if env is None else env)
    os_name = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = normalize_arch(machine)
    libc, libc_version = _libc() if os_name == "linux" else (None, None)
    mac = platform.mac_ver()[0] if os_name == "macos" else None
    return Host(
        os=os_name,
        arch=arch,
        libc=libc,
        libc_version=libc_version,
        wsl=_is_wsl() if os_name == "linux" else False,
        macos_version=mac or None,
        apple_silicon=os_name == "macos" and arch == "arm64",
        pythons=pythons.discover(cache_dir, env),
        gpu=gpu_mod.detect(env=env),
        tools=tuple((t, p) for t in TOOLS if (p := find_uv(env) if t == "uv" else shutil.which(t, path=env.get("PATH")))),
        disk_free_bytes=_disk_free(home),
        index=pip_index_settings(env),
        proxies=tuple((k, v) for k in _PROXY_VARS for name in (k, k.lower()) if (v := env.get(name))),
        simulated=False,
    )


def _libc() -> tuple[str | None, str | None]:
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36", without reading any binary
    except (ValueError, OSError, AttributeError):
        value = None
    if value and value.startswith("glibc"):
        return "glibc", value.split()[1]
    musl = sorted(Path("/lib").glob("ld-musl-*.so.1"))
    if musl:
        return "musl", None
    return None, None


def _is_wsl() -> bool:
    try:
        return "microsoft" in Path("/proc/sys/kernel/osrelease").read_text(encoding="utf-8").lower()
    except OSError:
        return False


def _disk_free(path: Path) -> int | None:
    for p in (path, *path.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return None
    return None


def pip_config_files(env: dict[str, str]) -> list[Path]:
    """pip's configuration files, lowest priority first (as pip documents)."""
    if "PIP_CONFIG_FILE" in env and env["PIP_CONFIG_FILE"] in (os.devnull, "/dev/null"):
        return []
    files: list[Path] = []
    if sys.platform == "win32":  # pragma: no cover - Windows only
        files.append(Path(env.get("PROGRAMDATA", "C:/ProgramData")) / "pip" / "pip.ini")
        files.append(Path(env.get("APPDATA", "")) / "pip" / "pip.ini")
    else:
        for d in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep):
            files.append(Path(d) / "pip" / "pip.conf")
        files.append(Path("/etc/pip.conf"))
        files.append(Path.home() / ".pip" / "pip.conf")
        files.append(Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "pip" / "pip.conf")
    if venv := env.get("VIRTUAL_ENV"):
        files.append(Path(venv) / "pip.conf")
    if cfg := env.get("PIP_CONFIG_FILE"):
        files.append(Path(cfg))
    return files


def pip_index_settings(env: dict[str, str]) -> IndexSettings:
    """The index pip would use: config files, then PIP_* variables (which win)."""
    index_url: str | None = None
    extra: list[str] = []
    links: list[str] = []
    sources: list[str] = []
    for f in pip_config_files(env):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            if not parser.read(f):
                continue
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if not parser.has_section(section):
                continue
            if v := parser.get(section, "index-url", fallback=None):
                index_url = v.strip()
                sources.append(str(f))
            if v := parser.get(section, "extra-index-url", fallback=None):
                extra.extend(v.split())
                sources.append(str(f))
            if v := parser.get(section, "find-links", fallback=None):
                links.extend(v.split())
                sources.append(str(f))
    if v := env.get("PIP_INDEX_URL"):
        index_url = v
        sources.append("PIP_INDEX_URL")
    if v := env.get("PIP_EXTRA_INDEX_URL"):
        extra = v.split()
        sources.append("PIP_EXTRA_INDEX_URL")
    if v := env.get("PIP_FIND_LINKS"):
        links = v.split()
        sources.append("PIP_FIND_LINKS")
    return IndexSettings(
        index_url=index_url,
        extra_index_urls=tuple(dict.fromkeys(extra)),
        find_links=tuple(dict.fromkeys(links)),
        sources=tuple(dict.fromkeys(sources)),
    )
