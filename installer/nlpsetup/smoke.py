"""Smoke checks: run a recipe's imports, code and commands inside the env's interpreter.

Recipe code never runs in nlpsetup's own process. The imports and the code of one recipe run in
ONE interpreter of the env (a small harness, below), in order, so that the import the code
needs is paid once; each check is still timed, named on failure and held to its own time
limit. Command checks (a CLI's --help) run at the same time, each in its own process.
Everything runs isolated from the caller (`python -I`: no PYTHONPATH, no user site, no current
directory on sys.path), from an empty working directory, and through `proc`, so a check past
its limit is stopped with its whole process group.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from nlpsetup import __version__, proc
from nlpsetup.env import Env
from nlpsetup.recipes import Smoke

T = TypeVar("T")
R = TypeVar("R")
RESULT_FILE = "nlpsetup-smoke.json"  # ENV/RESULT_FILE: the last smoke result and what it was taken of

# The harness runs in the env's Python, which may be as old as 3.6: stdlib only, no syntax
# newer than 3.6. It reads the checks from a JSON file and brackets each one with marker lines
# (carrying a nonce, so a check's own output cannot fake them) that the caller reads live.
_HARNESS = """\
import json, os, sys, time, traceback

def mark(nonce, what, data):
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout.write("NLPSETUP-" + nonce + " " + what + " " + json.dumps(data) + "\\n")
    sys.stdout.flush()

def main():
    nonce = sys.argv[1]
    with open(sys.argv[2]) as f:
        checks = json.load(f)
    for i, check in checks:
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
            traceback.print_exception(kind, value, tb.tb_next)  # not the harness's own frame
        mark(nonce, "end", {"i": i, "passed": passed, "seconds": time.perf_counter() - t, "why": why})
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
    detail: str = ""  # the last lines of output when it failed

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


