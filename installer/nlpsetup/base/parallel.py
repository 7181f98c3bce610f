"""Work on several items at once (smoke checks of several envs, doctor's envs): the costliest first, results
in order as soon as they are ready, and Ctrl-C stopping what the workers wait on."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from nlpsetup.base import proc

T = TypeVar("T")
R = TypeVar("R")


def in_parallel(fn: Callable[[T, threading.Event], R], items: Sequence[T],
                on_ready: Callable[[R], None] | None = None, cost: Callable[[T], float] | None = None,
                per_cpu: int = 1) -> list[R]:
    """fn(item, cancel) for each item, at most `per_cpu` per CPU at a time, the costliest first (so that
    the slowest env does not start last); results in the items' order, each handed to on_ready as
    soon as it and those before it are done. On Ctrl-C, sets `cancel` (pass it on to what fn runs:
    smoke.run_all stops the checks that run), waits for the workers, and re-raises."""
    cancel = threading.Event()
    out: list[R] = []
    order = sorted(range(len(items)), key=lambda i: -cost(items[i])) if cost else range(len(items))
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), per_cpu * (os.cpu_count() or 1)))) as pool:
        submitted = {i: pool.submit(lambda x: None if cancel.is_set() else fn(x, cancel), items[i]) for i in order}
        futures = [submitted[i] for i in range(len(items))]
        try:
            for f in futures:
                out.append(f.result())
                if on_ready is not None:
                    on_ready(out[-1])
        except BaseException:
            cancel.set()
            for f in futures:
                f.cancel()
            proc.stop_all()  # what the workers wait on (a pip check, a smoke check) ends now
            raise
    return out


