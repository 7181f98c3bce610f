"""The last smoke result of an env, kept in the env (ENV/nlpsetup-smoke.json) under a fingerprint of
what it was taken of: doctor reuses it while the env's files stay as they are, and verify and doctor
start the env whose checks took longest first.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from nlpsetup import __version__
from nlpsetup.base.files import entries
from nlpsetup.envs.env import Env
from nlpsetup.execution.smoke import CheckResult
from nlpsetup.recipes.model import Smoke

RESULT_FILE = "nlpsetup-smoke.json"  # ENV/RESULT_FILE: the last smoke result and what it was taken of


def fingerprint(env_path: Path, env_python: str, smokes: Sequence[Smoke]) -> str:
    """What a smoke result depends on: the checks, nlpsetup's version, the interpreter behind the
    env, and every installed distribution's RECORD (any install, removal or upgrade rewrites it;
    stat only, nothing is read). Byte-code written by an import changes none of these."""
    h = hashlib.sha256(json.dumps([__version__, [s.to_dict() for s in smokes]]).encode())
    try:
        real = os.path.realpath(env_python)
        st = os.stat(real)
        h.update(f"{real} {st.st_size} {st.st_mtime_ns}\n".encode())
    except OSError:
        h.update(b"no interpreter\n")
    roots = Env.at(env_path).site_packages()
    for root in roots:
        for e in entries(root):
            if e.name.endswith(".dist-info"):
                target = os.path.join(e.path, "RECORD")
            elif e.name.endswith((".egg-info", ".egg-link", ".pth")):
                target = e.path
            else:
                continue
            try:
                st = os.stat(target)
            except OSError:  # no RECORD (or the entry just went): its folder's own stat then
                try:
                    st = e.stat()
                except OSError:
                    continue
            h.update(f"{e.name} {st.st_size} {st.st_mtime_ns} {st.st_ino}\n".encode())
    return h.hexdigest()


def saved(env_path: Path, fp: str) -> dict | None:
    """The saved result if it was taken of these very files, else None."""
    from nlpsetup.base.files import read_cache

    data = read_cache(env_path / RESULT_FILE, {"fingerprint": str, "smoke": [dict], "pip_check": dict})
    return data if data and data.get("fingerprint") == fp else None


def save(env_path: Path, fp: str, **parts) -> None:
    """Keep parts of a result (smoke: a list of CheckResult dicts; others as doctor needs)
    under this fingerprint, with what was saved before under the same fingerprint."""
    from nlpsetup.base.files import write_json_atomic

    data = {**(saved(env_path, fp) or {}), **parts, "fingerprint": fp}
    try:
        write_json_atomic(env_path / RESULT_FILE, data)
    except OSError:
        pass  # a read-only env is checked afresh each time


def results_of(data: dict) -> list[CheckResult]:
    return [CheckResult(**r) for r in data.get("smoke", [])]


def expected_seconds(env_path: Path) -> float:
    """How long the env's checks took last time (saved result, else the manifest's), 0 if unknown."""
    for name in (RESULT_FILE, "nlpsetup.json"):
        try:
            data = json.loads((env_path / name).read_text(encoding="utf-8"))
            return float(sum(r.get("seconds") or 0 for r in data.get("smoke", [])))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return 0.0
