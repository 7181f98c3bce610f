"""SIGTERM and SIGHUP (CI cancelling a job, `timeout`, `docker stop`, a closed terminal) are handled
exactly like Ctrl-C: they raise in the main thread, so every rollback path that catches
KeyboardInterrupt puts the env set back, and nlpsetup then exits 128+N as the shell expects."""

from __future__ import annotations

import signal

from nlpsetup.base.errors import EXIT_INTERRUPTED

_HANDLED = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class Terminated(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def exit_code(exc: BaseException) -> int:
    return 128 + exc.signum if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def describe(exc: BaseException) -> str:
    return f"terminated by {signal.Signals(exc.signum).name}" if isinstance(exc, Terminated) else "interrupted"


def _raise(signum: int, _frame) -> None:
    # A second TERM (docker stop, systemd) must not cut the rollback short: only the first raises.
    # A Python handler, not SIG_IGN: an ignored signal would stay ignored in the children started later.
    for s in _HANDLED:
        signal.signal(s, lambda *_: None)
    raise Terminated(signum)


def handle_termination() -> None:
    """Install the handlers (main thread only). A signal the caller ignores (nohup) stays ignored."""
    for s in _HANDLED:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _raise)
