"""The only door for subprocesses: argument lists (never a shell), a scrubbed environment,
a time limit, output kept in a log file with credentials masked, and the child's whole
process group stopped on timeout or Ctrl-C. Children die with nlpsetup: on Linux the kernel
kills them when it dies (a parent-death signal), and everywhere the pids of what runs inside an
env's transaction are recorded (`track`) so that recovery after a kill stops them first."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from nlpsetup.base.redact import mask_argv, mask_text

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


def child_env(extra: Mapping[str, str] | None = None, *, venv: Mapping[str, str] | None = None,
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child's environment: `base` (else ours) scrubbed, then `venv`, then `extra`.

    `venv` is what an active env adds, as the env itself spells it (`Env.activation()`, as nox's
    ProcessEnv does): its VIRTUAL_ENV, and under PATH the folder that goes before the inherited PATH.
    Without one, an inherited VIRTUAL_ENV is removed: the child is in no env."""
    env = dict(os.environ if base is None else base)
    for key in _SCRUB:
        env.pop(key, None)
    env.pop("VIRTUAL_ENV", None)
    for key, value in (venv or {}).items():
        env[key] = value + os.pathsep + env.get("PATH", "") if key == "PATH" else value
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


# Every child carries a token in its environment, so that what it started in a session of its
# own (out of reach of the group kill) is still found and stopped (Jenkins does the same).
_TOKEN = "NLPSETUP_RUN_TOKEN"
_POLL = 0.05  # seconds between polls of `watch`


_spawn_listeners: list[Callable[[dict], None]] = []
# Every child running now (from any thread), so that Ctrl-C can stop them all at once; after
# `stop_all` no new child starts (the process is on its way out).
_running: set[subprocess.Popen] = set()
_stopping = threading.Event()


def stop_all() -> None:
    """SIGKILL the process group of every child running now, from whichever thread started it, and
    refuse new ones: worker threads then finish at once instead of waiting out their checks."""
    _stopping.set()
    for p in list(_running):
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)


# Held off while a child is forked: a signal handled during Python's at-fork hooks (logging registers
# some) is reported as "ignored" there and never raised, so a Ctrl-C would be lost mid-install.
_HELD = frozenset(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def _spawn(argv: list[str], **kw) -> subprocess.Popen:
    if _stopping.is_set():
        raise OSError(f"not started: nlpsetup is stopping ({argv[0]})")
    preexec = _die_with_parent()
    held = preexec is not None and threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD) if held else None
    try:
        p = subprocess.Popen(argv, start_new_session=True, preexec_fn=preexec, **kw)
        _running.add(p)  # tracked before a held Ctrl-C is raised, so it is stopped with the rest
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a signal that came meanwhile raises now
    return p


def track(on_spawn: Callable[[dict], None]) -> Callable[[], None]:
    """Call on_spawn({pid, start, token}) for every child `run` starts (from any thread) until the
    returned function is called."""
    _spawn_listeners.append(on_spawn)
    return lambda: on_spawn in _spawn_listeners and _spawn_listeners.remove(on_spawn)


_prctl = None  # libc's prctl, resolved on the first spawn (False where there is none)


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: a preexec function that makes the kernel SIGKILL the child when nlpsetup dies, even
    by SIGKILL (prctl PR_SET_PDEATHSIG; kept across setsid and exec). It only calls a function
    resolved beforehand, as code between fork and exec must. Elsewhere None: the journal's pids
    (`kill_recorded`) are the only net there."""
    if not sys.platform.startswith("linux"):
        return None
    global _prctl
    if _prctl is None:
        import ctypes

        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _prctl = False
    if not _prctl:
        return None
    prctl, parent = _prctl, os.getpid()

    def preexec() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)  # the child gets its signals, as it would have
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(137)

    return preexec


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell it from a later process
    that reused its pid; None when it does not exist or this cannot be read."""
    return _stat_field(pid, 19)


