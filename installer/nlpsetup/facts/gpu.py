"""NVIDIA GPU facts and the choice of a PyTorch build (CPU or one CUDA build) for a host.

Three layers, each usable alone:

* parsers: pure functions of recorded ``nvidia-smi`` / ``/proc`` text;
* ``detect()``: runs them against the real host through injectable seams, and never raises for a
  missing, failing or hanging ``nvidia-smi`` (those are answers: ``GpuFacts.error`` says why);
* decisions: pure functions over the tables in ``data/cuda.toml`` (driver -> CUDA, torch release ->
  CUDA builds, build -> compute capabilities).

A host can run a CUDA build when the driver is new enough for the build's CUDA version *and* every
GPU has kernels in it (uv's automatic choice ignores the second axis: astral-sh/uv#14742).
"""

from __future__ import annotations

import csv
import functools
import os as _os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "BuildRow",
    "ComputeChoice",
    "CudaRow",
    "ENV_DRIVER",
    "Gpu",
    "GpuFacts",
    "InvalidComputeRequest",
    "QUERY_FIELDS",
    "TorchRow",
    "Tables",
    "choose_backend",
    "classify_error",
    "cuda_versions_for_driver",
    "detect",
    "is_desktop_driver",
    "load_tables",
    "parse_proc_version",
    "parse_query_csv",
    "parse_smi_table",
    "torch_builds",
    "torch_index_url",
    "torch_size_mb",
]

# Like LTT_PYTORCH_COMPUTATION_BACKEND / UV_CUDA_DRIVER_VERSION: lets a Docker build without a GPU
# pick the CUDA build of the host it will run on. "none" forces the CPU build.
ENV_DRIVER = "NLPSETUP_CUDA_DRIVER"

QUERY_FIELDS = ("name", "driver_version", "compute_cap", "memory.total")
# Drivers up to at least 470.x reject compute_cap with exit 2 (candle#733, TensorRT-LLM#735).
_QUERY_FIELDS_OLD = ("name", "driver_version", "memory.total")

# WSL2 ships nvidia-smi there, and that folder is not always on PATH; a distro nvidia-smi found first
# on PATH cannot reach the Windows driver ("couldn't communicate"), so each candidate is tried.
_SMI_CANDIDATES = ("nvidia-smi", "/usr/lib/wsl/lib/nvidia-smi")
# uv reads /sys first: it holds the bare version. /proc holds it inside the NVRM line.
_VERSION_FILES = ("/sys/module/nvidia/version", "/proc/driver/nvidia/version")

_TABLES_PATH = Path(__file__).parents[1] / "data" / "cuda.toml"


class InvalidComputeRequest(ValueError):
    """A backend request that no build can satisfy (bad syntax, or a build this torch lacks)."""


# --------------------------------------------------------------------------------------------------
# Facts


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: str | None = None  # "8.9"; None when nvidia-smi could not say
    memory_mib: int | None = None

    @property
    def sm(self) -> str | None:
        """``sm_89`` style, as torch prints it in its architecture errors."""
        cc = _cc(self.compute_capability)
        return None if cc is None else f"sm_{cc[0]}{cc[1]}"


@dataclass(frozen=True)
class GpuFacts:
    driver: str | None
    gpus: tuple[Gpu, ...] = ()
    cuda_header: str | None = None  # "CUDA Version" of the nvidia-smi table: the driver's CUDA API
    source: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "gpus": [
                {"name": g.name, "compute_capability": g.compute_capability, "memory_mib": g.memory_mib}
                for g in self.gpus
            ],
            "cuda_header": self.cuda_header,
            "source": self.source,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GpuFacts:
        return cls(
            driver=d.get("driver"),
            gpus=tuple(
                Gpu(g["name"], g.get("compute_capability"), g.get("memory_mib")) for g in d.get("gpus", ())
            ),
            cuda_header=d.get("cuda_header"),
            source=d.get("source", ""),
            error=d.get("error"),
        )


# --------------------------------------------------------------------------------------------------
# Parsers (pure)

