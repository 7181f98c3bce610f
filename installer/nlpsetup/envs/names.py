"""Env names: which names an env may have (they become directory names under the envs folder)."""

from __future__ import annotations

import re

from nlpsetup.base import paths
from nlpsetup.base.errors import NlpsetupError

_ENV_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def check_env_name(name: str) -> str:
    """Env names become directory names: a safe alphabet only, never a path."""
    bad = None
    if not _ENV_NAME.fullmatch(name or ""):
        bad = "use 1-64 letters, digits, '.', '_' or '-'"
    elif name in (".", "..") or name.startswith("."):
        bad = "it must not start with '.'"
    elif name.startswith("-"):  # `nlpsetup run -x` or `rm -rf ENVS/-x` would read it as an option
        bad = "it must not start with '-'"
    elif paths.is_reserved(name):
        bad = f"names ending in {' or '.join(paths.RESERVED_SUFFIXES)} (or .failed-N) are nlpsetup's own leftovers"
    elif name.split(".")[0].lower() in _WINDOWS_DEVICES:
        bad = "it is a reserved device name on Windows"
    if bad:
        shown = name.encode("unicode_escape").decode() if name else ""
        raise NlpsetupError(f"invalid env name {shown!r}: {bad}", hint="for example: --name my-env")
    return name

