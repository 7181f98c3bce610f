"""The manifest of an env, ENV/nlpsetup.json: versioned JSON, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from nlpsetup.files import write_json_atomic

SCHEMA_VERSION = 1



class ManifestError(Exception):
    pass


def path_of(env_path: Path) -> Path:
    from nlpsetup.env import Env

    return Env.at(env_path).manifest_path


def write(env_path: Path, data: dict) -> None:
    write_json_atomic(path_of(env_path), {"schema_version": SCHEMA_VERSION, **data})


def read(env_path: Path) -> dict:
    p = path_of(env_path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{p} is missing") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p} is unreadable: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int):
        raise ManifestError(f"{p} is not an nlpsetup manifest")
    if data["schema_version"] > SCHEMA_VERSION:
        raise ManifestError(f"{p} was written by a newer nlpsetup (schema {data['schema_version']})")
    return data