_NA = {"", "n/a", "[n/a]", "[not supported]", "not supported", "err!", "[unknown error]"}
_KNOWN_FIELDS = {"name", "driver_version", "compute_cap", "memory.total", "index", "compute_mode", "uuid"}
_UNIT = re.compile(r"\s*\[[^\]]*\]$")  # "memory.total [MiB]" in csv headers without nounits


def _na(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in _NA else value


def _mib(value: str | None) -> int | None:
    value = _na(value)
    if value is None:
        return None
    m = re.fullmatch(r"(\d+)\s*(MiB)?", value)
    return int(m.group(1)) if m else None


def parse_query_csv(text: str, columns: Iterable[str] = QUERY_FIELDS) -> GpuFacts:
    """Parse ``nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`` output.

    A header row, when present, names the columns (any order, units allowed); without one the
    columns are ``columns`` (the fields that were queried). One GPU per data row; the driver is the
    first row's. Fields that were not queried stay None (a driver-only query gives nameless GPUs).
    """
    rows = [r for r in csv.reader(text.splitlines(), skipinitialspace=True) if any(c.strip() for c in r)]
    names = [c.strip() for c in columns]
    if rows and any(_UNIT.sub("", c.strip()) in _KNOWN_FIELDS for c in rows[0]):
        names = [_UNIT.sub("", c.strip()) for c in rows[0]]
        rows = rows[1:]
    driver = None
    gpus = []
    for row in rows:
        cell = dict(zip(names, (c.strip() for c in row), strict=False))
        driver = driver or _na(cell.get("driver_version"))
        gpus.append(
            Gpu(
                name=_na(cell.get("name")) or "",
                compute_capability=_na(cell.get("compute_cap")),
                memory_mib=_mib(cell.get("memory.total")),
            )
        )
    return GpuFacts(driver=driver, gpus=tuple(gpus), source="nvidia-smi --query-gpu")


_HEADER_DRIVER = re.compile(r"(?:Driver|KMD) Version:\s*([^\s|]+)")
_HEADER_CUDA = re.compile(r"CUDA (?:UMD )?Version:\s*([^\s|]+)")
_GPU_ROW = re.compile(r"^\|\s+(\d+)\s+(.+?)\s+(?:On|Off)\s+\|")
_MEMORY = re.compile(r"(\d+)MiB\s*/\s*(\d+)MiB")


def parse_smi_table(text: str) -> GpuFacts:
    """Parse the plain ``nvidia-smi`` table: driver, header CUDA version and GPU names / memory.

    The driver is "Driver Version" ("KMD Version" from R610 on), never "NVIDIA-SMI": on WSL2, and
    with a snap's bundled nvidia-smi, the two differ and only the driver field is the driver CUDA
    talks to. The table shows no compute capability.
    """
    lines = text.splitlines()
    driver = cuda = None
    for line in lines:
        if driver is None and (m := _HEADER_DRIVER.search(line)):
            driver = _na(m.group(1))
        if cuda is None and (m := _HEADER_CUDA.search(line)):
            cuda = _na(m.group(1))
    gpus = []
    for i, line in enumerate(lines):
        if "Processes:" in line:
            break  # process rows start with a GPU index too
        if m := _GPU_ROW.match(line):
            memory = _MEMORY.search(lines[i + 1]) if i + 1 < len(lines) else None
            gpus.append(Gpu(name=m.group(2), memory_mib=int(memory.group(2)) if memory else None))
    return GpuFacts(driver=driver, gpus=tuple(gpus), cuda_header=cuda, source="nvidia-smi")


_NVRM = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)")


def parse_proc_version(text: str) -> str | None:
    """Driver version from ``/proc/driver/nvidia/version`` or ``/sys/module/nvidia/version``.

    Jetson boards print their L4T release there (e.g. 35.3.1), which is returned as is;
    ``is_desktop_driver`` tells the two apart.
    """
    if m := _NVRM.search(text):
        return m.group(1)
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    return first if re.fullmatch(r"\d+(?:\.\d+)+", first) else None


def is_desktop_driver(version: str) -> bool:
    """Desktop/datacentre drivers are numbered 300 and up; Jetson's L4T releases are not."""
    v = _version(version)
    return v is not None and v.major >= 300


