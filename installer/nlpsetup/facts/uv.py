"""Where uv is on this host: on PATH, else the binary the `uv` package ships (nlpsetup[uv]), so
an nlpsetup run from a venv's bin without activating it still finds the uv installed beside it."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Mapping

_UV_LOCK = threading.Lock()


def find_uv(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    if path := shutil.which("uv", path=env.get("PATH")):
        return path
    return _packaged_uv()


@functools.cache
def _packaged_uv() -> str | None:
    """The uv binary the `uv` package (nlpsetup[uv]) ships. Looked up once per process: doctor asks
    from several threads, and uv.find_uv_bin() reads sysconfig, which is not safe to race."""
    with _UV_LOCK:
        try:
            import uv

            path = uv.find_uv_bin()
            return path if path and os.path.exists(path) else None
        except (ImportError, OSError, TypeError, ValueError):  # no package, or a broken install
            return None