def command_checks(smoke: Smoke, env_python: str, env_path: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) for each command check."""
    out: list[tuple[str, list[str]]] = []
    for cmd in smoke.commands:
        head, rest = cmd[0], list(cmd[1:])
        if head in ("python", "python3"):
            argv = [env_python, *rest]
        else:
            candidate = Env.at(env_path).script(head)
            argv = [str(candidate) if candidate.exists() else head, *rest]
        out.append((" ".join(cmd), argv))
    return out


def run_all(smoke: Smoke, env_python: str, env_path: Path, *, log=None, base_env=None,
            on_result: Callable[[CheckResult], None] | None = None,
            cancel: threading.Event | None = None, first: bool = False) -> list[CheckResult]:
    """Every check of one recipe; results in order (imports, code, commands). Setting `cancel`
    (from another thread) stops what runs and returns at once. `first` (right after install):
    the imports write the byte-code, so the commands start once they are done and read it,
    instead of each compiling the same modules again at the same time."""
    # No PYTHONDONTWRITEBYTECODE: uv installs no .pyc, and compiling only what the first import
    # needs (here, once) beats compiling the whole env at install (bench_verify, figure 6).
    env = proc.child_env({"PYTHONNOUSERSITE": "1", **dict(smoke.env)}, venv=str(env_path), base=base_env)
    cancel = cancel or threading.Event()
    with tempfile.TemporaryDirectory(prefix="nlpsetup-smoke-") as cwd:
        commands = command_checks(smoke, env_python, env_path)
        logs = [io.StringIO() for _ in commands]
        slots: list[CheckResult | None] = [None] * len(commands)

        imported = threading.Event()
        if not (first and smoke.imports):
            imported.set()

        def command(i: int) -> None:
            while not imported.wait(0.05):
                if cancel.is_set():
                    return
            name, argv = commands[i]
            logs[i].write(f"\n## smoke: {name}\n")
            r = proc.run(argv, env=env, timeout=smoke.timeout, log=logs[i], cwd=cwd, watch=cancel.is_set)
            slots[i] = _result(name, r.ok, r.seconds, None, r.timed_out and not cancel.is_set(),
                               smoke.timeout, r.tail if not r.ok else ())

        threads = [threading.Thread(target=command, args=(i,), daemon=True) for i in range(len(commands))]
        for t in threads:
            t.start()
        try:
            results = _harness(in_process_checks(smoke), env_python, env, cwd, smoke.timeout, log, on_result, cancel,
                               imported)
        except BaseException:  # Ctrl-C: stop the commands too
            cancel.set()
            raise
        finally:
            imported.set()
            for t in threads:
                t.join()
        for buf, slot in zip(logs, slots, strict=True):
            if log is not None:
                log.write(buf.getvalue())
            if slot is not None:
                results.append(slot)
                if on_result:
                    on_result(slot)
    return results


def _result(name: str, passed: bool, seconds: float, import_seconds: float | None, timed_out: bool,
            timeout: int, lines) -> CheckResult:
    detail = ""
    if timed_out:
        detail = f"timed out after {timeout} s"
    elif not passed:
        detail = "\n".join(list(lines)[-8:])
    return CheckResult(name, passed, round(seconds, 3),
                       round(import_seconds, 3) if import_seconds is not None else None, detail)


def _harness(checks: list[tuple[str, dict]], env_python: str, env: dict, cwd: str, timeout: int, log,
             on_result, cancel: threading.Event, imported: threading.Event) -> list[CheckResult]:
    """Run the in-process checks in one interpreter. A check that kills its interpreter or
    passes its time limit fails; a fresh interpreter then goes on with the next one."""
    results: list[CheckResult] = []
    todo = list(enumerate(checks))
    while todo and not cancel.is_set():
        nonce = uuid.uuid4().hex
        spec = Path(cwd) / f"checks-{nonce}.json"
        spec.write_text(json.dumps([[i, c] for i, (_, c) in todo]))
        script = Path(cwd) / "nlpsetup_smoke_harness.py"
        script.write_text(_HARNESS)
        state = {"since": time.monotonic(), "lines": [], "started": False}
        finished: set[int] = set()
        marker = f"NLPSETUP-{nonce} "

        def on_line(line: str, state=state, marker=marker, finished=finished) -> None:
            if not line.startswith(marker):
                state["lines"].append(line)
                return
            what, data = line[len(marker):].split(" ", 1)
            data = json.loads(data)
            if what == "start":
                state.update(since=time.monotonic(), lines=[], started=True)
                if log is not None:
                    log.write(f"## smoke: {checks[data['i']][0]}\n")
                return
            name, check = checks[data["i"]]
            detail = data["why"] if data["why"] else "\n".join(state["lines"][-8:])
            r = CheckResult(name, data["passed"], round(data["seconds"], 3),
                            round(data["seconds"], 3) if check["kind"] == "imports" else None,
                            "" if data["passed"] else detail)
            results.append(r)
            finished.add(data["i"])
            if check["kind"] == "imports":
                imported.set()
            if on_result:
                on_result(r)

        def past_limit(state=state) -> bool:
            return cancel.is_set() or time.monotonic() - state["since"] > timeout

        if log is not None:
            log.write(f"\n## smoke: {' ; '.join(checks[i][0] for i, _ in todo)} (one interpreter)\n")
        r = proc.run([env_python, "-I", str(script), nonce, str(spec)], env=env, log=log, on_line=on_line,
                     cwd=cwd, watch=past_limit)
        todo = [(i, c) for i, c in todo if i not in finished]
        if not todo or cancel.is_set():
            break
        # The interpreter ended inside (or before) the next check: that check fails, the rest go on.
        i, _ = todo.pop(0)
        if checks[i][1]["kind"] == "imports":
            imported.set()
        lines = state["lines"] if state["started"] else list(r.tail)
        why = f"the interpreter exited with code {r.returncode}" if not r.timed_out else ""
        res = _result(checks[i][0], False, time.monotonic() - state["since"], None, r.timed_out, timeout,
                      [*lines, why] if why else lines)
        results.append(res)
        if on_result:
            on_result(res)
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
    from nlpsetup.files import read_cache

    data = read_cache(env_path / RESULT_FILE, {"fingerprint": str, "smoke": [dict], "pip_check": dict})
    return data if data and data.get("fingerprint") == fp else None


def save(env_path: Path, fp: str, **parts) -> None:
    """Keep parts of a result (smoke: a list of CheckResult dicts; others as doctor needs)
    under this fingerprint, with what was saved before under the same fingerprint."""
    from nlpsetup.files import write_json_atomic

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
                on_ready: Callable[[R], None] | None = None, cost: Callable[[T], float] | None = None) -> list[R]:
    """fn(item, cancel) for each item, at most one per CPU at a time, the costliest first (so that
    the slowest env does not start last); results in the items' order, each handed to on_ready as
    soon as it and those before it are done. On Ctrl-C, sets `cancel` (pass it on to run_all: it
    stops the checks that run), waits for the workers, and re-raises."""
    cancel = threading.Event()
    out: list[R] = []
    order = sorted(range(len(items)), key=lambda i: -cost(items[i])) if cost else range(len(items))
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), os.cpu_count() or 1))) as pool:
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