def classify_error(returncode: int, output: str) -> str:
    """A short reason for a failed nvidia-smi run, from its exit status and output."""
    text = output.strip()
    low = text.lower()
    if "is not a valid field to query" in low:
        m = re.search(r'Field "([^"]+)"', text)
        return f"nvidia-smi does not know the field {m.group(1) if m else '?'!r} (driver too old)"
    if "version mismatch" in low:
        m = re.search(r"NVML library version:\s*([\d.]+)", text)
        lib = f" (NVML library {m.group(1)})" if m else ""
        return (
            "driver/library version mismatch"
            + lib
            + ": the loaded kernel module differs from the installed driver; reboot or reload it"
        )
    if "couldn't communicate with the nvidia driver" in low:
        return "nvidia-smi could not communicate with the NVIDIA driver (driver not loaded or not installed)"
    if "no supported gpus were found" in low:
        return "no supported NVIDIA GPU found (none bound to the driver)"
    if "no devices were found" in low:
        return "nvidia-smi found no NVIDIA GPU (No devices were found)"
    first = text.splitlines()[0] if text else "no output"
    return f"nvidia-smi exited with status {returncode}: {first}"


# --------------------------------------------------------------------------------------------------
# Detection (the only part that touches the host)

Run = Callable[[list[str], float], tuple[int, str]]


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    from nlpsetup.base import proc

    try:
        # stderr merged: nvidia-smi prints its failures ("couldn't communicate...") there or on stdout.
        return proc.capture(argv, env=proc.child_env(), timeout=timeout, merge_stderr=True, raise_timeout=True)
    except proc.QueryTimeout as e:
        raise TimeoutError(str(e)) from None


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _query_argv(smi: str, fields: Iterable[str]) -> list[str]:
    return [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]


