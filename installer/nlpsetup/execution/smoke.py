"""Smoke checks: run a recipe's imports, code and commands inside the env's interpreter.

Recipe code never runs in nlpsetup's own process. All checks of one recipe run under ONE
interpreter of the env (a small harness, below), so the import is paid once: the imports
first, then each command check starts (forked from the harness, which has the tool imported
already, where the command is that env's Python; a process of its own otherwise) and runs
beside the code check. Each check is still timed, named on failure and held to its own time
limit. Everything runs isolated from the caller (`python -I`: no PYTHONPATH, no user site, no
current directory on sys.path), from an empty working directory, and through `proc`, so a
check past its limit is stopped with its whole process group, and whatever a check left
running is stopped when the harness ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from nlpsetup import __version__
from nlpsetup.base import proc
from nlpsetup.envs.env import Env
from nlpsetup.recipes.model import Smoke

T = TypeVar("T")
R = TypeVar("R")
RESULT_FILE = "nlpsetup-smoke.json"  # ENV/RESULT_FILE: the last smoke result and what it was taken of

# The harness runs in the env's Python, which may be as old as 3.6: stdlib only, no syntax
# newer than 3.6. It reads the checks from a JSON file and reports with marker lines (carrying
# a nonce, so a check's own output cannot fake them) that the caller reads live:
#   start {i}: check i (imports or code) begins     wait: the commands are awaited
#   show {i}: command i's output follows             end {i, passed, seconds, why, timed_out}
# A command forks from the harness when its program is this very interpreter (`python -m`,
# `python -c`, or a console script whose #! line names it): the child has the tool imported
# already. A fork needs a single-threaded parent; otherwise, and on Windows, it is spawned.
_HARNESS = """\
import json, os, runpy, subprocess, sys, threading, time, traceback

def mark(nonce, what, data):
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout.write("NLPSETUP-" + nonce + " " + what + " " + json.dumps(data) + "\\n")
    sys.stdout.flush()

def run_forked(check):
    sys.argv = list(check["argv"])
    try:
        if check["how"] == "module":
            runpy.run_module(check["target"], run_name="__main__", alter_sys=True)
        elif check["how"] == "code":
            exec(compile(check["target"], "<string>", "exec"), {"__name__": "__main__"})
        else:
            runpy.run_path(check["target"], run_name="__main__")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(str(exc.code) + "\\n")
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0

def die_with_parent():
    if sys.platform.startswith("linux"):  # PR_SET_PDEATHSIG: a command never outlives the harness
        try:
            import ctypes
            ctypes.CDLL(None).prctl(1, 9)
        except Exception:
            pass

