"""The operating systems and CPU architectures nlpsetup plans for: one table, used by host
facts, recipes (`platforms`, `arch`, `targets`), simulated hosts and CI matrices."""

from __future__ import annotations

OSES = ("linux", "macos", "windows")
ARCHES = ("x86_64", "arm64")
TARGETS = tuple(f"{o}-{a}" for o in OSES for a in ARCHES)  # "linux-arm64": a pair a wheel can target
# What other tools call them: platform.machine() and Linux say aarch64, Windows says AMD64.
ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "x86-64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def normalize_arch(name: str) -> str:
    return ARCH_ALIASES.get(name.lower(), name.lower())