def detect(
    run: Run | None = None,
    read_text: Callable[[str], str | None] | None = None,
    which: Callable[[str], str | None] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> GpuFacts:
    """Find the NVIDIA driver and GPUs of this host.

    Order: the ``NLPSETUP_CUDA_DRIVER`` override; ``nvidia-smi --query-gpu`` (retried without
    compute_cap on drivers that reject it); the kernel module version files, for the driver alone,
    when there is no nvidia-smi. A failing nvidia-smi is final: a driver that nvidia-smi cannot reach
    (mismatch, not loaded) is one CUDA cannot use either.
    """
    run = run or _run
    read_text = read_text or _read_text
    which = which or shutil.which
    env = _os.environ if env is None else env

    override = env.get(ENV_DRIVER, "").strip()
    if override:
        source = f"env {ENV_DRIVER}"
        if override.lower() in {"none", "cpu"}:
            return GpuFacts(driver=None, source=source, error=f"{ENV_DRIVER}={override} asks for no GPU")
        if _version(override) is None:
            return GpuFacts(
                driver=None, source=source, error=f"{ENV_DRIVER}={override!r} is not a driver version"
            )
        return GpuFacts(driver=override, source=source)

    failed: GpuFacts | None = None
    for smi in dict.fromkeys(p for p in map(which, _SMI_CANDIDATES) if p):
        facts = _detect_smi(smi, run, timeout)
        if facts.driver is not None:
            return facts
        failed = failed or facts
    if failed is not None:
        return failed  # the first nvidia-smi's reason is the one the user sees on PATH

    for path in _VERSION_FILES:
        text = read_text(path)
        version = parse_proc_version(text) if text else None
        if version is None:
            continue
        if not is_desktop_driver(version):
            return GpuFacts(
                driver=None,
                source=path,
                error=f"kernel module version {version} is not a desktop driver (Jetson L4T?); "
                "download.pytorch.org has no builds for it",
            )
        return GpuFacts(driver=version, source=path)
    return GpuFacts(driver=None, error="nvidia-smi is not on PATH and there is no NVIDIA kernel module")


def _detect_smi(smi: str, run: Run, timeout: float) -> GpuFacts:
    fields = QUERY_FIELDS
    for attempt in range(2):
        try:
            code, out = run(_query_argv(smi, fields), timeout)
        except TimeoutError:
            return GpuFacts(
                driver=None, source="nvidia-smi", error=f"nvidia-smi hung (no answer within {timeout:g}s)"
            )
        except OSError as e:
            return GpuFacts(driver=None, source="nvidia-smi", error=f"could not run nvidia-smi: {e}")
        if code != 0 and attempt == 0 and "is not a valid field to query" in out:
            fields = _QUERY_FIELDS_OLD
            continue
        break
    if code != 0:
        return GpuFacts(driver=None, source="nvidia-smi", error=classify_error(code, out))
    facts = parse_query_csv(out, fields)
    source = "nvidia-smi --query-gpu" + (" (no compute_cap on this driver)" if fields != QUERY_FIELDS else "")
    if facts.driver is None:
        return replace(facts, source=source, error="nvidia-smi printed no driver version")
    return replace(facts, source=source)


# --------------------------------------------------------------------------------------------------
# Tables


@dataclass(frozen=True)
class CudaRow:
    version: str
    linux_min_driver: str
    windows_min_driver: str
    source: str


@dataclass(frozen=True)
class TorchRow:
    release: str
    python: str
    builds: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class BuildRow:
    tag: str
    cuda: str
    min_compute_capability: str
    max_compute_capability: str
    source: str


@dataclass(frozen=True)
class Tables:
    cuda: tuple[CudaRow, ...]
    torch: tuple[TorchRow, ...]
    builds: Mapping[str, BuildRow] = field(default_factory=dict)
    sizes: Mapping[str, Any] = field(default_factory=dict)
    gpu_min_driver: Mapping[str, str] = field(default_factory=dict)  # compute capability -> driver

    def cuda_row(self, version: str) -> CudaRow | None:
        return next((r for r in self.cuda if r.version == version), None)


@functools.cache
def load_tables(path: Path | None = None) -> Tables:
    """The tables of ``data/cuda.toml`` (read once; the file ships inside the package)."""
    with open(path or _TABLES_PATH, "rb") as f:
        data = tomllib.load(f)
    return Tables(
        cuda=tuple(CudaRow(**r) for r in data["cuda"]),
        torch=tuple(
            TorchRow(r["release"], r["python"], tuple(r["builds"]), r["source"]) for r in data["torch"]
        ),
        builds={tag: BuildRow(tag=tag, **r) for tag, r in data["builds"].items()},
        sizes=dict(data.get("sizes", {})),
        gpu_min_driver={cc: row["driver"] for cc, row in data.get("gpu_min_driver", {}).items()},
    )


# --------------------------------------------------------------------------------------------------
# Decisions (pure)


def _version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _driver(text: str | None) -> Version | None:
    """A driver version; a bare branch like `525` (NLPSETUP_CUDA_DRIVER=525) means any 525.x,
    so it is read as the newest of that branch, not as something below 525.60.13."""
    if text and text.strip().isdigit():
        return Version(f"{text.strip()}.999.999")
    return _version(text)


def _cc(text: str | None) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)", text.strip()) if text else None
    return (int(m.group(1)), int(m.group(2))) if m else None


def _os_key(os: str) -> str:
    key = {"darwin": "macos", "mac": "macos", "osx": "macos", "win32": "windows", "win": "windows"}.get(
        os.lower(), os.lower()
    )
    if key not in {"linux", "windows", "macos"}:
        raise ValueError(f"unknown os {os!r}: expected linux, windows or macos")
    return key


def _build_cuda(tag: str) -> Version | None:
    """cu126 -> 12.6, cu92 -> 9.2, cu110 -> 11.0 (the last digit is the minor version)."""
    m = re.fullmatch(r"cu(\d+)(\d)", tag)
    return Version(f"{m.group(1)}.{m.group(2)}") if m else None


def cuda_versions_for_driver(driver: str, os: str) -> list[str]:
    """CUDA versions (newest first) whose minimum driver on ``os`` is at most ``driver``."""
    key = _os_key(os)
    if key == "macos":
        return []
    have = _driver(driver)
    if have is None:
        raise ValueError(f"not a driver version: {driver!r}")
    rows = [r for r in load_tables().cuda if Version(getattr(r, f"{key}_min_driver")) <= have]
    return [r.version for r in sorted(rows, key=lambda r: Version(r.version), reverse=True)]


@dataclass(frozen=True)
class ComputeChoice:
    backend: str  # "cpu" or a build tag such as "cu126"
    reason: str
    cuda: str | None = None
    # Set when an explicitly requested build is returned although this host cannot run it.
    warning: str | None = None


