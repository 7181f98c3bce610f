"""nlpsetup's own files (manifests, journals, locks, caches) and the files a user asks for: one
atomic writer, one reader that turns every way a file can be wrong into a one-line error naming
the file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path

from nlpsetup.base.errors import NlpsetupError


def write_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """The one atomic writer, for nlpsetup's own files: write to a temporary file beside the target,
    then rename over it, so a reader sees the old file or the new one, never half of one. `durable`
    fsyncs first (state that must survive a power cut: manifests, journals); caches skip it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # store.py's _JOURNAL_TMP knows this name
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data, *, durable: bool = True) -> None:
    """One of nlpsetup's own JSON files (write_atomic), its folder made first; an error names the
    file the user knows, not our temporary one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(path, json.dumps(data, indent=2 if durable else None, sort_keys=False) + "\n",
                     durable=durable)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None


MAX_JSON_BYTES = 64 * 2**20  # far above any manifest, lock or host file nlpsetup writes


class NotAFile(OSError):
    """A path that is not a regular file of a sane size: reading it would block or never end."""


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. The file is opened without blocking
    and checked on the open descriptor (no race with a swap), so a FIFO, a device such as
    /dev/zero, a folder or a huge file is refused before a byte is read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                 | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket")
            raise NotAFile(f"is {kind}, not a regular file")
        if st.st_size > limit:
            raise NotAFile(f"is too large: {st.st_size} bytes; the limit is {limit}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)  # the file may grow after the check
        if len(data) > limit:
            raise NotAFile(f"is too large: over {limit} bytes")
        return data
    finally:
        os.close(fd)


def read_json(path: str | Path, what: str, hint: str):
    """A JSON document the user handed us (`--from-lock`, `--host-file`), or a clear error."""
    try:
        text = read_regular(path, MAX_JSON_BYTES).decode("utf-8")
    except NotAFile as exc:
        raise NlpsetupError(f"{what} {path} {exc}", hint=hint) from None
    except OSError as exc:
        raise NlpsetupError(f"{what} {path}: {exc.strerror or exc}", hint=hint) from None
    except UnicodeDecodeError as exc:
        raise NlpsetupError(f"{what} {path} is not JSON: not UTF-8 text (byte {exc.start})", hint=hint) from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise NlpsetupError(f"{what} {path} is not JSON: {str(exc)[:200]}", hint=hint) from None


def write_text_atomic(path: Path, text: str) -> None:
    """A text file a user asked for (a pylock.toml, a requirements file), all or nothing. A target
    that exists and is not a regular file (/dev/null, /dev/stdout, a FIFO) is written to, never
    replaced: renaming over it would turn a root user's /dev/null into a plain file."""
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def entries(folder: str | Path) -> list[os.DirEntry]:
    """A folder's entries by name, stat-cheap (cache keys are built from them); none when it cannot be listed."""
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks (wheels can be GBs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_cache(path: str | Path, shape):
    """One of nlpsetup's own caches, or None when it is missing or cannot be trusted (not a regular
    file, not JSON, not of its shape): a cache is rebuilt, never a reason to fail."""
    try:
        data = json.loads(read_regular(path, MAX_JSON_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    return None if shape_problem(data, shape) else data


class Map:
    """In a shape: a table of any keys, each value of the given shape."""

    def __init__(self, value):
        self.value = value


class Required:
    """In a table's shape: a key that must be there (its readers index it), of the given shape."""

    def __init__(self, value):
        self.value = value


def shape_problem(value, shape, where: str = "") -> str | None:
    """The first place where a loaded document differs from its shape, as 'key: must be X, got Y'.
    A shape is a type, a tuple of types (None for null), [shape] for a list of it, {key: shape}
    for a table whose listed keys, where present (always, for Required(shape)), have those
    shapes, or Map(shape)."""
    at = where or "the file"
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{at}: must be a table, got {_tname(value)}"
        for k, sub in shape.items():
            key = f"{where}.{k}" if where else k
            if k not in value:
                if isinstance(sub, Required):
                    return f"{key}: is missing"
                continue
            if m := shape_problem(value[k], sub.value if isinstance(sub, Required) else sub, key):
                return m
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{at}: must be a list, got {_tname(value)}"
        return next((m for i, x in enumerate(value) for m in [shape_problem(x, shape[0], f"{where}[{i}]")] if m),
                    None)
    if isinstance(shape, Map):
        if not isinstance(value, dict):
            return f"{at}: must be a table, got {_tname(value)}"
        return next((m for k, x in value.items() for m in [shape_problem(x, shape.value, f"{where}.{k}")] if m),
                    None)
    types = tuple(type(None) if t is None else t for t in (shape if isinstance(shape, tuple) else (shape,)))
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):  # True is not a number
        return f"{at}: must be {' or '.join(_TYPE_NAMES[t] for t in types)}, got {_tname(value)}"
    return None


_TYPE_NAMES = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list",
               dict: "a table", type(None): "null"}


def _tname(v) -> str:
    return _TYPE_NAMES.get(type(v), type(v).__name__)
