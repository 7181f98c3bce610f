"""Recorded binary-wheel availability (tests/data/wheels.json) and what a simulated target accepts.

Shared by tests/test_wheel_availability.py and tools/record_wheels.py (which writes the record):
a plan is held against the wheels PyPI has for the heavy packages it would install, on the target
it was planned for, the way `pip install --only-binary=:all: --platform ... --python-version ...`
would look at them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from nlpsetup.facts import host as host_mod
from nlpsetup.resolve.model import Plan

RECORD = Path(__file__).with_name("data") / "wheels.json"
TARGETS = tuple((o, a) for o in host_mod.OSES for a in host_mod.ARCHES)
PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
# The macOS a simulated Mac runs: 14 (Sonoma) runs on Intel and Apple Silicon Macs alike.
MACOS = (14, 0)
# torch < 2.3 was compiled against numpy 1.x: with numpy 2 it fails at import (numpy's 2.0 notes).
NUMPY_ABI = (("torch", SpecifierSet("<2.3")),)
_LINUX_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
_WIN_ARCH = {"x86_64": "win_amd64", "arm64": "win_arm64"}
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@cache
def load() -> dict:
    return json.loads(RECORD.read_text())


def platforms(os_name: str, arch: str, glibc: str = host_mod.SIMULATED_GLIBC) -> list[str]:
    if os_name == "linux":
        machine, top = _LINUX_ARCH[arch], int(glibc.split(".")[1])
        out = []
        for minor in range(top, 4, -1):
            out.append(f"manylinux_2_{minor}_{machine}")
            if minor in _LEGACY_MANYLINUX:
                out.append(f"{_LEGACY_MANYLINUX[minor]}_{machine}")
        return out
    if os_name == "macos":
        return list(tags.mac_platforms(MACOS, arch))
    return [_WIN_ARCH[arch]]


@cache
def supported(os_name: str, arch: str, python: str) -> frozenset[tags.Tag]:
    """The tags pip accepts for `--platform <os-arch> --python-version <python>` (CPython)."""
    version = tuple(int(p) for p in python.split("."))
    plats = platforms(os_name, arch)
    return frozenset([*tags.cpython_tags(version, [f"cp{version[0]}{version[1]}"], plats),
                      *tags.compatible_tags(version, f"cp{version[0]}{version[1]}", plats)])


def has_wheel(filenames: list[str], accepted: frozenset[tags.Tag]) -> bool:
    return any(not parse_wheel_filename(f)[3].isdisjoint(accepted) for f in filenames)


def newest_with_wheel(name: str, spec: SpecifierSet, os_name: str, arch: str, python: str,
                      wheels: dict | None = None) -> Version | None:
    """The version pip would take of `name spec` from binary wheels alone, or None if there is none."""
    versions = (wheels if wheels is not None else load()["wheels"]).get(name, {})
    requires_python = load()["requires_python"].get(name, {})
    accepted = supported(os_name, arch, python)
    for v in sorted(map(Version, versions), reverse=True):
        rp = requires_python.get(str(v))
        if rp and not SpecifierSet(rp).contains(f"{python}.0"):
            continue
        if spec.contains(v, prereleases=True) and has_wheel(versions[str(v)], accepted):
            return v
    return None


def marker_env(os_name: str, arch: str, python: str) -> dict[str, str]:
    return {
        "python_version": python, "python_full_version": f"{python}.0", "implementation_name": "cpython",
        "platform_python_implementation": "CPython", "extra": "",
        "os_name": "nt" if os_name == "windows" else "posix",
        "sys_platform": {"linux": "linux", "macos": "darwin", "windows": "win32"}[os_name],
        "platform_system": {"linux": "Linux", "macos": "Darwin", "windows": "Windows"}[os_name],
        "platform_machine": {"linux": _LINUX_ARCH[arch], "macos": arch,
                             "windows": "AMD64" if arch == "x86_64" else "ARM64"}[os_name],
    }


def _requirements(argv: tuple[str, ...]) -> list[Requirement]:
    """The requirement arguments of a pip install step (options and their values left out)."""
    out, skip = [], False
    for arg in argv[argv.index("install") + 1:] if "install" in argv else ():
        if skip or arg.startswith("-"):
            skip = arg in ("-c", "--index-url", "--extra-index-url", "-r")
            continue
        try:
            out.append(Requirement(arg))
        except InvalidRequirement:
            continue
    return out


def heavy_specs(plan: Plan, os_name: str, arch: str, python: str) -> tuple[dict[str, SpecifierSet], list[str]]:
    """Every heavy package the plan installs with its combined specifier (the plan's own requirements,
    its constraints, and what its packages pull per the record), and the requirements the record
    cannot follow (an open-ended package with no version for this Python: pip would find none)."""
    record = load()
    heavy = set(record["heavy"])
    env = marker_env(os_name, arch, python)
    specs: dict[str, SpecifierSet] = {}
    unknown: list[str] = []

    def add(req: Requirement) -> None:
        if req.marker and not req.marker.evaluate(env):
            return
        key = canonicalize_name(req.name)
        if key in heavy:
            specs[key] = specs.get(key, SpecifierSet()) & req.specifier

    reqs = [r for step in plan.steps if step.name in ("framework", "install") for r in _requirements(step.argv)]
    for req in reqs:
        add(req)
        key = canonicalize_name(req.name)
        if key in heavy or (req.marker and not req.marker.evaluate(env)):
            continue
        exact = [s.version for s in req.specifier if s.operator == "==" and not s.version.endswith("*")]
        version = exact[0] if exact else record["mains"].get(f"{key}{req.specifier}", {}).get(python)
        if version is None:
            unknown.append(f"{req} (no release for Python {python})")
            continue
        for raw in record["requires"].get(f"{key}=={Version(version)}", []):
            add(Requirement(raw))
    present = set(specs)
    for c in plan.constraints:
        req = Requirement(c)
        if canonicalize_name(req.name) in present:  # a constraint only narrows what is installed
            add(req)
    return specs, unknown


def problems(plan: Plan, os_name: str, arch: str, python: str) -> list[str]:
    """Why pip would find no binary install for this plan on this target (empty when it would)."""
    specs, out = heavy_specs(plan, os_name, arch, python)
    chosen = {}
    for name, spec in sorted(specs.items()):
        version = newest_with_wheel(name, spec, os_name, arch, python)
        if version is None:
            out.append(f"no {name}{spec or ''} wheel for cp{python.replace('.', '')} on {os_name}-{arch}")
        chosen[name] = version
    numpy = specs.get("numpy", SpecifierSet())
    env = marker_env(os_name, arch, python)
    for req in map(Requirement, plan.constraints):
        if canonicalize_name(req.name) == "numpy" and (req.marker is None or req.marker.evaluate(env)):
            numpy &= req.specifier
    paired = newest_with_wheel("numpy", numpy, os_name, arch, python)
    for name, old in NUMPY_ABI:
        if chosen.get(name) is not None and old.contains(chosen[name]) and paired and paired.major >= 2:
            out.append(f"{name} {chosen[name]} was built for numpy 1.x but pip pairs it with numpy {paired}")
    return out