def _gpu_label(gpu: Gpu) -> str:
    return f"GPU {gpu.name}" if gpu.name else "the GPU"


def _build_problems(tag: str, facts: GpuFacts, key: str, tables: Tables) -> list[str]:
    """Why this host cannot run ``tag`` (empty when it can). Unknown compute capabilities pass."""
    cuda = _build_cuda(tag)
    row = tables.cuda_row(f"{cuda.major}.{cuda.minor}") if cuda else None
    build = tables.builds.get(tag)
    if row is None or build is None:
        return [f"{tag} is not in nlpsetup's CUDA tables"]
    problems = []
    need = getattr(row, f"{key}_min_driver")
    have = _driver(facts.driver)
    if have is None:
        problems.append(f"cannot read driver version {facts.driver!r}")
    elif have < Version(need):
        usable = cuda_versions_for_driver(facts.driver or "0", key)
        runs = f"runs CUDA <= {usable[0]}" if usable else "runs no CUDA version we know"
        problems.append(f"driver {facts.driver} {runs} but {tag} needs driver >= {need} (CUDA {row.version})")
    low, high = _cc(build.min_compute_capability), _cc(build.max_compute_capability)
    for gpu in facts.gpus:
        cc = _cc(gpu.compute_capability)
        if cc is None or low is None or high is None:
            continue
        if cc < low:
            problems.append(
                f"{_gpu_label(gpu)} is {gpu.sm} (compute capability {gpu.compute_capability}) but {tag} "
                f"needs sm_{low[0]}{low[1]} or newer (compute capability {build.min_compute_capability})"
            )
        elif cc[0] > high[0]:
            problems.append(
                f"{_gpu_label(gpu)} is {gpu.sm} (compute capability {gpu.compute_capability}) but {tag} "
                f"has kernels only up to sm_{high[0]}{high[1]}"
            )
    return problems


def choose_backend(candidates: list[str], facts: GpuFacts, os: str, request: str = "auto") -> ComputeChoice:
    """Pick the torch build for this host among ``candidates`` (build tags, e.g. from torch_builds).

    * ``request="cpu"``: the CPU build.
    * ``request="cuXYZ"``: that build, which must be a candidate (else InvalidComputeRequest). It is
      returned even when the host cannot run it (the user may build an image for another machine);
      ``warning`` then says why it will not work here.
    * ``request="auto"``: the first candidate (``torch_builds`` orders them: newest torch, then its
      newest CUDA) whose CUDA version the driver supports and that has kernels for every GPU whose
      compute capability is known; otherwise the CPU build, with the reason. Non-CUDA candidates
      (rocm*, xpu) are ignored.
    """
    key = _os_key(os)
    request = request.strip().lower()
    if request not in {"auto", "cpu"} and _build_cuda(request) is None:
        raise InvalidComputeRequest(
            f"unknown compute backend {request!r}: use auto, cpu or a build like cu126"
        )
    if key == "macos":
        return ComputeChoice("cpu", "PyTorch has no CUDA builds for macOS")
    if request == "cpu":
        return ComputeChoice("cpu", "CPU build requested")

    tables = load_tables()
    cuda_tags = [c for c in candidates if _build_cuda(c)]  # in the caller's order of preference

    if request != "auto":
        if request not in cuda_tags:
            offered = ", ".join(cuda_tags) or "none"
            raise InvalidComputeRequest(f"{request} is not published for this torch (CUDA builds: {offered})")
        cuda = str(_build_cuda(request))
        if facts.driver is None:
            problems = [f"no NVIDIA driver found: {facts.error or 'unknown reason'}"]
        else:
            problems = _build_problems(request, facts, key, tables)
        return ComputeChoice(request, f"{request} requested", cuda=cuda, warning="; ".join(problems) or None)

    if not cuda_tags:
        return ComputeChoice("cpu", "this torch has no CUDA builds to choose from")
    if facts.driver is None:
        return ComputeChoice("cpu", f"no NVIDIA driver found: {facts.error or 'unknown reason'}")
    if _version(facts.driver) is None:
        return ComputeChoice("cpu", f"cannot read driver version {facts.driver!r}")
    if impossible := _driver_too_old_for_gpu(facts, tables):
        return ComputeChoice("cpu", impossible)

    rejected = []
    for tag in cuda_tags:
        problems = _build_problems(tag, facts, key, tables)
        if not problems:
            return ComputeChoice(tag, _auto_reason(tag, facts, key, rejected), cuda=str(_build_cuda(tag)))
        rejected.append(f"{tag}: " + "; ".join(problems))
    return ComputeChoice("cpu", "no CUDA build fits this host: " + " | ".join(rejected))


