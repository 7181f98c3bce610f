"""Fault injection for the reliability tests: NLPSETUP_FAULT=ACTION@POINT makes this process
die (kill: SIGKILL), be interrupted (int: SIGINT, as Ctrl-C) or meet a failing disk (fail: OSError
EIO) when it reaches POINT, e.g.
`kill@before:install`, `int@during:framework`, `kill@before:commit`. Points are named after the
plan's steps, so a new step is covered by the tests automatically. Unset, this does nothing."""

from __future__ import annotations

import errno
import os
import signal


def point(name: str) -> None:
    spec = os.environ.get("NLPSETUP_FAULT")
    if not spec or "@" not in spec:
        return
    action, where = spec.split("@", 1)
    if where != name:
        return
    if action == "fail":
        raise OSError(errno.EIO, f"injected fault at {name}")
    sig = {"kill": signal.SIGKILL, "int": signal.SIGINT}.get(action)
    if sig is not None:
        os.kill(os.getpid(), sig)
        if sig == signal.SIGINT:  # delivered to the main thread at the next bytecode: make it now
            signal.raise_signal(signal.SIGINT)
