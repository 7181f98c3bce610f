"""The skeleton every run that builds or changes an env shares (`install`, and `add` / `upgrade` in
place): under the env's lock, after putting right what a killed run left (`locked`), with a log of its
own (`log_path`) and the steps' environment (`base_env`), the work runs inside an EnvStore
transaction (`Guard`). The smoke checks are one step (`run_smoke`), whose first failure fails the
run (`check_smoke`); what the run proved is kept in the env and committed (`Guard.keep`).

The ways out: a failed step or smoke check rolls back and becomes the run's failure value; Ctrl-C
(or SIGTERM / SIGHUP) rolls back and raises Interrupted, in the words of the run that was cut
short; anything else rolls back and goes on up. Never prints: progress goes to the Reporter.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from nlpsetup.base import diagnose, faults, paths, proc
from nlpsetup.base.errors import EXIT_INTERRUPTED, NlpsetupError
from nlpsetup.envs import manifest
from nlpsetup.envs.store import EnvStore, Transaction
from nlpsetup.execution import smoke, smokecache
from nlpsetup.execution.reporter import Reporter
from nlpsetup.execution.verify import record_verify
from nlpsetup.facts.host import IndexSettings
from nlpsetup.recipes.model import Smoke
from nlpsetup.resolve import backends

DEFAULT_STEP_TIMEOUT = 1800  # seconds; recipes (step_timeout) and --step-timeout override it


class Interrupted(NlpsetupError):
    exit_code = EXIT_INTERRUPTED


class StepFailed(Exception):
    def __init__(self, step: str, result: proc.Result | None, message: str, diagnosis: str | None,
                 tail: tuple[str, ...] = ()):
        super().__init__(message)
        self.step, self.message, self.diagnosis = step, message, diagnosis
        self.tail = result.tail[-12:] if result is not None else tail


@contextmanager
def locked(store: EnvStore, name: str, reporter: Reporter, *, wait: bool) -> Iterator[None]:
    """Env `name`'s lock, held for the block; a change of it that a kill cut short is put right first."""
    with store.lock(name, wait=wait, on_wait=lambda: reporter.waiting(name)):
        if recovered := store.recover(name):
            reporter.warn(f"env {name}: {recovered.action}")
        yield


def base_env(index: IndexSettings | None = None) -> dict[str, str]:
    """The environment every step runs in: pip without prompts, bars or version checks; with `index`,
    also uv's variables for that index (where uv installs, or resolves as of a date)."""
    env = proc.child_env({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_PROGRESS_BAR": "off"})
    if index is not None:
        env.update(backends.uv_index_env(index, os.environ))
    return env


def log_path(home: Path, name: str, action: str = "") -> Path:
    """The path of a new run's log: LOGS/NAME[-ACTION]-DATE-TIME-PID.log (its folder made)."""
    logs = paths.logs_dir(home)
    logs.mkdir(parents=True, exist_ok=True)
    what = f"{name}-{action}" if action else name
    return logs / f"{what}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def run_smoke(smokes: Sequence[Smoke], env_python: str, env_path: Path, *, log: TextIO, base_env: dict[str, str],
              reporter: Reporter) -> list[smoke.CheckResult]:
    """Every smoke check of the env, as one step the reporter shows (each result as it comes)."""
    reporter.step_start("smoke", "run the smoke checks in the env")
    start = time.monotonic()
    results: list[smoke.CheckResult] = []
    for s in smokes:
        results += smoke.run_all(s, env_python, env_path, log=log, base_env=base_env, on_result=reporter.smoke_result)
    reporter.step_end("smoke", all(r.passed for r in results), time.monotonic() - start)
    return results


def check_smoke(results: list[smoke.CheckResult]) -> None:
    """StepFailed for the first smoke check that failed, named with the exception it ended in."""
    failed = [r for r in results if not r.passed]
    if failed:
        lines = failed[0].detail.splitlines()
        raise StepFailed("smoke", None, smoke.failure_message(failed[0]),
                         diagnose.diagnose(lines) or (lines[-1] if lines else None), tuple(lines))


# What a run that Ctrl-C (or SIGTERM / SIGHUP) cut short raises: given the interrupt, what the
# rollback did (None: cut short before the transaction began) and whether it had committed.
Stopped = Callable[[KeyboardInterrupt, str | None, bool], Interrupted]


class Guard:
    """A `with` block of work inside an EnvStore transaction on env `name`, begun on entry. A
    StepFailed rolls back, is logged and ends the block quietly, kept in `failed` (with the
    rollback's words in `undo`) for the run's failure value; Ctrl-C rolls back and raises what
    `stopped` makes of it; any other exception rolls back and goes on up."""

    def __init__(self, store: EnvStore, name: str, log: TextIO, stopped: Stopped, *, snapshot: bool = False,
                 action: str = "install", keep_failed: bool = False):
        self.store, self.name, self.log, self.stopped = store, name, log, stopped
        self.snapshot, self.action, self.keep_failed = snapshot, action, keep_failed
        self.failed: StepFailed | None = None
        self.undo = ""
        self._txn: Transaction | None = None

    def __enter__(self) -> Guard:
        try:
            self._txn = self.store.begin(self.name, snapshot=self.snapshot, action=self.action)
        except KeyboardInterrupt as exc:
            raise self.stopped(exc, None, False) from None
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            return False
        if isinstance(exc, StepFailed):
            self.undo = self._txn.rollback(keep_failed=self.keep_failed)
            self.log.write(f"# failed: {exc.message}; rolled back: {self.undo}\n")
            self.failed = exc
            return True
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM / SIGHUP (interrupts.Terminated)
            undo = self._txn.rollback(keep_failed=self.keep_failed)
            raise self.stopped(exc, undo, self._txn.committed) from None
        self._txn.rollback(keep_failed=self.keep_failed)
        return False

    def keep(self, env_path: Path, env_python: str, smokes: Sequence[Smoke], record: dict) -> None:
        """Keep what the run proved in the env, then commit: its smoke result (record["smoke"]),
        which doctor reuses while the env's files stay as they are; `record` as the manifest; the
        verify verdict that `envs` shows."""
        smokecache.save(env_path, smokecache.fingerprint(env_path, env_python, smokes), smoke=record["smoke"])
        manifest.write(env_path, record)
        record_verify(env_path, True)
        faults.point("before:commit")
        self._txn.commit()
