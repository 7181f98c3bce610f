"""A cache for `nlpsetup list`: its rows are a pure function of the recipe files, the
interpreters present and the platform, so a warm run checks those by stat alone and skips
importing the resolver, the TOML parser and packaging.

The key names everything the rows depend on. The GPU is not part of it: with the default
request, the compute backend never decides whether a tool is available, only which build.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nlpsetup import __version__

_FILE = "list-v1.json"
# A row as planning.availability() makes it; a cache file of another shape is computed afresh.
_ROW = {"name": str, "available": bool, "variant": (str, None), "python": (str, None), "reason": (str, None)}


def key(recipe_dirs: list[Path], env: dict[str, str] | None = None) -> str:
    from nlpsetup.base.files import entries
    from nlpsetup.facts.pythons import candidates

    env = os.environ if env is None else env
    files = []
    for d in recipe_dirs:
        for e in entries(d):
            if e.name.endswith(".toml"):
                try:
                    st = e.stat()
                except OSError:  # a dangling or looping link: the book reports it; the key notes it
                    files.append((e.path, None, None))
                    continue
                files.append((e.path, st.st_mtime_ns, st.st_size))
    pythons = []
    for path, _ in candidates(env):
        try:
            st = os.stat(path)
        except OSError:
            continue
        pythons.append((path, st.st_mtime_ns, st.st_size))
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        libc = None
    return json.dumps([__version__, sys.platform, os.uname().machine if hasattr(os, "uname") else "", libc,
                       files, pythons])


def read(cache_dir: Path, cache_key: str) -> dict | None:
    """The cached {"rows": [...], "warnings": [...]} for this key, or None."""
    from nlpsetup.base.files import read_cache

    data = read_cache(cache_dir / _FILE, {"value": {"rows": [_ROW], "warnings": [str]}})
    value = data.get("value") if data and data.get("key") == cache_key else None
    whole = (isinstance(value, dict) and {"rows", "warnings"} <= value.keys()
             and all(_ROW.keys() <= r.keys() for r in value["rows"]))
    return value if whole else None


def write(cache_dir: Path, cache_key: str, value: dict) -> None:
    from nlpsetup.base.files import write_json_atomic

    try:
        write_json_atomic(cache_dir / _FILE, {"key": cache_key, "value": value}, durable=False)
    except OSError:
        pass  # an unwritable cache only costs time


def rows(home: Path, recipe_dirs: list[Path], compute) -> dict:
    """The list rows from the cache when nothing they depend on changed, else computed and kept."""
    cache_key = key(recipe_dirs)
    from nlpsetup.base.paths import cache_dir

    value = read(cache_dir(home), cache_key)
    if value is None:
        value = compute()
        write(cache_dir(home), cache_key, value)
    return value


def answer_json() -> tuple[str, list[str]] | None:
    """`nlpsetup list --json` from a warm cache without importing click or the CLI: (stdout,
    warnings). None when the full command must run: a cold cache, or an interrupted install to
    recover first."""
    from nlpsetup.base import paths

    try:
        root = paths.home()
        journal = paths.journal_dir(root)
        if journal.is_dir() and any(journal.iterdir()):
            return None
    except Exception:  # anything unusual: the full command reports it properly
        return None
    value = read(paths.cache_dir(root), key(paths.recipe_dirs()))
    if value is None:
        return None
    from nlpsetup.base.redact import mask_text

    return mask_text(json.dumps(value["rows"], indent=2, sort_keys=False)), list(value["warnings"])
