"""What every `nlpsetup doctor` check returns: a Finding (id, status ok / warning / failure,
message, and for every warning or failure one line saying what to do), and `beside`, which lets a
check that waits on the network or on another program run while the others go on.
This module never prints."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TypeVar

OK, WARNING, FAILURE = "ok", "warning", "failure"
R = TypeVar("R")


@dataclass(frozen=True)
class Finding:
    id: str
    status: str
    message: str
    fix: str = ""
    env: str | None = None
    path: str | None = None  # the file or folder the finding is about, for --fix to act on

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k not in ("env", "path")}


def beside(fn: Callable[[], R]) -> Callable[[], R]:
    """Start fn() now in a thread of its own; the returned callable waits for its result."""
    pool = ThreadPoolExecutor(max_workers=1)
    started = pool.submit(fn)
    pool.shutdown(wait=False)
    return started.result