def _stat_field(pid: int, index: int) -> int | None:
    """A numeric field of /proc/PID/stat, counted after the command name (1: ppid, 19: start time)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[index])
    except (OSError, ValueError, IndexError):
        return None


def kill_recorded(children: object) -> list[int]:
    """Stop what a killed nlpsetup had started (the journal's records): each child's process group
    while it is still the same process (same start time; pids are reused), and anything still
    carrying its token. Returns the pids signalled, after they are gone (or 5 s)."""
    killed = []
    for c in children if isinstance(children, list) else []:
        pid = c.get("pid") if isinstance(c, dict) else None
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or pid == os.getpid():
            continue
        now = start_time(pid)
        if now is not None and now != c.get("start"):
            continue  # the pid now belongs to another process
        if now is None and _exists(pid) and not _session_leader(pid):
            continue  # no start time to compare (not Linux): ours were session leaders
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)  # also works once the leader is gone but its group is not
            killed.append(pid)
        token = c.get("token")
        for other in _carrying(token) if isinstance(token, str) and token else ():
            with contextlib.suppress(OSError):
                os.kill(other, signal.SIGKILL)
                killed.append(other)
    end = time.monotonic() + 5
    while killed and any(_alive(p) for p in killed) and time.monotonic() < end:
        time.sleep(_POLL)
    return killed


def clock_ticks() -> int | None:
    """Now, in the clock ticks since boot that start_time counts in (Linux); None elsewhere."""
    try:
        with open("/proc/uptime", "rb") as f:
            return int(float(f.read().split()[0]) * os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def adopt_orphans() -> None:
    """Linux: become a child subreaper, so that whatever our children start and abandon (a check's
    daemon in a session of its own) becomes our child instead of init's, and `sweep_env` finds it."""
    if _die_with_parent() is not None and _prctl:
        _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def sweep_env(roots: Sequence[str], since: int | None) -> list[int]:
    """SIGKILL every process started at or after `since` (clock ticks) that holds something inside
    one of the folders `roots` (its cwd, executable, an open file, a mapped library, or a path on
    its command line) or runs below this one (a subreaper adopts escaped daemons); never this
    process or its ancestors. Returns the pids killed, after they are gone (or 10 s):
    run before a rollback restores an env, so nothing started for the change writes into it."""
    if since is None or not os.path.isdir("/proc/self"):
        return []
    roots = [r.rstrip(os.sep) for r in dict.fromkeys(roots) if r]
    spare = _ancestors()
    below = {pid for pid, _ in _descendants(os.getpid())}
    killed: list[int] = []
    for _ in range(3):  # a daemon may fork again while its parent dies: sweep until none is found
        found = [pid for pid in _pids() if pid not in spare and pid not in killed
                 and (start_time(pid) or -1) >= since and (pid in below or _holds(pid, roots))]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed += found
        end = time.monotonic() + 10
        while any(_alive(p) for p in found) and time.monotonic() < end:
            time.sleep(_POLL)
        below = {pid for pid, _ in _descendants(os.getpid())}
    _reap()
    return killed


def _pids() -> list[int]:
    try:
        return [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []


def _ancestors() -> set[int]:
    out, pid = {os.getpid()}, os.getpid()
    while pid > 1 and (pid := _ppid(pid)) is not None:
        out.add(pid)
    return out


def _ppid(pid: int) -> int | None:
    return _stat_field(pid, 1)


def _holds(pid: int, roots: Sequence[str]) -> bool:
    """Whether process `pid` has its cwd, executable, an open file or a mapped file inside one of
    `roots`, or names a path inside one on its command line (`ENV/bin/python -m server`)."""
    def inside(p: str) -> bool:
        p = p.removesuffix(" (deleted)")
        return any(p == r or p.startswith(r + os.sep) for r in roots)

    base = f"/proc/{pid}"
    links = [f"{base}/cwd", f"{base}/exe"]
    with contextlib.suppress(OSError):
        links += [f"{base}/fd/{fd}" for fd in os.listdir(f"{base}/fd")]
    for link in links:
        with contextlib.suppress(OSError):
            if inside(os.readlink(link)):
                return True
    try:
        with open(f"{base}/maps", "rb") as f:
            if any(inside(line.split(None, 5)[-1].decode(errors="replace").strip())
                   for line in f if line.count(b" ") >= 5 and b"/" in line):
                return True
        with open(f"{base}/cmdline", "rb") as f:
            return any(inside(os.path.normpath(a.decode(errors="replace")))
                       for a in f.read().split(b"\0") if a.startswith(b"/"))
    except OSError:
        return False


def _reap() -> None:
    """Collect the exit status of adopted orphans we killed (they would stay zombies until we exit);
    children a Popen waits for are left to it."""
    mine = {p.pid for p in _running}
    for pid, _ in _descendants(os.getpid()):
        if pid not in mine:
            with contextlib.suppress(OSError):
                os.waitpid(pid, os.WNOHANG)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int) -> bool:
    """Exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:][:1] != b"Z"
    except OSError:
        return _exists(pid) if not os.path.isdir("/proc/self") else False
    except ValueError:
        return False


def _session_leader(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except OSError:
        return False


def run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float | None = None,
        log: IO[str] | None = None, on_line: Callable[[str], None] | None = None,
        cwd: str | None = None, tail_lines: int = 30, on_start: Callable[[], None] | None = None,
        watch: Callable[[], bool] | None = None, sweep: bool = False) -> Result:
    """Run argv to completion; stdout and stderr are merged, masked, logged and tailed.
    `watch`, polled while the child runs, stops it (as timed out) when it returns True: for
    time limits that move (one per smoke check) and for cancelling from another thread.
    `sweep`: once it has exited, stop whatever it started and left running (smoke checks)."""
    argv = [str(a) for a in argv]
    token = uuid.uuid4().hex
    env = {**env, _TOKEN: token}
    if log is not None:
        log.write(f"$ {' '.join(mask_argv(argv))}\n")
        log.flush()
    start = time.monotonic()
    try:
        # Its own process group (_spawn): a timeout or Ctrl-C stops pip and everything pip started.
        proc = _spawn(argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", bufsize=1)
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
        if _spawn_listeners:
            child = {"pid": proc.pid, "start": start_time(proc.pid), "token": token}
            for listener in list(_spawn_listeners):
                listener(child)
        if on_start is not None:
            on_start()
        if watch is None:
            proc.wait(timeout=timeout)
        else:
            _wait_watched(proc, timeout, watch)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop(proc, token)
    except BaseException:  # Ctrl-C or our own death: never leave pip running behind us
        stop(proc, token)
        raise
    finally:
        _running.discard(proc)
        if sweep:
            _sweep(proc.pid, token)
        reader.join(timeout=5)
        if log is not None:
            log.flush()
    seconds = time.monotonic() - start
    if log is not None:
        log.write(f"# exit {proc.returncode}{' (timed out)' if timed_out else ''} after {seconds:.1f} s\n")
        log.flush()
    return Result(proc.returncode if not timed_out else -9, seconds, tuple(tail), timed_out)


def _sweep(group: int, token: str) -> None:
    """SIGKILL what is left of an exited child's process group, and anything carrying its token."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no process groups (Windows)
        os.killpg(group, signal.SIGKILL)
    for pid in _carrying(token):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _wait_watched(proc: subprocess.Popen, timeout: float | None, watch: Callable[[], bool]) -> None:
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=_POLL)
            return
        except subprocess.TimeoutExpired:
            if watch() or (end is not None and time.monotonic() > end):
                raise


