"""The torch build a host gets (CPU or one CUDA build), decided from its GPU facts and the CUDA tables.

Pure functions over the tables in ``data/cuda.toml`` (driver -> CUDA, torch release -> CUDA builds,
build -> compute capabilities) and a host's ``GpuFacts`` (``nlpsetup.facts.gpu``, which detects them).

A host can run a CUDA build when the driver is new enough for the build's CUDA version *and* every
GPU has kernels in it (uv's automatic choice ignores the second axis: astral-sh/uv#14742).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from nlpsetup.facts.gpu import Gpu, GpuFacts, capability, driver_version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "BuildRow",
    "ComputeChoice",
    "CudaRow",
    "InvalidComputeRequest",
    "TorchRow",
    "Tables",
    "build_cuda",
    "choose_backend",
    "cuda_versions_for_driver",
    "load_tables",
    "torch_builds",
    "torch_index_url",
    "torch_release_for",
    "torch_size_mb",
]

_TABLES_PATH = Path(__file__).parents[1] / "data" / "cuda.toml"


class InvalidComputeRequest(ValueError):
    """A backend request that no build can satisfy (bad syntax, or a build this torch lacks)."""


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


def _os_key(os: str) -> str:
    key = {"darwin": "macos", "mac": "macos", "osx": "macos", "win32": "windows", "win": "windows"}.get(
        os.lower(), os.lower()
    )
    if key not in {"linux", "windows", "macos"}:
        raise ValueError(f"unknown os {os!r}: expected linux, windows or macos")
    return key


def build_cuda(tag: str) -> Version | None:
    """cu126 -> 12.6, cu92 -> 9.2, cu110 -> 11.0 (the last digit is the minor version)."""
    m = re.fullmatch(r"cu(\d+)(\d)", tag)
    return Version(f"{m.group(1)}.{m.group(2)}") if m else None


def cuda_versions_for_driver(driver: str, os: str) -> list[str]:
    """CUDA versions (newest first) whose minimum driver on ``os`` is at most ``driver``."""
    key = _os_key(os)
    if key == "macos":
        return []
    have = driver_version(driver)
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
    cuda = build_cuda(tag)
    row = tables.cuda_row(f"{cuda.major}.{cuda.minor}") if cuda else None
    build = tables.builds.get(tag)
    if row is None or build is None:
        return [f"{tag} is not in nlpsetup's CUDA tables"]
    problems = []
    need = getattr(row, f"{key}_min_driver")
    have = driver_version(facts.driver)
    if have is None:
        problems.append(f"cannot read driver version {facts.driver!r}")
    elif have < Version(need):
        usable = cuda_versions_for_driver(facts.driver or "0", key)
        runs = f"runs CUDA <= {usable[0]}" if usable else "runs no CUDA version we know"
        problems.append(f"driver {facts.driver} {runs} but {tag} needs driver >= {need} (CUDA {row.version})")
    low, high = capability(build.min_compute_capability), capability(build.max_compute_capability)
    for gpu in facts.gpus:
        cc = capability(gpu.compute_capability)
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
    if request not in {"auto", "cpu"} and build_cuda(request) is None:
        raise InvalidComputeRequest(
            f"unknown compute backend {request!r}: use auto, cpu or a build like cu126"
        )
    if key == "macos":
        return ComputeChoice("cpu", "PyTorch has no CUDA builds for macOS")
    if request == "cpu":
        return ComputeChoice("cpu", "CPU build requested")

    tables = load_tables()
    cuda_tags = [c for c in candidates if build_cuda(c)]  # in the caller's order of preference

    if request != "auto":
        if request not in cuda_tags:
            offered = ", ".join(cuda_tags) or "none"
            raise InvalidComputeRequest(f"{request} is not published for this torch (CUDA builds: {offered})")
        cuda = str(build_cuda(request))
        if facts.driver is None:
            problems = [f"no NVIDIA driver found: {facts.error or 'unknown reason'}"]
        else:
            problems = _build_problems(request, facts, key, tables)
        return ComputeChoice(request, f"{request} requested", cuda=cuda, warning="; ".join(problems) or None)

    if not cuda_tags:
        return ComputeChoice("cpu", "this torch has no CUDA builds to choose from")
    if facts.driver is None:
        return ComputeChoice("cpu", f"no NVIDIA driver found: {facts.error or 'unknown reason'}")
    if driver_version(facts.driver) is None:
        return ComputeChoice("cpu", f"cannot read driver version {facts.driver!r}")
    if impossible := _driver_too_old_for_gpu(facts, tables):
        return ComputeChoice("cpu", impossible)

    rejected = []
    for tag in cuda_tags:
        problems = _build_problems(tag, facts, key, tables)
        if not problems:
            return ComputeChoice(tag, _auto_reason(tag, facts, key, rejected), cuda=str(build_cuda(tag)))
        rejected.append(f"{tag}: " + "; ".join(problems))
    return ComputeChoice("cpu", "no CUDA build fits this host: " + " | ".join(rejected))


def _driver_too_old_for_gpu(facts: GpuFacts, tables: Tables) -> str | None:
    """An impossible pair: a GPU that this driver branch cannot drive at all (sm_120 before R570)."""
    have = driver_version(facts.driver)
    for gpu in facts.gpus:
        cc = capability(gpu.compute_capability)
        need = tables.gpu_min_driver.get(f"{cc[0]}.{cc[1]}") if cc else None
        if need and have is not None and have < Version(need):
            return (f"impossible pair: {_gpu_label(gpu)} is {gpu.sm}, which needs NVIDIA driver >= {need}; "
                    f"driver {facts.driver} cannot run it with any CUDA build (update the driver)")
    return None


def _auto_reason(tag: str, facts: GpuFacts, key: str, rejected: list[str]) -> str:
    usable = cuda_versions_for_driver(facts.driver or "0", key)
    parts = [f"driver {facts.driver} runs CUDA <= {usable[0]}"]
    ccs = sorted({cc for g in facts.gpus if (cc := capability(g.compute_capability))})
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
            order.update((b, None) for b in sorted(row.builds, key=build_cuda, reverse=True) if b not in order)
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
