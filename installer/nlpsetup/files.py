"""nlpsetup's own JSON files (manifests, journals, locks, caches): one atomic writer, one reader
that turns every way a file can be wrong into a one-line error naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nlpsetup.errors import NlpsetupError


def write_json_atomic(path: Path, data, *, durable: bool = True) -> None:
    """Write to a temporary file beside the target, then rename over it: a reader sees the old
    file or the new one, never half of one. `durable` fsyncs first (state that must survive a
    power cut: manifests, journals); caches skip it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2 if durable else None, sort_keys=False)
            f.write("\n")
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: str | Path, what: str, hint: str):
    """A JSON document the user handed us (`--from-lock`, `--host-file`), or a clear error."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise NlpsetupError(f"{what} {path}: {exc.strerror or exc}", hint=hint) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise NlpsetupError(f"{what} {path} is not JSON: {str(exc)[:200]}", hint=hint) from None


def write_text_atomic(path: Path, text: str) -> None:
    """A text file a user asked for (a pylock.toml, a requirements file), all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