def stop(proc: subprocess.Popen, token: str | None = None) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after a grace period;
    then SIGKILL any process still carrying the child's token, or descended from it, that left
    the group (a check that started a session of its own)."""
    escaped = _descendants(proc.pid) if proc.poll() is None else []
    if proc.poll() is None:
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
    for pid, started in [*escaped, *((p, None) for p in (_carrying(token) if token else ()))]:
        if started is not None and start_time(pid) != started:
            continue  # gone, and its pid reused since
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _descendants(root: int) -> list[tuple[int, int | None]]:
    """(pid, start time) of every process below `root` (Linux /proc; elsewhere none)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        if (ppid := _ppid(int(entry))) is not None:
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append((pid, start_time(pid)))
        todo += children.get(pid, [])
    return found


def _carrying(token: str) -> list[int]:
    """Processes whose environment holds our token (Linux: /proc; elsewhere none are found)."""
    needle = f"{_TOKEN}={token}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


class QueryTimeout(Exception):
    """A short query did not answer in time (its process group was stopped)."""


def capture(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60,
            merge_stderr: bool = False, raise_timeout: bool = False) -> tuple[int, str]:
    """Run a short query (a version, a listing) and return (returncode, stdout).

    A program that cannot start gives (127, why); one that outlives `timeout` is stopped with its
    process group and gives (124, why), or raises QueryTimeout when the caller must tell the two apart."""
    argv = [str(a) for a in argv]
    try:
        p = _spawn(argv, env=dict(os.environ if env is None else env), stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                   text=True, encoding="utf-8", errors="replace")
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
    finally:
        _running.discard(p)
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