def _driver_too_old_for_gpu(facts: GpuFacts, tables: Tables) -> str | None:
    """An impossible pair: a GPU that this driver branch cannot drive at all (sm_120 before R570)."""
    have = _driver(facts.driver)
    for gpu in facts.gpus:
        cc = _cc(gpu.compute_capability)
        need = tables.gpu_min_driver.get(f"{cc[0]}.{cc[1]}") if cc else None
        if need and have is not None and have < Version(need):
            return (f"impossible pair: {_gpu_label(gpu)} is {gpu.sm}, which needs NVIDIA driver >= {need}; "
                    f"driver {facts.driver} cannot run it with any CUDA build (update the driver)")
    return None


def _auto_reason(tag: str, facts: GpuFacts, key: str, rejected: list[str]) -> str:
    usable = cuda_versions_for_driver(facts.driver or "0", key)
    parts = [f"driver {facts.driver} runs CUDA <= {usable[0]}"]
    ccs = sorted({cc for g in facts.gpus if (cc := _cc(g.compute_capability))})
    parts.append(
        "GPUs " + ", ".join(f"sm_{a}{b}" for a, b in ccs)
        if ccs
        else "compute capability unknown, not checked"
    )
    reason = f"{tag} is the first build this host runs, newest release first ({'; '.join(parts)})"
    if rejected:
        reason += "; skipped " + " | ".join(rejected)
    return reason


def _release_matches(release: str, spec: SpecifierSet) -> bool:
    # A row stands for every X.Y.z; try the patch numbers a specifier is likely to name.
    return any(spec.contains(f"{release}.{patch}", prereleases=True) for patch in (*range(10), 99))


def torch_builds(torch_spec: str, python_version: str) -> list[str]:
    """CUDA builds of the torch releases matching ``torch_spec`` on this Python, in order of preference:
    the newest torch release first, and within a release its newest CUDA first. The first build a
    host runs is then the newest torch it can have (cu126 with torch 2.14 beats cu129, which only
    torch 2.8 has), with the newest CUDA that torch offers it."""
    try:
        spec = SpecifierSet(torch_spec.strip())
    except InvalidSpecifier as e:
        raise ValueError(f"not a version specifier: {torch_spec!r}") from e
    order: dict[str, None] = {}
    rows = sorted(load_tables().torch, key=lambda r: Version(r.release), reverse=True)
    for row in rows:
        if _release_matches(row.release, spec) and SpecifierSet(row.python).contains(python_version):
            order.update((b, None) for b in sorted(row.builds, key=_build_cuda, reverse=True) if b not in order)
    return list(order)


def torch_release_for(tag: str, torch_spec: str, python_version: str) -> str | None:
    """The newest torch release matching ``torch_spec`` that has build ``tag`` on this Python."""
    spec = SpecifierSet(torch_spec.strip())
    rows = sorted(load_tables().torch, key=lambda r: Version(r.release), reverse=True)
    return next((r.release for r in rows if tag in r.builds and _release_matches(r.release, spec)
                 and SpecifierSet(r.python).contains(python_version)), None)


def torch_index_url(backend: str, mirror: str | None = None) -> str:
    """The wheel index of a backend: download.pytorch.org, or the same layout under a mirror."""
    base = mirror.rstrip("/") if mirror else "https://download.pytorch.org/whl"
    return f"{base}/{backend}"


def torch_size_mb(backend: str) -> int:
    """Rough installed size of torch and its CUDA wheels for a backend (see [sizes] in cuda.toml)."""
    sizes = load_tables().sizes
    return int(sizes["cpu_torch_mb"] if backend == "cpu" else sizes["cuda_torch_mb"])
