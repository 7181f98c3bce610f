"""The only door for subprocesses: argument lists (never a shell), a scrubbed environment,
a time limit, output kept in a log file with credentials masked, and the child's whole
process group stopped on timeout or Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from nlpsetup.redact import mask_argv, mask_text

# Variables removed from every child's environment, each because it would change what gets
# installed or imported behind the recipe's back.
_SCRUB = (
    "PYTHONPATH",  # would put the caller's packages ahead of the env's own
    "PYTHONHOME",  # would point the env's interpreter at another stdlib
    "PYTHONSTARTUP",  # runs arbitrary code at interpreter start
    "PIP_REQUIRE_VIRTUALENV",  # harmless inside our env, but breaks pip calls made before activation
    "PIP_USER",  # a --user install would escape the env
    "PIP_TARGET",  # likewise
    "PIP_PREFIX",  # likewise
    "CONDA_PREFIX",  # makes some build backends link against conda's libraries
    "__PYVENV_LAUNCHER__",  # macOS: makes a venv's python report the framework python
)


def child_env(extra: Mapping[str, str] | None = None, *, venv: str | None = None,
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for key in _SCRUB:
        env.pop(key, None)
    if venv:
        env["VIRTUAL_ENV"] = venv
        from nlpsetup.env import Env

        bindir = str(Env.at(venv).bin_dir)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    else:
        env.pop("VIRTUAL_ENV", None)
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Result:
    returncode: int
    seconds: float
    tail: tuple[str, ...]  # the last lines of output, masked
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float | None = None,
        log: IO[str] | None = None, on_line: Callable[[str], None] | None = None,
        cwd: str | None = None, tail_lines: int = 30, on_start: Callable[[], None] | None = None) -> Result:
    """Run argv to completion; stdout and stderr are merged, masked, logged and tailed."""
    argv = [str(a) for a in argv]
    if log is not None:
        log.write(f"$ {' '.join(mask_argv(argv))}\n")
        log.flush()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", bufsize=1,
            # Its own process group: a timeout or Ctrl-C stops pip and everything pip started.
            start_new_session=True,
        )
    except OSError as exc:
        line = f"cannot run {argv[0]}: {exc.strerror or exc}"
        if log is not None:
            log.write(line + "\n")
        return Result(127, 0.0, (line,))
    tail: deque[str] = deque(maxlen=tail_lines)

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = mask_text(raw.rstrip("\n"))
            tail.append(line)
            if log is not None:
                log.write(line + "\n")
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        if on_start is not None:
            on_start()
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop(proc)
    except BaseException:  # Ctrl-C or our own death: never leave pip running behind us
        stop(proc)
        raise
    finally:
        reader.join(timeout=5)
        if log is not None:
            log.flush()
    seconds = time.monotonic() - start
    if log is not None:
        log.write(f"# exit {proc.returncode}{' (timed out)' if timed_out else ''} after {seconds:.1f} s\n")
        log.flush()
    return Result(proc.returncode if not timed_out else -9, seconds, tuple(tail), timed_out)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after a grace period."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


class QueryTimeout(Exception):
    """A short query did not answer in time (its process group was stopped)."""


def capture(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60,
            merge_stderr: bool = False, raise_timeout: bool = False) -> tuple[int, str]:
    """Run a short query (a version, a listing) and return (returncode, stdout).

    A program that cannot start gives (127, why); one that outlives `timeout` is stopped with its
    process group and gives (124, why), or raises QueryTimeout when the caller must tell the two apart."""
    argv = [str(a) for a in argv]
    try:
        p = subprocess.Popen(argv, env=dict(os.environ if env is None else env), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                             text=True, encoding="utf-8", errors="replace", start_new_session=True)
    except OSError as exc:
        return 127, f"cannot run {argv[0]}: {exc.strerror or exc}"
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        p.communicate()
        if raise_timeout:
            raise QueryTimeout(f"{argv[0]} did not answer within {timeout:g}s") from None
        return 124, f"{argv[0]} did not answer within {timeout:g}s"
    except BaseException:
        stop(p)
        raise
    return p.returncode, out


def replace_process(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Become argv (POSIX exec, as pipx run does): signals reach the command itself, and a command
    killed by signal N ends this process the same way (the shell sees 128+N). On Windows, where
    exec does not keep the console, run it as a child and return its exit code."""
    argv = [str(a) for a in argv]
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(argv[0], argv, dict(env))
    p = subprocess.Popen(argv, env=dict(env))  # pragma: no cover - Windows
    while True:  # pragma: no cover - Windows
        try:
            return p.wait()
        except KeyboardInterrupt:
            continue  # the console sent Ctrl-C to the child too; wait for it to decide