def launch(i, check):
    out = os.open("command-%d.out" % i, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    t0 = time.perf_counter()
    if check["how"] and hasattr(os, "fork") and threading.active_count() == 1:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                die_with_parent()
                os.dup2(out, 1)
                os.dup2(out, 2)
                code = run_forked(check)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(out)
        return {"i": i, "pid": pid, "t0": t0, "timeout": check["timeout"]}
    try:
        p = subprocess.Popen(check["spawn"], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             preexec_fn=die_with_parent if os.name == "posix" else None)
    except OSError as exc:
        os.write(out, ("cannot run %s: %s\\n" % (check["spawn"][0], exc.strerror or exc)).encode())
        return {"i": i, "popen": None, "t0": t0, "timeout": check["timeout"], "code": 127, "seconds": 0.0}
    finally:
        os.close(out)
    return {"i": i, "popen": p, "t0": t0, "timeout": check["timeout"]}

def reap(child):
    # Waits for one command (in a thread, beside the code check), killing it at its limit.
    deadline = child["t0"] + child["timeout"]
    p, timed_out = child.get("popen"), False
    while "code" not in child:
        if p is not None:
            status = p.poll()
            done = status is not None
        else:
            done, status = os.waitpid(child["pid"], os.WNOHANG)
            if done:
                status = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
        if done:
            child["code"], child["seconds"] = status, time.perf_counter() - child["t0"]
        elif time.perf_counter() > deadline:
            timed_out = True
            try:
                if p is not None:
                    p.kill()
                else:
                    os.kill(child["pid"], 9)
            except OSError:
                pass
            deadline = float("inf")
        else:
            time.sleep(0.01)
    child["timed_out"] = timed_out

def report(nonce, child):
    i = child["i"]
    mark(nonce, "show", {"i": i})
    with open("command-%d.out" % i, "rb") as f:
        text = f.read()[-20000:].decode("utf-8", "replace")
    sys.stdout.write(text if not text or text.endswith("\\n") else text + "\\n")
    why = "" if child["code"] >= 0 or child["timed_out"] else "killed by signal %d" % -child["code"]
    mark(nonce, "end", {"i": i, "passed": child["code"] == 0 and not child["timed_out"],
                        "seconds": child["seconds"], "why": why, "timed_out": child["timed_out"]})

def main():
    nonce = sys.argv[1]
    with open(sys.argv[2]) as f:
        checks = json.load(f)
    children = []
    for i, check in checks:
        if check["kind"] == "command":
            children.append(launch(i, check))
            continue
        if children and not any(c.get("thread") for c in children):
            for c in children:  # threads only now: every fork is done
                c["thread"] = threading.Thread(target=reap, args=(c,))
                c["thread"].daemon = True
                c["thread"].start()
        mark(nonce, "start", {"i": i})
        t = time.perf_counter()
        passed, why = True, ""
        try:
            if check["kind"] == "imports":
                for name in check["names"]:
                    __import__(name)
            else:
                exec(compile(check["code"], "<smoke code>", "exec"), {"__name__": "__main__"})
        except SystemExit as exc:
            if exc.code not in (None, 0):
                passed, why = False, "exit " + str(exc.code)
        except BaseException:
            passed = False
            kind, value, tb = sys.exc_info()
            sys.stdout.flush()  # the check's own output first: the traceback must not land inside a line
            traceback.print_exception(kind, value, tb.tb_next)  # not the harness's own frame
        mark(nonce, "end", {"i": i, "passed": passed, "seconds": time.perf_counter() - t, "why": why})
    if children:
        mark(nonce, "wait", {})
    for c in children:
        if c.get("thread"):
            c["thread"].join()
        else:
            reap(c)
        report(nonce, c)
    # Skip interpreter teardown (a second or more for torch): every result is out already.
    os._exit(0)

main()
"""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    seconds: float
    import_seconds: float | None = None
    detail: str = ""  # the last lines of output when it failed (capped: the whole is in the log)
    error: str = ""  # the exception it ended in, "LookupError: Resource punkt_tab not found."

    def to_dict(self) -> dict:
        return asdict(self)


def _code_name(code: str) -> str:
    first = next((ln.strip() for ln in code.strip().splitlines() if ln.strip()), "code")
    return f"code: {first[:60]}"


def in_process_checks(smoke: Smoke) -> list[tuple[str, dict]]:
    """(name, check) for the harness, in order: the imports, then the code."""
    out: list[tuple[str, dict]] = []
    if smoke.imports:
        out.append((f"import {', '.join(smoke.imports)}", {"kind": "imports", "names": list(smoke.imports)}))
    if smoke.code.strip():
        out.append((_code_name(smoke.code), {"kind": "code", "code": smoke.code}))
    return out


def command_checks(smoke: Smoke, env_python: str, env_path: Path) -> list[tuple[str, dict]]:
    """(name, check) for each command: the argv to spawn, and how the harness can run it in a fork
    instead (`how`: module, code or script; empty where it must be spawned)."""
    out: list[tuple[str, dict]] = []
    for cmd in smoke.commands:
        head, rest = cmd[0], list(cmd[1:])
        how, target, argv = "", "", []
        if head in ("python", "python3"):
            spawn = [env_python, *rest]
            if len(rest) >= 2 and rest[0] in ("-m", "-c"):
                how, target = ("module" if rest[0] == "-m" else "code"), rest[1]
                argv = [rest[0] if how == "code" else rest[1], *rest[2:]]
        else:
            candidate = Env.at(env_path).script(head)
            spawn = [str(candidate) if candidate.exists() else head, *rest]
            if _runs_on(candidate, env_python):
                how, target, argv = "script", str(candidate), [str(candidate), *rest]
        out.append((" ".join(cmd), {"kind": "command", "how": how, "target": target, "argv": argv,
                                    "spawn": spawn, "timeout": smoke.timeout}))
    return out


def _runs_on(script: Path, env_python: str) -> bool:
    """A console script whose #! line starts this very interpreter, so running its code in a fork
    of the harness is what running it would do (a stale #! is spawned, and fails as it would)."""
    try:
        with open(script, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return False
    if not first.startswith(b"#!"):
        return False
    interpreter = first[2:].strip().split(b" ")[0].decode("utf-8", "replace")
    try:
        return os.path.isabs(interpreter) and os.path.samefile(interpreter, env_python)
    except OSError:  # the #! names an interpreter that is gone
        return False


def run_all(smoke: Smoke, env_python: str, env_path: Path, *, log=None, base_env=None,
            on_result: Callable[[CheckResult], None] | None = None,
            cancel: threading.Event | None = None) -> list[CheckResult]:
    """Every check of one recipe; results in order (imports, code, commands). Setting `cancel`
    (from another thread) stops what runs and returns at once."""
    # No PYTHONDONTWRITEBYTECODE: uv installs no .pyc, and compiling only what the first import
    # needs (here, once) beats compiling the whole env at install (bench_verify, figure 6).
    env = proc.child_env({"PYTHONNOUSERSITE": "1", **dict(smoke.env)}, venv=Env.at(env_path).activation(),
                         base=base_env)
    inner, commands = in_process_checks(smoke), command_checks(smoke, env_python, env_path)
    # The commands start once the imports are done (they fork from there, and the byte-code the
    # imports wrote is there to read), beside the code check.
    checks = inner[:1] + commands + inner[1:] if smoke.imports else commands + inner
    order = [name for name, _ in inner + commands]
    with tempfile.TemporaryDirectory(prefix="nlpsetup-smoke-") as cwd:
        results = _harness(checks, env_python, env, cwd, smoke.timeout, log, on_result, cancel or threading.Event())
    return sorted(results, key=lambda r: order.index(r.name))


def _result(name: str, passed: bool, seconds: float, import_seconds: float | None, timed_out: bool,
            timeout: int, lines) -> CheckResult:
    detail = error = ""
    if timed_out:
        detail = f"timed out after {timeout} s"
    elif not passed:
        lines = list(lines)
        detail, error = "\n".join(last_lines(lines, 8)), exception_of(lines)
    return CheckResult(name, passed, round(seconds, 3),
                       round(import_seconds, 3) if import_seconds is not None else None, detail, error)


def failure_message(r: CheckResult) -> str:
    """"smoke check failed: import nltk: LookupError: Resource punkt_tab not found." """
    return f"smoke check failed: {r.name}" + (f": {r.error}" if r.error else "")


MAX_LINE = 300  # characters of one output line shown
MAX_SHOWN = 2048  # characters of a failure's output shown in all; the log holds the whole
_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*[A-Z]\w*)(?::\s?(.*))?")  # ValueError: x / pkg.errors.Bad: x


def _has_words(line: str) -> bool:
    """Not a banner: nltk frames its messages in lines of asterisks."""
    return re.search(r"\w", line) is not None


def last_lines(lines: list[str], n: int) -> list[str]:
    """The last n lines worth showing (banners skipped), each cut to MAX_LINE, MAX_SHOWN in all."""
    out: list[str] = []
    for line in reversed([x for x in lines if _has_words(x)][-n:]):
        line = line if len(line) <= MAX_LINE else line[:MAX_LINE] + "..."
        if sum(map(len, out)) + len(line) > MAX_SHOWN:
            break
        out.insert(0, line)
    return out


def exception_of(lines: list[str]) -> str:
    """The exception a Python traceback ends in, with its message; a message that starts on the
    next lines (nltk's LookupError, inside a banner) is taken from its first line of words."""
    found, in_traceback = "", False
    for i, line in enumerate(lines):
        if "Traceback (most recent call last)" in line:  # stderr may land inside a line of stdout
            in_traceback = True
        elif in_traceback and (m := _EXCEPTION.fullmatch(line.rstrip())):
            message = (m.group(2) or "").strip() or next((x.strip() for x in lines[i + 1:] if _has_words(x)), "")
            found, in_traceback = f"{m.group(1)}: {message}" if message else m.group(1), False
    return found[:MAX_LINE]


def _harness(checks: list[tuple[str, dict]], env_python: str, env: dict, cwd: str, timeout: int, log,
             on_result, cancel: threading.Event) -> list[CheckResult]:
    """Run the checks under one interpreter. A check that kills its interpreter or passes its time
    limit fails; a fresh interpreter then goes on with the rest."""
    results: list[CheckResult] = []
    todo = list(enumerate(checks))
    script = Path(cwd) / "nlpsetup_smoke_harness.py"
    script.write_text(_HARNESS, encoding="utf-8")
    while todo and not cancel.is_set():
        nonce = uuid.uuid4().hex
        spec = Path(cwd) / f"checks-{nonce}.json"
        spec.write_text(json.dumps([[i, c] for i, (_, c) in todo]), encoding="utf-8")
        # since: when the running check (or the wait for the commands) began; each is held to `timeout`
        state = {"since": time.monotonic(), "lines": [], "current": None}
        finished: set[int] = set()
        marker = f"NLPSETUP-{nonce} "

        def on_line(line: str, state=state, marker=marker, finished=finished) -> None:
            if not line.startswith(marker):
                state["lines"].append(line)
                return
            what, data = line[len(marker):].split(" ", 1)
            data = json.loads(data)
            if what in ("start", "wait"):
                state.update(since=time.monotonic(), lines=[], current=data.get("i"))
            if what in ("start", "show") and log is not None:
                log.write(f"## smoke: {checks[data['i']][0]}\n")
            if what == "show":
                state["lines"] = []
            if what != "end":
                return
            name, check = checks[data["i"]]
            r = _result(name, data["passed"], data["seconds"],
                        data["seconds"] if check["kind"] == "imports" else None, data.get("timed_out", False),
                        timeout, [data["why"]] if data["why"] else state["lines"])
            results.append(r)
            finished.add(data["i"])
            if on_result:
                on_result(r)

        def past_limit(state=state) -> bool:
            return cancel.is_set() or time.monotonic() - state["since"] > timeout

        if log is not None:
            log.write(f"\n## smoke: {' ; '.join(checks[i][0] for i, _ in todo)} (one interpreter)\n")
        r = proc.run([env_python, "-I", str(script), nonce, str(spec)], env=env, log=log, on_line=on_line,
                     cwd=cwd, watch=past_limit, sweep=True)
        todo = [(i, c) for i, c in todo if i not in finished]
        if not todo or cancel.is_set():
            break
        # The interpreter ended inside a check (it fails, the rest go on in a fresh one), or while
        # it awaited the commands (they fail with it).
        blamed = [i for i, _ in todo if i == state["current"]] or [i for i, _ in todo]
        lines = state["lines"] if state["current"] is not None else list(r.tail)
        why = f"the interpreter exited with code {r.returncode}" if not r.timed_out else ""
        for i in blamed:
            res = _result(checks[i][0], False, time.monotonic() - state["since"], None, r.timed_out, timeout,
                          [*lines, why] if why else lines)
            results.append(res)
            if on_result:
                on_result(res)
        todo = [(i, c) for i, c in todo if i not in blamed]
    return results


# --- results that stay valid while the env's files are unchanged ---------------------------------


def fingerprint(env_path: Path, env_python: str, smokes: Sequence[Smoke]) -> str:
    """What a smoke result depends on: the checks, nlpsetup's version, the interpreter behind the
    env, and every installed distribution's RECORD (any install, removal or upgrade rewrites it;
    stat only, nothing is read). Byte-code written by an import changes none of these."""
    h = hashlib.sha256(json.dumps([__version__, [s.to_dict() for s in smokes]]).encode())
    try:
        real = os.path.realpath(env_python)
        st = os.stat(real)
        h.update(f"{real} {st.st_size} {st.st_mtime_ns}\n".encode())
    except OSError:
        h.update(b"no interpreter\n")
    roots = Env.at(env_path).site_packages()
    for root in roots:
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            if e.name.endswith(".dist-info"):
                target = os.path.join(e.path, "RECORD")
            elif e.name.endswith((".egg-info", ".egg-link", ".pth")):
                target = e.path
            else:
                continue
            try:
                st = os.stat(target)
            except OSError:  # no RECORD (or the entry just went): its folder's own stat then
                try:
                    st = e.stat()
                except OSError:
                    continue
            h.update(f"{e.name} {st.st_size} {st.st_mtime_ns} {st.st_ino}\n".encode())
    return h.hexdigest()


def saved(env_path: Path, fp: str) -> dict | None:
    """The saved result if it was taken of these very files, else None."""
    from nlpsetup.base.files import read_cache

    data = read_cache(env_path / RESULT_FILE, {"fingerprint": str, "smoke": [dict], "pip_check": dict})
    return data if data and data.get("fingerprint") == fp else None


def save(env_path: Path, fp: str, **parts) -> None:
    """Keep parts of a result (smoke: a list of CheckResult dicts; others as doctor needs)
    under this fingerprint, with what was saved before under the same fingerprint."""
    from nlpsetup.base.files import write_json_atomic

    data = {**(saved(env_path, fp) or {}), **parts, "fingerprint": fp}
    try:
        write_json_atomic(env_path / RESULT_FILE, data)
    except OSError:
        pass  # a read-only env is checked afresh each time


def results_of(data: dict) -> list[CheckResult]:
    return [CheckResult(**r) for r in data.get("smoke", [])]


# --- several envs at once --------------------------------------------------------------------


def expected_seconds(env_path: Path) -> float:
    """How long the env's checks took last time (saved result, else the manifest's), 0 if unknown."""
    for name in (RESULT_FILE, "nlpsetup.json"):
        try:
            data = json.loads((env_path / name).read_text(encoding="utf-8"))
            return float(sum(r.get("seconds") or 0 for r in data.get("smoke", [])))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return 0.0


def in_parallel(fn: Callable[[T, threading.Event], R], items: Sequence[T],
                on_ready: Callable[[R], None] | None = None, cost: Callable[[T], float] | None = None,
                per_cpu: int = 1) -> list[R]:
    """fn(item, cancel) for each item, at most `per_cpu` per CPU at a time, the costliest first (so that
    the slowest env does not start last); results in the items' order, each handed to on_ready as
    soon as it and those before it are done. On Ctrl-C, sets `cancel` (pass it on to run_all: it
    stops the checks that run), waits for the workers, and re-raises."""
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


