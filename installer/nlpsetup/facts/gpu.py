"""NVIDIA GPU facts of a host: what ``nvidia-smi`` (or the kernel module) says about its driver and GPUs.

Two layers, each usable alone:

* parsers: pure functions of recorded ``nvidia-smi`` / ``/proc`` text;
* ``detect()``: runs them against the real host through injectable seams, and never raises for a
  missing, failing or hanging ``nvidia-smi`` (those are answers: ``GpuFacts.error`` says why).

Which torch build such a host gets is decided from these facts in ``nlpsetup.resolve.compute``.
"""

from __future__ import annotations

import csv
import os as _os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

__all__ = [
    "ENV_DRIVER",
    "Gpu",
    "GpuFacts",
    "QUERY_FIELDS",
    "capability",
    "classify_error",
    "detect",
    "driver_version",
    "is_desktop_driver",
    "parse_proc_version",
    "parse_query_csv",
    "parse_smi_table",
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
        cc = capability(self.compute_capability)
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
# Versions (pure)


def _version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def driver_version(text: str | None) -> Version | None:
    """A driver version; a bare branch like `525` (NLPSETUP_CUDA_DRIVER=525) means any 525.x,
    so it is read as the newest of that branch, not as something below 525.60.13."""
    if text and text.strip().isdigit():
        return _version(f"{text.strip()}.999.999")
    return _version(text)


def capability(text: str | None) -> tuple[int, int] | None:
    """A compute capability as (major, minor): "8.9" -> (8, 9); None when it is not one."""
    m = re.fullmatch(r"(\d+)\.(\d+)", text.strip()) if text else None
    return (int(m.group(1)), int(m.group(2))) if m else None


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
