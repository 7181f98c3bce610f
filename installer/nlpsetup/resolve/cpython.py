"""What resolution knows about CPython releases: the minors, their end of life, the last pip of each
old one, the oldest that can host an env, and whether a Python version fits a variant's range."""

from __future__ import annotations

import functools

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

# CPython minor releases a simulated host may have (newest last), with their end of life
# (https://devguide.python.org/versions/). A plan on an end-of-life Python gets a warning.
PYTHON_EOL = {
    "3.6": "2021-12-23", "3.7": "2023-06-27", "3.8": "2024-10-07", "3.9": "2025-10-31",
    "3.10": "2026-10-31", "3.11": "2027-10-31", "3.12": "2028-10-31", "3.13": "2029-10-31",
    "3.14": "2030-10-31",
}
KNOWN_MINORS = tuple(PYTHON_EOL)
# The newest pip that still runs on each old Python (pip's own Requires-Python history).
PIP_CAP = {"3.6": "21.3.1", "3.7": "24.0", "3.8": "25.0.1"}
# Below this, there is no `venv` module and today's virtualenv cannot create an env.
MIN_PYTHON = Version("3.6")
# virtualenv (its API) creates envs for these; older ones use the target's own `-m venv`.
VIRTUALENV_MIN = Version("3.9")


def version_of(text: str) -> Version:
    """A host's version (Python, glibc) as a Version; one that is not a version reads as 0."""
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def in_range(spec: SpecifierSet, version: str) -> bool:
    """Whether a full version (3.8.10) is in a range, pre-releases included."""
    return spec.contains(version_of(version), prereleases=True)


@functools.lru_cache(maxsize=4096)
def python_fits(spec: SpecifierSet, version: str) -> bool:
    """--python 3.8 fits '>=3.6,<3.9' if some 3.8.x does."""
    parts = version.split(".")
    if len(parts) >= 3:
        return in_range(spec, version)
    # Only the micro versions a clause names (and their neighbours) can change the answer.
    micros = {0, 99}
    for clause in spec:
        rel = version_of(clause.version.rstrip(".*")).release
        if tuple(int(p) for p in parts) == rel[:2] and len(rel) > 2:
            micros.update({rel[2] - 1, rel[2], rel[2] + 1})
    return any(in_range(spec, f"{version}.{micro}") for micro in micros if micro >= 0)


def known_minors(spec: SpecifierSet, prefix: str | None) -> list[str]:
    """CPython minors (oldest first) that a variant's range admits, e.g. ['3.6', '3.7', '3.8']."""
    out = [m for m in KNOWN_MINORS if python_fits(spec, m) and version_of(m) >= MIN_PYTHON]
    if prefix:
        head = ".".join(prefix.split(".")[:2])
        out = [m for m in out if m == head or m.startswith(head + ".")]
    return out


def can_host_env(version: str) -> bool:
    """Python 2.7 and 3.5 have no venv that today's tools can create."""
    return version_of(version) >= MIN_PYTHON
