"""The manifest of an env, ENV/nlpsetup.json: versioned JSON, written atomically, and checked on
read against the shape below, so that no reader meets a `null` or a list where it expects a table."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nlpsetup.base.files import (
    MAX_JSON_BYTES,
    Map,
    NotAFile,
    Required,
    read_regular,
    shape_problem,
    write_json_atomic,
)
from nlpsetup.envs.env import Env

SCHEMA_VERSION = 1


class ManifestError(Exception):
    pass


class Corrupt(ManifestError):
    """The manifest is there but cannot be trusted (not JSON, wrong shape): the env is corrupt."""


# What each key holds where present (older manifests lack some keys); see files.shape_problem.
# Required: what readers index directly, written by every nlpsetup since the first manifest.
_OPT_STR = (str, None)
_SMOKE = {"imports": [str], "code": str, "commands": [[str]], "timeout": int, "env": Map(str)}
_SHAPE = {
    "nlpsetup_version": _OPT_STR,
    "env": Required({"name": Required(str), "path": str}),
    "tools": Required([{"name": Required(str), "request": Required(str), "variant": Required(str),
                        "recipe_digest": _OPT_STR, "smoke": _SMOKE}]),
    "interpreter": Required({"version": Required(str), "implementation": _OPT_STR, "path": _OPT_STR,
                             "source": _OPT_STR, "env_python": Required(str)}),
    "backend": _OPT_STR,
    "compute": {"backend": _OPT_STR, "reason": _OPT_STR, "index": _OPT_STR},
    "constraints": [str],
    "install_env": Map(str),
    "host": dict,
    "steps": [dict],
    "distributions": Map(str),
    "smoke": [dict],
    "size_bytes": (int, None),
    "log": _OPT_STR,
    "created": _OPT_STR,
    "python_platform": _OPT_STR,
}


def path_of(env_path: Path) -> Path:
    return Env.at(env_path).manifest_path


def write(env_path: Path, data: dict) -> None:
    write_json_atomic(path_of(env_path), {"schema_version": SCHEMA_VERSION, **data})


def read(env_path: Path) -> dict:
    p = path_of(env_path)
    try:
        data = json.loads(read_regular(p, MAX_JSON_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{p} is missing") from None
    except NotAFile as exc:
        raise Corrupt(f"{p} {exc}") from None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Corrupt(f"{p} is unreadable: {str(exc)[:200]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int):
        raise Corrupt(f"{p} is not an nlpsetup manifest")
    if data["schema_version"] > SCHEMA_VERSION:
        raise ManifestError(f"{p} was written by a newer nlpsetup (schema {data['schema_version']})")
    if problem := shape_problem(data, _SHAPE):
        raise Corrupt(f"{p} is corrupt: {problem}")
    if problem := _version_problem(data):
        raise Corrupt(f"{p} is corrupt: {problem}")
    env_python = data.get("interpreter", {}).get("env_python")
    if env_python and not _inside(env_python, env_path):
        # verify, doctor and run start this program: it must be the env's own interpreter
        raise Corrupt(f"{p} is corrupt: interpreter.env_python {env_python!r} is not inside the env")
    return data


def _version_problem(data: dict) -> str | None:
    """interpreter.version is compared and split as a version by every reader: it must be one."""
    from packaging.version import InvalidVersion, Version

    version = data["interpreter"]["version"]
    try:
        Version(version)
    except InvalidVersion:
        return f"interpreter.version: {version[:40]!r} is not a version"
    return None


def _inside(path: str, folder: Path) -> bool:
    """Whether path lies in folder; its own last link (a venv's python -> the base Python) is not followed."""
    try:
        parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        return os.path.commonpath([parent, os.path.realpath(folder)]) == os.path.realpath(folder)
    except ValueError:  # another drive (Windows)
        return False
